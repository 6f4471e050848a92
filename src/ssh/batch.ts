/**
 * Several read-only probes in one SSH round trip.
 *
 * A refresh asks the provider to read every resource, and each read is one
 * small probe (`stat`, `systemctl show`, `docker inspect`...). Sent one by one
 * they cost a round trip each; the connection instead gathers the probes that
 * arrive together for one machine and runs them as one script: each probe runs
 * in its own `sh`, in parallel, with its own stdout, stderr and exit status,
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
 * Composes one script from complete shell commands (each already quoted and
 * wrapped as it would run alone). Each runs with stdin from /dev/null.
 */
export function composeBatch(commands: readonly string[]): Batch {
  const boundary = `drove-batch-${randomBytes(12).toString("hex")}`;
  const lines = [
    'd=$(mktemp -d) || exit 97',
    "trap 'rm -rf \"$d\"' EXIT",
    ...commands.map((c, i) => `{ ( ${c} ) </dev/null >"$d/${i}.o" 2>"$d/${i}.e"; echo $? >"$d/${i}.r"; } &`),
    "wait",
    `for i in ${commands.map((_, i) => i).join(" ")}; do`,
    // `wc -c` pads with spaces on some systems: unquoted, the shell trims them.
    `  printf '%s %s %s %s %s\\n' ${boundary} "$i" "$(cat "$d/$i.r")" $(wc -c <"$d/$i.o") $(wc -c <"$d/$i.e")`,
    '  cat "$d/$i.o" "$d/$i.e"',
    "done",
  ];
  return { script: lines.join("\n"), boundary };
}

/**
 * Splits a batch's output into its probes' results, or `undefined` when the
 * frames do not add up (the caller then runs the probes one by one).
 */
export function parseBatch(out: Buffer, batch: Batch, count: number): BatchItemResult[] | undefined {
  const results: BatchItemResult[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const nl = out.indexOf(0x0a, pos);
    if (nl < 0) return undefined;
    const header = out.subarray(pos, nl).toString("latin1").split(" ");
    if (header.length !== 5 || header[0] !== batch.boundary || header[1] !== String(i)) return undefined;
    const [code, outBytes, errBytes] = header.slice(2).map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
    if (![code, outBytes, errBytes].every(Number.isSafeInteger)) return undefined;
    const start = nl + 1;
    if (start + outBytes + errBytes > out.length) return undefined;
    results.push({
      code,
      stdout: out.subarray(start, start + outBytes),
      stderr: out.subarray(start + outBytes, start + outBytes + errBytes),
    });
    pos = start + outBytes + errBytes;
  }
  return pos === out.length ? results : undefined;
}
