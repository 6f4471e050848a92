/**
 * `node --import tsx bench/machine-cpu.ts [--machines N] [--runs R] [--tools drove,pyinfra]`:
 * where the machines' CPU goes in a cold apply, tool by tool. Each run boots a
 * fresh lab, applies the benchmark's workload once, and reads every machine's
 * cgroup tree before and after: sshd and the commands the tool ran over SSH,
 * the Docker and containerd daemons, the container, systemd itself,
 * journald... Medians over the runs, summed over the machines.
 *
 * It answers "why do the machines work harder for one tool than for another
 * on the same workload", which the benchmark's total (bench/run.ts) cannot.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { labMachineCgroup } from "../integration/lab/lab";
import { BenchLab } from "./lab";
import { median } from "./stats";
import { installTools, positiveInt, requireRoot, toolsNamed, type Tool } from "./tools";

/** CPU seconds of each cgroup under `dir` (its own path relative to `dir`), descendants included. */
export function cgroupTree(dir: string, rel = ""): Map<string, number> {
  const out = new Map<string, number>();
  const stat = join(dir, rel, "cpu.stat");
  if (!existsSync(stat)) return out;
  const m = /^usage_usec (\d+)$/m.exec(readFileSync(stat, "utf8"));
  out.set(rel || ".", m ? Number(m[1]) / 1e6 : 0);
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    if (e.isDirectory()) for (const [k, v] of cgroupTree(dir, rel ? `${rel}/${e.name}` : e.name)) out.set(k, v);
  }
  return out;
}

/**
 * The part of a machine a cgroup stands for: a handful of names a reader
 * knows (an SSH session's commands, a daemon, the container) instead of
 * every scope systemd makes.
 */
export function category(path: string): string | undefined {
  const p = path.replace(/^payload\//, "");
  if (path === ".") return undefined;
  // Without pam_systemd (the lab's image), what runs over SSH stays in sshd's cgroup.
  if (p === "system.slice/ssh.service" || p === "user.slice") return "sshd and the commands run over SSH";
  if (p === "system.slice/docker.service" || p === "system.slice/docker.socket") return "dockerd";
  if (p === "system.slice/containerd.service") return "containerd (and its shims)";
  if (/^system\.slice\/docker-[0-9a-f]+\.scope$/.test(p)) return "the container";
  if (p === "system.slice/drove-bench.service") return "the unit (sleep infinity)";
  if (p === "system.slice/systemd-journald.service") return "journald";
  if (p === "init.scope") return "systemd (PID 1)";
  if (p === "supervisor") return "systemd-nspawn";
  if (/^system\.slice\/[^/]+$/.test(p)) return "other system services";
  return undefined;
}

/** CPU seconds per category, summed over trees, `after` minus `before`; "total" is the machines' whole cgroups. */
export function breakdown(before: Map<string, number>[], after: Map<string, number>[]): Map<string, number> {
  const out = new Map<string, number>();
  const add = (k: string, v: number) => out.set(k, (out.get(k) ?? 0) + v);
  after.forEach((a, i) => {
    const b = before[i];
    for (const [path, v] of a) {
      const d = v - (b.get(path) ?? 0);
      if (path === ".") add("total", d);
      const c = category(path);
      if (c) add(c, d);
    }
  });
  return out;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option("--machines <n>", "machines per lab", positiveInt, 1)
    .option("--runs <n>", "fresh labs per tool", positiveInt, 3)
    .option("--tools <names>", "tools to compare, comma-separated", toolsNamed, toolsNamed("drove,pyinfra"))
    .parse()
    .opts<{ machines: number; runs: number; tools: Tool[] }>();
  const { machines, runs, tools } = opts;
  requireRoot();
  const installed = installTools();
  const stateDir = "/tmp/drove-machine-cpu";
  const lab = new BenchLab({ prefix: "drovemc", net: 61, stateDir });
  const samples = new Map<string, Map<string, number>[]>();
  try {
    for (let run = 0; run < runs; run++) {
      for (const tool of run % 2 ? [...tools].reverse() : tools) {
        await lab.fresh(machines);
        const dir = join(stateDir, "project");
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        const t = tool.start({ inventory: lab.inventory, image: lab.image, dir, installed, timeoutMs: 30 * 60_000 });
        await t.prepare();
        const cgroups = lab.inventory.machines.map((m) => labMachineCgroup(m.name) ?? fail("no cgroup v2 here: the breakdown needs it"));
        const before = cgroups.map((c) => cgroupTree(c));
        const r = await t.apply(1);
        const after = cgroups.map((c) => cgroupTree(c));
        if (r.code !== 0) throw new Error(`${tool.name}'s cold apply failed:\n${r.output.slice(-3000)}`);
        const b = breakdown(before, after);
        b.set("wall clock", r.seconds);
        console.error(`run ${run + 1}, ${tool.name}: ${[...b].map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
        samples.set(tool.name, [...(samples.get(tool.name) ?? []), b]);
        await t.closeConnections?.();
      }
    }
  } finally {
    await lab.down();
  }
  const keys = [...new Set([...samples.values()].flat().flatMap((b) => [...b.keys()]))].sort((a, b) => (a === "total" ? -1 : b === "total" ? 1 : a.localeCompare(b)));
  console.log(`Machines' CPU seconds in a cold apply, ${machines} machine(s), medians of ${runs} fresh labs per tool\n`);
  console.log(`| | ${[...samples.keys()].join(" | ")} |`);
  console.log(`| --- | ${[...samples.keys()].map(() => "---").join(" | ")} |`);
  for (const k of keys) console.log(`| ${k} | ${[...samples.values()].map((bs) => median(bs.map((b) => b.get(k) ?? 0)).toFixed(2)).join(" | ")} |`);
}

function fail(message: string): never {
  throw new Error(message);
}

if (process.argv[1]?.endsWith("machine-cpu.ts")) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
