/**
 * The four tools the benchmark runs, each on a fresh lab, each driven the way
 * its users drive it: drove and @pulumi/command through the real `pulumi`
 * CLI, Ansible through `ansible-playbook`, pyinfra through its CLI.
 */
import { execFileSync } from "node:child_process";
import { InvalidArgumentError } from "commander";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Inventory } from "../src/inventory";
import { inventoryPath, packageRoot } from "../src/paths";
import { ensurePulumi, installProviderPlugin, offlineEnv } from "../src/toolchain";
import { timed, type Timed } from "./measure";
import { pyinfraFoundChanges } from "./stats";
import { fileContent, WORKLOAD } from "./workload";

/** Runs `bench/setup.sh` (idempotent, cached) and reads what it reports: where the other tools are. */
export function installTools(): Installed {
  const out = execFileSync("bash", [join(packageRoot, "bench", "setup.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])) as unknown as Installed;
}

/** What `bench/setup.sh` reports: where the other tools are. */
export interface Installed {
  readonly ANSIBLE_PLAYBOOK: string;
  readonly PYINFRA: string;
  readonly PULUMI_HOME: string;
}

export interface ToolContext {
  readonly inventory: Inventory;
  /** The web image, digest-pinned, in the lab's registry. */
  readonly image: string;
  /** A folder of the tool's own for this run. */
  readonly dir: string;
  readonly installed: Installed;
  readonly timeoutMs: number;
}

export interface ToolRun {
  /** Untimed: project, stack, inventory files. */
  prepare(): Promise<void>;
  /** Applies the workload at file generation `generation`. */
  apply(generation: number): Promise<Timed>;
  /** The run that should find nothing to do (and says so: a non-zero code when it found changes). */
  noChange(generation: number): Promise<Timed>;
  /** Pulumi state, for the Pulumi-based tools. */
  stateText?(): string;
  /** Ends connections the tool keeps between runs (Ansible's ControlPersist masters). */
  closeConnections?(): Promise<void>;
}

export interface Tool {
  readonly name: string;
  /** How the no-change run is invoked, for the README and results. */
  readonly noChangeCommand: string;
  start(ctx: ToolContext): ToolRun;
}

function vars(ctx: ToolContext, generation: number): Record<string, string | number> {
  return {
    file_path: WORKLOAD.filePath,
    file_mode: WORKLOAD.fileMode,
    content: fileContent(generation),
    package: WORKLOAD.package,
    unit_name: WORKLOAD.unitName,
    unit_text: WORKLOAD.unitText,
    container_name: WORKLOAD.containerName,
    image: ctx.image,
    port: WORKLOAD.port,
  };
}

/** A Pulumi project running one of bench/programs/*.ts with the real CLI, its own file backend. */
class PulumiRun implements ToolRun {
  private readonly env: NodeJS.ProcessEnv;
  private readonly parallel: string;

  constructor(
    private readonly ctx: ToolContext,
    private readonly program: string,
    private readonly extraConfig: Record<string, string> = {},
  ) {
    const backend = join(ctx.dir, "backend");
    mkdirSync(backend, { recursive: true });
    this.env = {
      ...process.env,
      ...offlineEnv(),
      PULUMI_BACKEND_URL: `file://${backend}`,
      PULUMI_CONFIG_PASSPHRASE: "drove-bench",
      PULUMI_CONFIG_PASSPHRASE_FILE: "",
      PULUMI_HOME: ctx.installed.PULUMI_HOME,
      PULUMI_STACK: "bench",
      // drove keeps its SSH connections for the next run for as long as Ansible's ControlPersist=60s does.
      DROVE_SSH_PERSIST: "60",
      DROVE_STATE: join(ctx.dir, "state"),
      DROVE_INVENTORY: inventoryPath(),
    };
    delete this.env.PULUMI_CONFIG_PASSPHRASE_FILE;
    // The bench's PULUMI_HOME (it holds pulumi-resource-command too) needs drove's plugin as well.
    installProviderPlugin(ctx.installed.PULUMI_HOME);
    // As Ansible's forks equal the host count: every resource may run at once.
    this.parallel = String(Math.max(8, ctx.inventory.machines.length * 6));
  }

  private pulumi(args: string[]): Promise<Timed> {
    const dash = args.indexOf("--");
    const flags = ["--non-interactive", "--color=never"];
    const all = dash < 0 ? [...args, ...flags] : [...args.slice(0, dash), ...flags, ...args.slice(dash)];
    return timed("pulumi", all, { cwd: this.ctx.dir, env: this.env, timeoutMs: this.ctx.timeoutMs });
  }

  private async ok(args: string[]): Promise<void> {
    const r = await this.pulumi(args);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${r.output}`);
  }

  async prepare(): Promise<void> {
    ensurePulumi();
    symlinkSync(join(packageRoot, "node_modules"), join(this.ctx.dir, "node_modules"));
    writeFileSync(join(this.ctx.dir, "package.json"), JSON.stringify({ name: "drove-bench", main: "index.ts" }));
    writeFileSync(
      join(this.ctx.dir, "Pulumi.yaml"),
      ["name: drove-bench", "runtime:", "  name: nodejs", "  options: {typescript: true}", ""].join("\n"),
    );
    writeFileSync(join(this.ctx.dir, "index.ts"), `export * from ${JSON.stringify(join(packageRoot, "bench", "programs", this.program))};\n`);
    await this.ok(["stack", "init", "bench"]);
    await this.ok(["config", "set", "image", this.ctx.image]);
    for (const [k, v] of Object.entries(this.extraConfig)) await this.ok(["config", "set", k, v]);
  }

  async apply(generation: number): Promise<Timed> {
    await this.ok(["config", "set", "--", "content", fileContent(generation)]);
    return this.pulumi(["up", "--yes", "--skip-preview", "--refresh", "--parallel", this.parallel]);
  }

  noChange(): Promise<Timed> {
    return this.pulumi(["preview", "--refresh", "--expect-no-changes", "--parallel", this.parallel]);
  }

  /** Ends the connections drove's SSH keeper holds (as `ssh -O exit` ends Ansible's masters). */
  async closeConnections(): Promise<void> {
    await timed(process.execPath, [join(packageRoot, "bin", "drove"), "ssh-stop"], { cwd: this.ctx.dir, env: this.env, timeoutMs: 30_000 });
  }

  stateText(): string {
    return readFileSync(join(this.ctx.dir, "backend", ".pulumi", "stacks", "drove-bench", "bench.json"), "utf8");
  }

  /** Runs `pulumi destroy` (used by the engine-cost measurement). */
  destroy(): Promise<Timed> {
    return this.pulumi(["destroy", "--yes", "--skip-preview", "--parallel", this.parallel]);
  }
}

export const drove: Tool = {
  name: "drove",
  noChangeCommand: "pulumi preview --refresh --expect-no-changes",
  start: (ctx) => new PulumiRun(ctx, "drove.ts"),
};

export const pulumiCommand: Tool = {
  name: "@pulumi/command",
  noChangeCommand: "pulumi preview --refresh --expect-no-changes",
  start: (ctx) => new PulumiRun(ctx, "command.ts"),
};

/** The Pulumi engine with N resources that do nothing (local.Command with no command). */
export function engineOnly(ctx: ToolContext, resources: number): PulumiRun {
  return new PulumiRun(ctx, "command.ts", { noop: String(resources) });
}

export const ansible: Tool = {
  name: "Ansible",
  noChangeCommand: "ansible-playbook --check --diff",
  start(ctx) {
    const cfg = join(ctx.dir, "ansible.cfg");
    const env = { ...process.env, ANSIBLE_CONFIG: cfg, ANSIBLE_NOCOLOR: "1", ANSIBLE_FORCE_COLOR: "0" };
    const play = (generation: number, extra: string[]) => {
      writeFileSync(join(ctx.dir, "vars.json"), JSON.stringify(vars(ctx, generation)));
      return timed(
        ctx.installed.ANSIBLE_PLAYBOOK,
        ["-i", join(ctx.dir, "hosts.ini"), "-e", `@${join(ctx.dir, "vars.json")}`, ...extra, join(packageRoot, "bench", "ansible", "site.yml")],
        { cwd: ctx.dir, env, timeoutMs: ctx.timeoutMs },
      );
    };
    return {
      async prepare() {
        const ms = ctx.inventory.machines;
        writeFileSync(
          join(ctx.dir, "hosts.ini"),
          ["[all]", ...ms.map((m) => `${m.name} ansible_host=${m.address} ansible_port=${m.port} ansible_user=${m.user} ansible_ssh_private_key_file=${m.privateKeyPath}`), "",
            "[all:vars]", "ansible_python_interpreter=/usr/bin/python3", ""].join("\n"),
        );
        // Tuned as Ansible's users tune it: pipelining, ControlPersist, forks = hosts.
        writeFileSync(
          cfg,
          [
            "[defaults]",
            `forks = ${ms.length}`,
            "host_key_checking = True",
            "retry_files_enabled = False",
            "interpreter_python = /usr/bin/python3",
            "",
            "[ssh_connection]",
            "pipelining = True",
            `ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=${join(ctx.dir, "known_hosts")}`,
            `control_path_dir = ${join(ctx.dir, "cp")}`,
            "",
          ].join("\n"),
        );
      },
      apply: (generation) => play(generation, []),
      async closeConnections() {
        const cp = join(ctx.dir, "cp");
        for (const f of existsSync(cp) ? readdirSync(cp) : []) {
          await timed("ssh", ["-o", `ControlPath=${join(cp, f)}`, "-O", "exit", "bench-host"], { timeoutMs: 10_000 });
        }
      },
      async noChange(generation) {
        const r = await play(generation, ["--check", "--diff"]);
        // A check that would change something is not a no-change run.
        const changed = [...r.output.matchAll(/\bchanged=(\d+)/g)].some((x) => Number(x[1]) > 0);
        return changed && r.code === 0 ? { ...r, code: 2 } : r;
      },
    };
  },
};

export const pyinfra: Tool = {
  name: "pyinfra",
  noChangeCommand: "pyinfra --dry",
  start(ctx) {
    const varsFile = join(ctx.dir, "vars.json");
    const env = { ...process.env, DROVE_BENCH_VARS: varsFile, PYTHONUNBUFFERED: "1" };
    const run = (generation: number, extra: string[]) => {
      writeFileSync(varsFile, JSON.stringify(vars(ctx, generation)));
      return timed(
        ctx.installed.PYINFRA,
        ["--parallel", String(ctx.inventory.machines.length), ...extra, join(ctx.dir, "inventory.py"), join(packageRoot, "bench", "pyinfra", "deploy.py")],
        { cwd: ctx.dir, env, timeoutMs: ctx.timeoutMs },
      );
    };
    return {
      async prepare() {
        const ms = ctx.inventory.machines;
        // (host, data) tuples; JSON's objects, strings and numbers read the same in Python.
        const hosts = ms.map((m) => `(${JSON.stringify(m.address)}, ${JSON.stringify({ ssh_port: m.port, ssh_user: m.user, ssh_key: m.privateKeyPath })})`);
        writeFileSync(
          join(ctx.dir, "inventory.py"),
          [
            `hosts = ([${hosts.join(", ")}], {`,
            `    "ssh_known_hosts_file": ${JSON.stringify(join(ctx.dir, "known_hosts"))},`,
            `    "ssh_strict_host_key_checking": "accept-new",`,
            "})",
            "",
          ].join("\n"),
        );
      },
      // -y: execute at once, without the change detection and prompt.
      apply: (generation) => run(generation, ["-y"]),
      async noChange(generation) {
        // Without -y, pyinfra detects changes and prints them; --dry then stops before executing.
        const r = await run(generation, ["--dry"]);
        return pyinfraFoundChanges(r.output) && r.code === 0 ? { ...r, code: 2 } : r;
      },
    };
  },
};

export const TOOLS: readonly Tool[] = [drove, ansible, pyinfra, pulumiCommand];

// ---- command-line arguments shared by the benchmark's commands ----------

export function positiveInts(v: string): number[] {
  const xs = v.split(",").map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError(`expected whole numbers above 0, separated by commas, but got ${JSON.stringify(v)}`);
  return xs;
}

export function positiveInt(v: string): number {
  const [x, ...rest] = positiveInts(v);
  if (rest.length) throw new InvalidArgumentError(`expected one whole number, but got ${JSON.stringify(v)}`);
  return x;
}

/** The tools a comma-separated list names (case and punctuation aside; "command" is @pulumi/command). */
export function toolsNamed(list: string): Tool[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .map((n) => {
      const t = TOOLS.find((x) => x.name.toLowerCase() === n.toLowerCase() || x.name.replace(/\W/g, "").toLowerCase() === n.replace(/\W/g, "").toLowerCase() || (n === "command" && x.name === "@pulumi/command"));
      if (!t) throw new InvalidArgumentError(`unknown tool ${JSON.stringify(n)}: use some of ${TOOLS.map((x) => x.name).join(", ")}`);
      return t;
    });
}

/** The benchmark boots labs: it needs root, and says so before anything else. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("The benchmark boots labs of machines and needs root. Either run it as root, or with sudo.");
}
