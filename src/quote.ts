/**
 * The one way anything reaches a remote shell.
 *
 * Every interpolated value in an `sh` template is quoted for a POSIX shell, so a
 * value can never become code: `sh\`cat ${path}\`` is safe for any `path`.
 * Literal template text is trusted (it is written by drove, never by a user).
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** A piece of shell text whose every user value has been quoted. */
export class ShellCommand {
  /** @internal */
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Thrown when a value cannot be passed through a shell at all. */
export class UnquotableError extends Error {}

/**
 * Quotes one value as a single shell word. NUL bytes are refused: no shell
 * can carry them in an argument.
 */
export function quote(value: string | number | bigint): string {
  const s = String(value);
  if (s.includes("\0")) {
    throw new UnquotableError(
      `A value contains a NUL byte, which no shell argument can carry: ${JSON.stringify(s.slice(0, 40))}. Remove the NUL byte, or pass binary data as file content instead.`,
    );
  }
  if (s.length > 0 && SAFE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

type Arg = string | number | bigint | ShellCommand | readonly (string | number | bigint | ShellCommand)[];

function render(value: Arg): string {
  if (value instanceof ShellCommand) return value.text;
  if (Array.isArray(value)) return value.map((v) => render(v)).join(" ");
  return quote(value as string | number | bigint);
}

/**
 * Builds a shell command: literal text as written, every `${value}` quoted.
 * Arrays expand to several quoted words; nested `sh` fragments are kept as they are.
 */
export function sh(strings: TemplateStringsArray, ...values: Arg[]): ShellCommand {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new ShellCommand(out);
}

/** Joins commands with `&&` (stop at the first failure). */
export function and(...commands: ShellCommand[]): ShellCommand {
  return new ShellCommand(commands.map((c) => c.text).join(" && "));
}
