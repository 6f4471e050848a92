/**
 * Runs a tool's command, timing it and sampling the resident memory of its
 * whole process tree from /proc (every 100 ms), grouped as the Pulumi CLI,
 * the provider plugin, and the language host with the program.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export interface Timed {
  readonly code: number;
  readonly output: string;
  readonly seconds: number;
  /** Peak of the summed resident memory (bytes) of each process group over the run. */
  readonly peakRss: Record<string, number>;
  /** CPU seconds (user + system) each process group used, as last sampled before it exited. */
  readonly cpu: Record<string, number>;
}

interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly rss: number;
  /** user + system clock ticks */
  readonly ticks: number;
  readonly cmd: string;
}

function procs(): Proc[] {
  const out: Proc[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      // pid (comm) state ppid ... ; rss is field 24, in pages
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ppid = Number(rest[1]);
      const rss = Number(rest[21]) * 4096;
      const ticks = Number(rest[11]) + Number(rest[12]);
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ");
      out.push({ pid: Number(d), ppid, rss, ticks, cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Which group a process of a Pulumi run belongs to. */
export function groupOf(cmd: string): string {
  if (/pulumi-resource-|providers\/main\.ts|pulumi-resource-drove/.test(cmd)) return "provider";
  if (/pulumi-language-nodejs|@pulumi\/pulumi\/cmd\/run|tsx|ts-node|\bnode\b/.test(cmd)) return "program";
  if (/(^|\/)pulumi(\s|$)/.test(cmd)) return "pulumi";
  return "other";
}

function descendants(root: number, all: Proc[]): Proc[] {
  const byParent = new Map<number, Proc[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: Proc[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    for (const c of byParent.get(pid) ?? []) {
      out.push(c);
      stack.push(c.pid);
    }
  }
  const self = all.find((p) => p.pid === root);
  return self ? [self, ...out] : out;
}

/** Runs `cmd args` to completion (killing it after `timeoutMs`), never throwing for a non-zero exit. */
export function timed(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Timed> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => chunks.push(b));
    child.stderr.on("data", (b: Buffer) => chunks.push(b));
    const peak: Record<string, number> = {};
    // Last CPU ticks seen per process, to sum per group at the end.
    const ticks = new Map<number, { group: string; ticks: number }>();
    const sample = () => {
      if (child.pid === undefined) return;
      const tree = descendants(child.pid, procs());
      const sums: Record<string, number> = { all: 0 };
      for (const p of tree) {
        const g = groupOf(p.cmd);
        sums[g] = (sums[g] ?? 0) + p.rss;
        sums.all += p.rss;
        ticks.set(p.pid, { group: g, ticks: p.ticks });
      }
      for (const [g, v] of Object.entries(sums)) peak[g] = Math.max(peak[g] ?? 0, v);
    };
    const timer = setInterval(sample, 100);
    const killer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, opts.timeoutMs ?? 30 * 60_000);
    child.on("close", (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      clearInterval(timer);
      clearTimeout(killer);
      const cpu: Record<string, number> = { all: 0 };
      for (const { group, ticks: t } of ticks.values()) {
        cpu[group] = (cpu[group] ?? 0) + t / 100;
        cpu.all += t / 100;
      }
      resolve({ code: code ?? 1, output: Buffer.concat(chunks).toString("utf8"), seconds, peakRss: peak, cpu });
    });
  });
}

/** The 1-minute load average now. */
export function loadAverage(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}
