/** Validation rules shared by constructs: one wording for one rule. */
import { posix } from "node:path";

/** A user or group name as Debian accepts it. */
export const ACCOUNT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;

/** The longest file name and path Linux takes, in bytes (NAME_MAX, PATH_MAX less its NUL). */
const NAME_MAX = 255;
const PATH_MAX = 4095;

/** `path` must be absolute and normalised, like `example`. */
export function pathErrors(where: string, path: unknown, what: string, example: string): string[] {
  const ok = typeof path === "string" && posix.isAbsolute(path) && posix.normalize(path) === path && !path.endsWith("/") && !path.includes("\0");
  if (!ok) return [`${where}: \`path\` must be an absolute, normalised ${what} path like ${example}, but ${JSON.stringify(path)} was provided`];
  // Linux refuses longer names (ENAMETOOLONG): say so now, not halfway through a run.
  const long = path.split("/").find((name) => Buffer.byteLength(name, "utf8") > NAME_MAX);
  if (long !== undefined) return [`${where}: \`path\` must have names of at most ${NAME_MAX} bytes each, but it has one of ${Buffer.byteLength(long, "utf8")} bytes (${JSON.stringify(long.slice(0, 40) + "...")})`];
  if (Buffer.byteLength(path, "utf8") > PATH_MAX) return [`${where}: \`path\` must be at most ${PATH_MAX} bytes long, but it is ${Buffer.byteLength(path, "utf8")} bytes`];
  return [];
}

/** `owner` and `group`, where given, must be account names. */
export function ownershipErrors(where: string, props: { readonly owner?: string; readonly group?: string }): string[] {
  const errors: string[] = [];
  for (const k of ["owner", "group"] as const) {
    const v = props[k];
    // chown takes digits alone for a numeric id: "0" would silently mean root, and never read back as "0".
    if (v !== undefined && /^[0-9]+$/.test(v)) errors.push(`${where}: \`${k}\` must be a name like "www-data", not a number (chown would take ${JSON.stringify(v)} for a numeric id), but ${JSON.stringify(v)} was provided`);
    else if (v !== undefined && !ACCOUNT_NAME.test(v)) errors.push(`${where}: \`${k}\` must be a name like "www-data", but ${JSON.stringify(v)} was provided`);
  }
  return errors;
}
