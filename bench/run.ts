/**
 * `npm run bench -- --machines 10`: the benchmark of issue 6. For each lab
 * size, each run, each tool in turn (the order rotated from run to run): a
 * fresh lab, then the cold apply, the no-change run and a one-line change on
 * every host, each timed; the machines are checked after each. Writes
 * bench/results/<date>-<machines>.md (and the raw samples beside it as JSON).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { cacheDir, packageRoot } from "../src/paths";
import { pulumiBinDir } from "../src/toolchain";
import { BenchLab } from "./lab";
import { machinesCpuSeconds } from "../integration/lab/lab";
import { loadAverage } from "./measure";
import {
  bytes,
  connectionsTable,
  markdownTable,
  median,
  memoryTable,
  cpuTable,
  machineCpuTable,
  PHASE_TITLES,
  PHASES,
  rotation,
  secs,
  stateBytes,
  timesTable,
  type Phase,
  type Sample,
} from "./stats";
import { engineOnly, installTools, positiveInt, positiveInts, requireRoot, TOOLS, toolsNamed, type Installed, type Tool } from "./tools";

const log = (s: string) => console.error(`${new Date().toISOString().slice(11, 19)} bench: ${s}`);

const program = new Command()
  .name("npm run bench --")
  .description("drove against Ansible, pyinfra and @pulumi/command on the same workload (see bench/README.md)")
  .option("--machines <sizes>", "lab sizes, comma-separated", positiveInts, [10])
  .option("--runs <n>", "runs per size; each figure is the median", positiveInt, 3)
  .option("--tools <names>", `tools, comma-separated: ${TOOLS.map((t) => t.name).join(", ")}`, TOOLS.map((t) => t.name).join(","))
  .option("--prefix <prefix>", "lab prefix (network namespaces, bridge)", "drovebn")
  .option("--nets <octets>", "third octet of each size's lab subnet, in the order of --machines", positiveInts, [43, 44, 45])
  .option("--timeout <minutes>", "longest one tool command may take", positiveInt, 30)
  .option("--no-engine-baseline", "skip measuring the Pulumi engine alone with no-op resources")
  .option("--out <dir>", "where results go", join(packageRoot, "bench", "results"))
  .option("--report <json>", "only render the markdown of an earlier run's .json again (next to it)");

interface Extra {
  /** exec/subsystem/shell requests per host in a no-change run (sshd at DEBUG1). */
  requestsPerHost: Map<string, number>;
  connectionsPerHostVerbose: Map<string, number>;
  state: Map<string, ReturnType<typeof stateBytes>>;
  engine?: { resources: number; up: number; preview: number; upZero: number; previewZero: number; upPerResourceMs: number; previewPerResourceMs: number; peakRss: Record<string, number> };
  loads: number[];
  failures: string[];
}



function versions(installed: Installed): Record<string, string> {
  const v = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0].trim();
    } catch {
      return "?";
    }
  };
  const pkg = require(join(packageRoot, "package.json")) as { version: string; devDependencies: Record<string, string>; dependencies: Record<string, string> };
  return {
    drove: pkg.version,
    pulumi: `CLI ${v(join(pulumiBinDir(), "pulumi"), ["version"])}, @pulumi/pulumi ${pkg.dependencies["@pulumi/pulumi"]}`,
    ansible: v(installed.ANSIBLE_PLAYBOOK, ["--version"]),
    pyinfra: v(installed.PYINFRA, ["--version"]),
    "@pulumi/command": `${pkg.devDependencies["@pulumi/command"]} (SDK and provider plugin)`,
  };
}

