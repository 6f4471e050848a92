/**
 * The benchmark's pure parts: medians, ratios against drove, and the markdown
 * tables written into bench/results/. No I/O here, so its unit test is cheap.
 */

/** The phases every tool runs, in order, on a fresh lab. */
export const PHASES = ["cold", "noChange", "change"] as const;
export type Phase = (typeof PHASES)[number];

export const PHASE_TITLES: Record<Phase, string> = {
  cold: "cold apply",
  noChange: "no-change run",
  change: "one-line change",
};

/** One measured phase of one tool in one run. */
export interface Sample {
  readonly tool: string;
  readonly machines: number;
  readonly run: number;
  readonly phase: Phase;
  /** Wall-clock seconds of the tool's command. */
  readonly seconds: number;
  /** SSH connections the machines accepted during the phase, summed over the machines. */
  readonly connections?: number;
  /** 1-minute load average when the phase started. */
  readonly load?: number;
  /** Peak resident set, in bytes, per process group (`pulumi`, `provider`, `program`, `all`). */
  readonly peakRss?: Readonly<Record<string, number>>;
  /** CPU seconds per process group (`pulumi`, `provider`, `program`, `all`); a lower bound (sampled every 100 ms). */
  readonly cpu?: Readonly<Record<string, number>>;
  /** CPU seconds the lab machines used during the phase, summed over their cgroups. */
  readonly machineCpu?: number;
  /** Whether the tool exited 0 and the machines were then in the expected state. */
  readonly ok: boolean;
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * How many times longer `x` took than `base` (drove), as `3.2x`; below 1 means
 * faster than drove. Undefined inputs or a zero base render as `n/a`.
 */
export function ratio(x: number | undefined, base: number | undefined): string {
  if (x === undefined || base === undefined || !(base > 0) || !Number.isFinite(x)) return "n/a";
  const r = x / base;
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2)}x`;
}

/** Seconds as `12.3 s` (or `0.85 s` below 1 s). */
export function secs(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "n/a";
  return x >= 1 ? `${x.toFixed(1)} s` : `${x.toFixed(2)} s`;
}

/** Bytes as `1.2 KB`, `34 MB`. */
export function bytes(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "n/a";
  if (x < 1024) return `${Math.round(x)} B`;
  if (x < 1024 * 1024) return `${(x / 1024).toFixed(1)} KB`;
  return `${(x / 1024 / 1024).toFixed(0)} MB`;
}

/** Medians of the successful samples per tool and phase: `result[tool][phase]`. */
export function medians(samples: readonly Sample[]): Map<string, Partial<Record<Phase, number>>> {
  const out = new Map<string, Partial<Record<Phase, number>>>();
  for (const s of samples) if (!out.has(s.tool)) out.set(s.tool, {});
  for (const [tool, row] of out) {
    for (const phase of PHASES) {
      const xs = samples.filter((s) => s.tool === tool && s.phase === phase && s.ok).map((s) => s.seconds);
      if (xs.length > 0) row[phase] = median(xs);
    }
  }
  return out;
}

/** A markdown table: a header row, the separator, the rows; `|` in cells escaped. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (c: string) => c.replace(/\|/g, "\\|");
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/**
 * The main table: per tool, the median seconds of each phase and its ratio
 * against drove's (how many times longer the tool took), plus how many of its
 * runs succeeded.
 */
export function timesTable(samples: readonly Sample[], base = "drove"): string {
  const m = medians(samples);
  const baseRow = m.get(base) ?? {};
  const header = ["tool", ...PHASES.flatMap((p) => [PHASE_TITLES[p], "vs drove"]), "phases ok"];
  const rows = [...m.entries()].map(([tool, row]) => {
    const all = samples.filter((s) => s.tool === tool);
    const ok = all.filter((s) => s.ok).length;
    return [tool, ...PHASES.flatMap((p) => [secs(row[p]), ratio(row[p], baseRow[p])]), `${ok}/${all.length}`];
  });
  return markdownTable(header, rows);
}

/** SSH connections per host per phase (median over runs), per tool. */
export function connectionsTable(samples: readonly Sample[]): string {
  const tools = [...new Set(samples.map((s) => s.tool))];
  const rows = tools.map((tool) => [
    tool,
    ...PHASES.map((p) => {
      const xs = samples
        .filter((s) => s.tool === tool && s.phase === p && s.connections !== undefined)
        .map((s) => s.connections! / s.machines);
      return xs.length ? String(+median(xs).toFixed(2)) : "n/a";
    }),
  ]);
  return markdownTable(["tool", ...PHASES.map((p) => `${PHASE_TITLES[p]}: connections per host`)], rows);
}

/** Peak resident memory per process group (largest over runs and phases), per tool. */
export function memoryTable(samples: readonly Sample[]): string {
  const tools = [...new Set(samples.map((s) => s.tool))];
  const groups = ["pulumi", "provider", "program", "all"];
  const rows = tools.map((tool) => [
    tool,
    ...groups.map((g) => {
      const xs = samples.filter((s) => s.tool === tool && s.peakRss?.[g] !== undefined).map((s) => s.peakRss![g]);
      return xs.length ? bytes(Math.max(...xs)) : "-";
    }),
  ]);
  return markdownTable(["tool", "pulumi CLI", "provider plugin", "language host + program", "whole process tree"], rows);
}

/** CPU seconds per process group in the no-change run (median over runs), per tool. */
export function cpuTable(samples: readonly Sample[]): string {
  const tools = [...new Set(samples.map((s) => s.tool))];
  const groups = ["pulumi", "provider", "program", "all"];
  const rows = tools.map((tool) => [
    tool,
    ...groups.map((g) => {
      const xs = samples.filter((s) => s.tool === tool && s.phase === "noChange" && s.cpu?.[g] !== undefined).map((s) => s.cpu![g]);
      return xs.length ? `${median(xs).toFixed(1)} s` : "-";
    }),
  ]);
  return markdownTable(["tool", "pulumi CLI", "provider plugin", "language host + program", "whole process tree"], rows);
}

/** Median CPU seconds the machines used in each phase, per tool (what each tool made the machines do). */
export function machineCpuTable(samples: readonly Sample[]): string {
  const tools = [...new Set(samples.map((s) => s.tool))];
  const phases: Phase[] = ["cold", "noChange", "change"];
  const rows = tools.map((tool) => [
    tool,
    ...phases.map((p) => {
      const xs = samples.filter((s) => s.tool === tool && s.phase === p && s.ok && s.machineCpu !== undefined).map((s) => s.machineCpu!);
      const machines = samples.find((s) => s.tool === tool)?.machines ?? 1;
      return xs.length ? `${median(xs).toFixed(2)} s (${((median(xs) / machines) * 1000).toFixed(0)} ms per machine)` : "-";
    }),
  ]);
  return markdownTable(["tool", "cold apply", "no-change run", "one-line change"], rows);
}

/** The state of a Pulumi stack as the file backend stores it (only what is read here). */
export interface StackState {
  readonly checkpoint?: { readonly latest?: { readonly resources?: readonly { readonly type: string; readonly custom?: boolean }[] } };
}

/**
 * Bytes of state per resource: the whole file over its resources (every
 * resource, the stack and providers included), and the largest single
 * resource as JSON.
 */
export function stateBytes(text: string): { total: number; resources: number; perResource: number; largest: number; largestType: string } {
  const state = JSON.parse(text) as StackState;
  const resources = state.checkpoint?.latest?.resources ?? [];
  let largest = 0;
  let largestType = "";
  for (const r of resources) {
    const n = Buffer.byteLength(JSON.stringify(r, null, 4));
    if (n > largest) {
      largest = n;
      largestType = r.type;
    }
  }
  const total = Buffer.byteLength(text);
  return { total, resources: resources.length, perResource: resources.length ? total / resources.length : 0, largest, largestType };
}

/**
 * Counts the SSH channel requests that start a round trip (`exec`,
 * `subsystem`, `shell`) in sshd's DEBUG1 log lines.
 */
export function countChannelRequests(log: string): number {
  return (log.match(/server_input_channel_req: channel \d+ request (exec|subsystem|shell) /g) ?? []).length;
}

/** Counts accepted SSH logins in sshd's log lines. */
export function countAccepted(log: string): number {
  return (log.match(/\bAccepted (publickey|password|keyboard-interactive\/pam) for /g) ?? []).length;
}

/** The order the tools run in for run `run` (0-based): rotated, so none always runs first or last. */
export function rotation<T>(tools: readonly T[], run: number): T[] {
  if (tools.length === 0) return [];
  const k = ((run % tools.length) + tools.length) % tools.length;
  return [...tools.slice(k), ...tools.slice(0, k)];
}

/**
 * Whether pyinfra's "Detected changes" table names an operation that would
 * change something (its Change column is not "-"; conditional changes, which
 * depend on an earlier operation changing, do not count).
 */
export function pyinfraFoundChanges(output: string): boolean {
  const at = output.indexOf("--> Detected changes:");
  if (at < 0) return true;
  const lines = output.slice(at).split("\n").slice(2);
  for (const line of lines) {
    if (!line.trim()) break;
    const cells = line.trim().split(/\s{2,}/);
    if (cells.length >= 2 && cells[1] !== "-") return true;
  }
  return false;
}
