/**
 * Several read-only probes in one SSH round trip.
 *
 * A refresh asks the provider to read every resource, and each read is one
 * small probe (`stat`, `systemctl show`, `docker inspect`...). Sent one by one
 * they cost a round trip each; the connection instead gathers the probes that
 * arrive together for one machine and runs them as one script: each probe runs
 * in a subshell of it, in parallel, with its own stdout, stderr and exit status,
 * which come back framed so that no probe's output can be mistaken for
 * another's (the frame gives byte counts, and its marker is random per batch).
 */
import { randomBytes } from "node:crypto";

/** One batch, ready to run under `sh -c`. */
export interface Batch {
  readonly script: string;
  /** The random marker that starts every frame of this batch's output. */
  readonly boundary: string;
}

/** One probe's result, as if it had run alone. */
export interface BatchItemResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/**
 * Composes one script from complete shell scripts, each as it would run
 * alone under `sh -c`. Each runs in a subshell of the batch's shell (a fork,
 * no new `sh`), with stdin from /dev/null, in the background; the shell's own
 * `wait` gives each one's exit status. The batch keeps its own state in
 * variables no probe uses, and starts few processes of its own (mktemp, one
 * `wc`, one `cat`, rm), since on a small machine every process a probe starts
 * is a real part of the cost of a no-change run.
 *
 * Output: a header line (the marker, then each probe's exit status), one
 * `wc -c` line per output file (and wc's total), the marker again on a line
 * of its own, then every probe's stdout and stderr, in order, back to back.
 */
export function composeBatch(scripts: readonly string[]): Batch {
  const boundary = `drove-batch-${randomBytes(12).toString("hex")}`;
  const ids = scripts.map((_, i) => i);
  const files = ids.flatMap((i) => [`${i}.o`, `${i}.e`]).join(" ");
  const lines = [
    "drove_batch_d=$(mktemp -d) || exit 97",
    "trap 'rm -rf \"$drove_batch_d\"' EXIT",
    // (the newline ends the script whatever it ends with, a comment included)
    ...scripts.map((c, i) => `( ${c}\n) </dev/null >"$drove_batch_d/${i}.o" 2>"$drove_batch_d/${i}.e" & drove_batch_p${i}=$!`),
    ...ids.map((i) => `wait "$drove_batch_p${i}"; drove_batch_r${i}=$?`),
    `printf '%s %s\\n' ${boundary} "${ids.map((i) => `$drove_batch_r${i}`).join(" ")}"`,
    `cd "$drove_batch_d" || exit 97`,
    `wc -c ${files}`,
    `echo ${boundary}`,
    `cat ${files}`,
  ];
  return { script: lines.join("\n"), boundary };
}

/**
 * Splits a batch's output into its probes' results, or `undefined` when the
 * frames do not add up (the caller then runs the probes one by one).
 */
export function parseBatch(out: Buffer, batch: Batch, count: number): BatchItemResult[] | undefined {
  const line = (from: number): [string, number] | undefined => {
    const nl = out.indexOf(0x0a, from);
    return nl < 0 ? undefined : [out.subarray(from, nl).toString("latin1"), nl + 1];
  };
  const first = line(0);
  if (!first) return undefined;
  const header = first[0].split(" ");
  if (header.length !== count + 1 || header[0] !== batch.boundary || !header.slice(1).every((x) => /^\d+$/.test(x))) return undefined;
  const codes = header.slice(1).map(Number);
  // `wc -c` lines, until the marker: "  12 0.o" (padding differs between systems)
  const sizes = new Map<string, number>();
  let pos = first[1];
  for (;;) {
    const l = line(pos);
    if (!l) return undefined;
    pos = l[1];
    if (l[0] === batch.boundary) break;
    const m = /^\s*(\d+)\s+(\d+\.[oe])$/.exec(l[0]);
    if (m) sizes.set(m[2], Number(m[1]));
  }
  const results: BatchItemResult[] = [];
  for (let i = 0; i < count; i++) {
    const o = sizes.get(`${i}.o`);
    const e = sizes.get(`${i}.e`);
    if (o === undefined || e === undefined || !Number.isSafeInteger(o) || !Number.isSafeInteger(e) || pos + o + e > out.length) return undefined;
    results.push({ code: codes[i], stdout: out.subarray(pos, pos + o), stderr: out.subarray(pos + o, pos + o + e) });
    pos += o + e;
  }
  return pos === out.length ? results : undefined;
}