async function benchSize(machines: number, net: number, opts: ReturnType<typeof program.opts>, tools: Tool[], installed: Installed, workRoot: string) {
  const lab = new BenchLab({ prefix: opts.prefix, net, stateDir: join(cacheDir(), "bench", "lab") });
  const samples: Sample[] = [];
  const extra: Extra = { requestsPerHost: new Map(), connectionsPerHostVerbose: new Map(), state: new Map(), loads: [], failures: [] };
  const timeoutMs = opts.timeout * 60_000;
  try {
    for (let run = 0; run < opts.runs; run++) {
      for (const tool of rotation(tools, run)) {
        log(`${machines} machine(s), run ${run + 1}/${opts.runs}, ${tool.name}: fresh lab`);
        await lab.fresh(machines);
        const dir = join(workRoot, `${machines}-${run + 1}-${tool.name.replace(/\W/g, "")}`);
        mkdirSync(dir, { recursive: true });
        const t = tool.start({ inventory: lab.inventory, image: lab.image, dir, installed, timeoutMs });
        await t.prepare();
        let failed = false;
        for (const phase of PHASES) {
          const generation = phase === "change" ? 2 : 1;
          if (failed) {
            samples.push({ tool: tool.name, machines, run, phase, seconds: NaN, ok: false });
            continue;
          }
          const before = await lab.sshCounts();
          const load = loadAverage();
          extra.loads.push(load);
          const cpu0 = machinesCpuSeconds();
          const r = phase === "noChange" ? await t.noChange(generation) : await t.apply(generation);
          const machineCpu = machinesCpuSeconds() - cpu0;
          const after = await lab.sshCounts();
          const wrong = r.code === 0 ? await lab.wrong(generation) : [];
          const ok = r.code === 0 && wrong.length === 0;
          log(`  ${PHASE_TITLES[phase]}: ${secs(r.seconds)}${ok ? "" : " FAILED"}`);
          if (!ok) {
            failed = true;
            const why = r.code !== 0 ? `exit ${r.code}:\n${r.output.slice(-4000)}` : `machines not as expected:\n${wrong.join("\n")}\n${r.output.slice(-3000)}`;
            extra.failures.push(`${tool.name}, ${machines} machine(s), run ${run + 1}, ${PHASE_TITLES[phase]}: ${why}`);
            log(`  ${why.slice(0, 2000)}`);
          }
          samples.push({ tool: tool.name, machines, run, phase, seconds: r.seconds, connections: after.connections - before.connections, load, peakRss: r.peakRss, cpu: r.cpu, machineCpu, ok });
        }
        if (!failed && !extra.requestsPerHost.has(tool.name)) {
          // Once per tool and size: a no-change run with sshd logging every channel request.
          await lab.verboseSshd(true);
          await t.closeConnections?.();
          const before = await lab.sshCounts();
          const r = await t.noChange(2);
          const after = await lab.sshCounts();
          await lab.verboseSshd(false);
          if (r.code === 0) {
            extra.requestsPerHost.set(tool.name, (after.requests - before.requests) / machines);
            extra.connectionsPerHostVerbose.set(tool.name, (after.connections - before.connections) / machines);
          }
        }
        if (t.stateText && !failed && !extra.state.has(tool.name)) extra.state.set(tool.name, stateBytes(t.stateText()));
        // Nothing a tool keeps (SSH masters, drove's keeper) outlives its turn.
        await t.closeConnections?.();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const droveState = extra.state.get("drove");
    if (opts.engineBaseline && tools.some((t) => t.name === "drove")) {
      // The Pulumi engine alone: as many resources as drove's run had, doing nothing.
      const resources = droveState ? droveState.resources - 2 : machines * 6;
      log(`${machines} machine(s): the Pulumi engine alone, ${resources} no-op resources`);
      const dir = join(workRoot, `${machines}-engine`);
      mkdirSync(dir, { recursive: true });
      // With 0 resources too: what a run costs whatever it holds.
      const measure = async (n: number) => {
        const d = join(dir, String(n));
        mkdirSync(d, { recursive: true });
        const e = engineOnly({ inventory: lab.inventory, image: lab.image, dir: d, installed, timeoutMs }, n);
        await e.prepare();
        const ups: number[] = [];
        const previews: number[] = [];
        let peak: Record<string, number> = {};
        for (let i = 0; i < opts.runs; i++) {
          const up = await e.apply(1);
          const pv = await e.noChange();
          if (up.code !== 0 || pv.code !== 0) throw new Error(`engine baseline with ${n} resources failed:\n${up.output.slice(-2000)}\n${pv.output.slice(-2000)}`);
          ups.push(up.seconds);
          previews.push(pv.seconds);
          peak = pv.peakRss;
          await e.destroy();
        }
        return { up: median(ups), preview: median(previews), peak };
      };
      try {
        const zero = await measure(0);
        const full = await measure(resources);
        extra.engine = {
          resources,
          up: full.up,
          preview: full.preview,
          upZero: zero.up,
          previewZero: zero.preview,
          upPerResourceMs: ((full.up - zero.up) * 1000) / resources,
          previewPerResourceMs: ((full.preview - zero.preview) * 1000) / resources,
          peakRss: full.peak,
        };
      } catch (err) {
        extra.failures.push((err as Error).message);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    const left = await lab.down();
    if (left.length) extra.failures.push(`the lab left something behind: ${left.join("; ")}`);
  }
  return { samples, extra };
}

/** Milliseconds per resource, or why there is no such figure (a difference lost in the noise). */
function perResource(ms: number): string {
  return ms > 0 ? `${ms.toFixed(0)} ms per resource beyond that` : "the difference is below this machine's noise";
}

function report(machines: number, runs: number, samples: Sample[], extra: Extra, vers: Record<string, string>, tools: Tool[], at?: string): string {
  const date = at ?? new Date().toISOString().slice(0, 16).replace("T", " ");
  const loads = extra.loads.length ? extra.loads : [loadAverage()];
  const L = (x: number) => x.toFixed(2);
  const parts: string[] = [];
  parts.push(`# drove benchmark: ${machines} machine${machines === 1 ? "" : "s"}, ${date} UTC`, "");
  parts.push(
    `Each figure is the median of ${runs} run${runs === 1 ? "" : "s"}; in each run the tools ran one after another (the order rotated between runs), ` +
      `each on a fresh lab of ${machines} systemd-nspawn machine${machines === 1 ? "" : "s"}. Ratios are the tool's time over drove's (above 1: slower than drove).`,
    "",
    `**Noise:** this machine has ${cpus().length} cores and ${(totalmem() / 2 ** 30).toFixed(0)} GiB, and other work ran on it at the same time; ` +
      `the 1-minute load average at the start of the timed commands was ${L(Math.min(...loads))} to ${L(Math.max(...loads))} (median ${L(median(loads))}). Read the figures as rough.`,
    "",
  );
  parts.push("## Time", "", timesTable(samples), "");
  parts.push(
    "## SSH",
    "",
    "Logins the machines' sshd accepted during each timed command, per host:",
    "",
    connectionsTable(samples),
    "",
    "Round trips per host in a no-change run: the SSH channel requests (`exec`, `subsystem`, `shell`) sshd logged at `LogLevel DEBUG1`, in one extra no-change run per tool (not timed):",
    "",
    markdownTable(
      ["tool", "no-change run", "round trips per host", "logins per host"],
      tools.map((t) => [t.name, `\`${t.noChangeCommand}\``, String(extra.requestsPerHost.get(t.name) ?? "n/a"), String(extra.connectionsPerHostVerbose.get(t.name) ?? "n/a")]),
    ),
    "",
  );
  if (extra.state.size) {
    parts.push(
      "## Pulumi state",
      "",
      markdownTable(
        ["tool", "state file", "resources", "bytes per resource", "largest resource"],
        [...extra.state.entries()].map(([t, s]) => [t, bytes(s.total), String(s.resources), bytes(s.perResource), `${bytes(s.largest)} (${s.largestType})`]),
      ),
      "",
    );
  }
  parts.push("## Peak memory", "", "Largest resident set over all timed commands, summed over each group's processes (sampled from /proc every 100 ms):", "", memoryTable(samples), "");
  if (samples.some((s) => s.cpu)) {
    parts.push("## CPU in the no-change run", "", "CPU seconds (user + system) each group used in the no-change run, median over runs (from /proc, sampled every 100 ms, so a lower bound):", "", cpuTable(samples), "");
  }
  if (samples.some((s) => s.machineCpu !== undefined)) {
    parts.push(
      "## CPU on the machines",
      "",
      "CPU seconds (user + system) the lab machines used during each timed command, summed over their cgroups, median over runs: what each tool's work cost the machines (their sshd, shells, probes, apt, Docker), independent of the noise on this box's own processes:",
      "",
      machineCpuTable(samples),
      "",
    );
  }
  if (extra.engine) {
    const e = extra.engine;
    parts.push(
      "## The Pulumi engine alone",
      "",
      `${e.resources} \`local.Command\` resources that run nothing (as many resources as drove's stack holds, less the stack and its provider), same CLI, same flags: ` +
        `\`pulumi up\` ${secs(e.up)} (${secs(e.upZero)} with no resource at all: ${perResource(e.upPerResourceMs)}), ` +
        `\`pulumi preview --refresh\` ${secs(e.preview)} (${secs(e.previewZero)} with none: ${perResource(e.previewPerResourceMs)}); ` +
        `peak memory of the CLI ${bytes(e.peakRss.pulumi)}, of the plugin ${bytes(e.peakRss.provider)}. ` +
        "No Pulumi-based tool's run can be faster than this on this machine.",
      "",
    );
  }
  parts.push("## Versions", "", markdownTable(["tool", "version"], Object.entries(vers)), "");
  parts.push(
    "## Every sample",
    "",
    markdownTable(
      ["run", "tool", "phase", "seconds", "logins", "load", "ok"],
      samples.map((s) => [String(s.run + 1), s.tool, PHASE_TITLES[s.phase as Phase], Number.isFinite(s.seconds) ? s.seconds.toFixed(2) : "-", String(s.connections ?? "-"), s.load?.toFixed(2) ?? "-", s.ok ? "yes" : "no"]),
    ),
    "",
  );
  if (extra.failures.length) parts.push("## Failures", "", ...extra.failures.map((f) => "```\n" + f + "\n```\n"));
  return parts.join("\n");
}

/** Renders an earlier run's markdown again from its .json (after a change to the report's layout). */
function rerender(jsonPath: string): void {
  const j = JSON.parse(readFileSync(jsonPath, "utf8")) as {
    machines: number;
    runs: number;
    versions: Record<string, string>;
    samples: Sample[];
    extra: Omit<Extra, "requestsPerHost" | "connectionsPerHostVerbose" | "state"> & {
      requestsPerHost: Record<string, number>;
      connectionsPerHostVerbose: Record<string, number>;
      state: Record<string, ReturnType<typeof stateBytes>>;
    };
    date?: string;
  };
  const samples = j.samples.map((s) => ({ ...s, seconds: s.seconds ?? NaN }));
  const extra: Extra = {
    ...j.extra,
    requestsPerHost: new Map(Object.entries(j.extra.requestsPerHost)),
    connectionsPerHostVerbose: new Map(Object.entries(j.extra.connectionsPerHostVerbose)),
    state: new Map(Object.entries(j.extra.state)),
  };
  const names = [...new Set(samples.map((s) => s.tool))];
  const tools = TOOLS.filter((t) => names.includes(t.name));
  const text = report(j.machines, j.runs, samples, extra, j.versions, tools, j.date);
  writeFileSync(jsonPath.replace(/\.json$/, ".md"), text);
  console.log(text);
}

async function main() {
  program.parse(process.argv);
  const opts = program.opts<{ machines: number[]; runs: number; tools: string; prefix: string; nets: number[]; timeout: number; engineBaseline: boolean; out: string; report?: string }>();
  if (opts.report) return rerender(opts.report);
  requireRoot();
  const tools = toolsNamed(opts.tools);
  if (opts.nets.length < opts.machines.length) throw new InvalidArgumentError(`--nets needs one octet per lab size (${opts.machines.length}), but has ${opts.nets.length}`);
  log("bench/setup.sh: Ansible, pyinfra and pulumi-resource-command");
  const installed = installTools();
  const vers = versions(installed);
  const workRoot = join(cacheDir(), "bench", "work", new Date().toISOString().replace(/[:.]/g, "-"));
  mkdirSync(opts.out, { recursive: true });
  for (let i = 0; i < opts.machines.length; i++) {
    const machines = opts.machines[i];
    const { samples, extra } = await benchSize(machines, opts.nets[i], opts, tools, installed, workRoot);
    const text = report(machines, opts.runs, samples, extra, vers, tools);
    const file = join(opts.out, `${new Date().toISOString().slice(0, 10)}-${machines}.md`);
    writeFileSync(file, text);
    writeFileSync(file.replace(/\.md$/, ".json"), JSON.stringify({ machines, runs: opts.runs, date: new Date().toISOString().slice(0, 16).replace("T", " "), versions: vers, samples, extra: { ...extra, requestsPerHost: Object.fromEntries(extra.requestsPerHost), connectionsPerHostVerbose: Object.fromEntries(extra.connectionsPerHostVerbose), state: Object.fromEntries(extra.state) } }, null, 2));
    console.log(text);
    log(`wrote ${file}`);
  }
  rmSync(workRoot, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
