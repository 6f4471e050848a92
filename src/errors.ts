/**
 * Errors a user can act on: what failed, where, why, and how to fix it.
 * "Unable to <action> <what> on <host>: <reason>. Either <fix A>, or <fix B>."
 */
export interface DroveErrorOptions {
  /** What can be done about it; rendered as "Either A, or B." */
  readonly fixes?: readonly string[];
  readonly cause?: unknown;
}

export class DroveError extends Error {
  /** Makes Pulumi print the message alone, without a stack trace (as for its own RunError). */
  readonly __pulumiRunError = true;
  readonly fixes: readonly string[];
  constructor(problem: string, options: DroveErrorOptions = {}) {
    const fixes = options.fixes ?? [];
    // A problem that ends with a newline (a list) is complete: a full stop would sit alone on the last line.
    super((problem.endsWith("\n") ? problem : problem.replace(/\.?$/, ".")) + renderFixes(fixes), { cause: options.cause });
    this.name = "DroveError";
    this.fixes = fixes;
  }
}

function renderFixes(fixes: readonly string[]): string {
  if (fixes.length === 0) return "";
  if (fixes.length === 1) return ` ${capitalise(fixes[0])}.`;
  return ` Either ${fixes.slice(0, -1).join(", or ")}, or ${fixes[fixes.length - 1]}.`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A failure on one machine. */
export class HostError extends DroveError {
  constructor(
    readonly host: string,
    action: string,
    reason: string,
    options: DroveErrorOptions = {},
  ) {
    super(`Unable to ${action} ${/^(connect|log in)\b/.test(action) ? "to" : "on"} ${host}: ${reason}`, options);
    this.name = "HostError";
  }
}

/** drove could not get a working SSH session on the host (down, wrong key, refused login). */
export class ConnectError extends HostError {
  constructor(host: string, action: string, reason: string, options: DroveErrorOptions & { retryable?: boolean } = {}) {
    super(host, action, reason, options);
    this.name = "ConnectError";
    this.retryable = options.retryable ?? false;
  }
  readonly retryable: boolean;
}

export function isConnectError(err: unknown): err is ConnectError {
  return err instanceof Error && err.name === "ConnectError";
}

/** One or more props or cross-construct checks failed; raised before any SSH. */
export class ValidationError extends DroveError {
  constructor(readonly messages: readonly string[]) {
    super(
      messages.length === 1
        ? `Validation failed: ${messages[0]}`
        : `Validation failed with ${messages.length} errors:\n  - ${messages.join("\n  - ")}\n`,
    );
    this.name = "ValidationError";
  }
}

/** A short, single-line reason from any thrown value, for error messages. */
export function reasonOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
