/** Validation rules shared by constructs: one wording for one rule. */
import { posix } from "node:path";

/** A user or group name as Debian accepts it. */
export const ACCOUNT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;

/** `path` must be absolute and normalised, like `example`. */
export function pathErrors(where: string, path: unknown, what: string, example: string): string[] {
  const ok = typeof path === "string" && posix.isAbsolute(path) && posix.normalize(path) === path && !path.endsWith("/") && !path.includes("\0");
  return ok ? [] : [`${where}: \`path\` must be an absolute, normalised ${what} path like ${example}, but ${JSON.stringify(path)} was provided`];
}

/** `owner` and `group`, where given, must be account names. */
export function ownershipErrors(where: string, props: { readonly owner?: string; readonly group?: string }): string[] {
  const errors: string[] = [];
  for (const k of ["owner", "group"] as const) {
    const v = props[k];
    if (v !== undefined && !ACCOUNT_NAME.test(v)) errors.push(`${where}: \`${k}\` must be a name like "www-data", but ${JSON.stringify(v)} was provided`);
  }
  return errors;
}
