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

/**
 * Redacts every occurrence of the given secret strings from a text; of a
 * secret over several lines (a PEM key), every line of 16 characters or more
 * too: a command's output that quotes one line of a key gives that much away.
 */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  const parts = new Set<string>();
  for (const s of secrets) {
    if (!s || s.length < 4) continue;
    parts.add(s);
    if (s.includes("\n")) for (const line of s.split("\n")) if (line.trim().length >= 16) parts.add(line.trim());
  }
  let out = text;
  for (const s of [...parts].sort((a, b) => b.length - a.length)) out = out.split(s).join("[secret]");
  return out;
}

/** Every string inside a value's secrets (wire secrets, at any depth), for redaction. */
export function secretStringsIn(v: unknown, inSecret = false, out: string[] = []): string[] {
  if (isWireSecret(v)) secretStringsIn(v.value, true, out);
  else if (typeof v === "string") {
    if (inSecret) out.push(v);
  } else if (Array.isArray(v)) for (const x of v) secretStringsIn(x, inSecret, out);
  else if (typeof v === "object" && v !== null) for (const x of Object.values(v)) secretStringsIn(x, inSecret, out);
  return out;
}

/** Takes every secret out of an error's message and stack, in place; returns the error. */
export function redactError<E>(err: E, secrets: readonly string[]): E {
  if (err instanceof Error) {
    err.message = redact(err.message, secrets);
    if (err.stack) err.stack = redact(err.stack, secrets);
  }
  return err;
}
