/**
 * A timeline of one run across its processes, for finding where a run's time
 * goes: with `DROVE_TRACE=<file>`, the program and the provider each append
 * one line per event (epoch milliseconds, process, what), and
 * `node --import tsx bench/trace.ts <file>` sums it up. Nothing is written
 * without the variable; values and secrets are never written, only resource
 * types and construct paths.
 */
import { appendFileSync } from "node:fs";

const file = process.env.DROVE_TRACE;
const who = `${process.argv[1]?.split("/").pop() ?? "node"}:${process.pid}`;

/** Whether events are being recorded. */
export const tracing = Boolean(file);

/** Records an event (a no-op unless `DROVE_TRACE` is set). */
export function traceEvent(what: string): void {
  if (file) appendFileSync(file, `${Date.now()} ${who} ${what}\n`);
}

/** Runs `fn`, recording its start and end (with its duration) under `what`. */
export async function traced<T>(what: string, fn: () => Promise<T>): Promise<T> {
  if (!file) return fn();
  const t0 = Date.now();
  traceEvent(`begin ${what}`);
  try {
    return await fn();
  } finally {
    traceEvent(`end ${what} ${Date.now() - t0}`);
  }
}
