/**
 * Pulumi's wire form for secrets: an object carrying a signature key. The engine
 * hands them to providers that accept secrets; providers hand them back so the
 * state keeps them encrypted.
 */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

export interface WireSecret {
  [SECRET_SIG_KEY]: string;
  value: unknown;
}

export function isWireSecret(v: unknown): v is WireSecret {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG_VALUE;
}

export function wrapSecret(value: unknown): WireSecret {
  return { [SECRET_SIG_KEY]: SECRET_SIG_VALUE, value };
}

/** Removes every secret wrapper, deeply. */
export function unwrapSecrets<T = unknown>(v: unknown): T {
  if (isWireSecret(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map((x) => unwrapSecrets(x)) as T;
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = unwrapSecrets(x);
    return out as T;
  }
  return v as T;
}

/** Redacts every occurrence of the given secret strings from a text. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join("[secret]");
  }
  return out;
}
