/**
 * What integration tests share: an isolated lab (its own prefix, subnet and
 * state folder, so it never touches a user's lab), a throw-away Pulumi project,
 * and the real `pulumi` CLI run against it.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Inventory, InventoryMachine } from "../src/inventory";
import { packageRoot } from "../src/paths";
import { SshConnection } from "../src/ssh";
import { sh, type ShellCommand } from "../src/quote";
import { ensurePulumi, offlineEnv } from "../src/toolchain";
import { labDown, labUp, leftovers } from "./lab/lab";

export interface TestLab {
  readonly inventory: Inventory;
  readonly stateDir: string;
  /** Runs a command on a machine as root (for checking what drove did, and for making drift). */
  ssh(machine: string, command: ShellCommand): Promise<{ code: number; stdout: string; stderr: string }>;
  machine(name: string): InventoryMachine;
  down(): Promise<string[]>;
}

/** Boots an isolated lab of `count` machines. `net` is the third octet of its /24. */
export async function bootTestLab(name: string, net: number, count: number): Promise<TestLab> {
  const stateDir = mkdtempSync(join(tmpdir(), `drove-it-${name}-`));
  process.env.DROVE_STATE = stateDir;
  process.env.DROVE_LAB_PREFIX = name;
  process.env.DROVE_LAB_NET = `10.213.${net}`;
  delete process.env.DROVE_LAB_BRIDGE;
  delete process.env.DROVE_INVENTORY;
  const inventory = await labUp(count, () => undefined);
  const conns = new Map<string, Promise<SshConnection>>();
  const machine = (n: string) => {
    const m = inventory.machines.find((x) => x.name === n);
    if (!m) throw new Error(`no machine ${n} in the test lab`);
    return m;
  };
  return {
    inventory,
    stateDir,
    machine,
    async ssh(n, command) {
      const open = () => {
        const m = machine(n);
        const c = SshConnection.open({ host: m.address, user: m.user, privateKey: readFileSync(m.privateKeyPath, "utf8"), hostKey: m.hostKey });
        conns.set(n, c);
        c.catch(() => conns.delete(n));
        return c;
      };
      let c = conns.get(n);
      // A machine cut off (or restarted) by a test closes the old connection: open a new one.
      if (c && !(await c.catch(() => undefined))?.isOpen) c = undefined;
      return (await (c ?? open())).exec(command);
    },
    async down() {
      for (const c of conns.values()) (await c.catch(() => undefined))?.close();
      await labDown(() => undefined);
      const left = await leftovers();
      rmSync(stateDir, { recursive: true, force: true });
      return left;
    },
  };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for messages. */
  readonly output: string;
}

/** Whether a process of this box is still there. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A `pulumi` command running in the background (see {@link TestProject.pulumiInBackground}). */
export interface BackgroundRun {
  readonly pid: number;
  readonly done: Promise<CliResult>;
  kill(): void;
}

/** A throw-away Pulumi project running one of `integration/programs/*.ts`, with a stack. */
export class TestProject {
  readonly dir: string;
  private readonly env: NodeJS.ProcessEnv;

  private constructor(program: string, stack: string) {
    ensurePulumi();
    this.dir = mkdtempSync(join(process.env.DROVE_STATE ?? tmpdir(), "project-"));
    symlinkSync(join(packageRoot, "node_modules"), join(this.dir, "node_modules"));
    writeFileSync(join(this.dir, "package.json"), JSON.stringify({ name: "drove-it", main: "index.ts" }));
    writeFileSync(
      join(this.dir, "Pulumi.yaml"),
      ["name: drove-it", "runtime:", "  name: nodejs", "  options: {typescript: true}", "options:", "  refresh: always", ""].join("\n"),
    );
    writeFileSync(join(this.dir, "index.ts"), `export * from ${JSON.stringify(join(packageRoot, "integration", "programs", program))};\n`);
    mkdirSync(join(this.dir, ".drove"), { recursive: true });
    // The test's own backend and passphrase, whatever the calling shell exported.
    for (const k of ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_STACK"]) delete process.env[k];
    this.env = { ...process.env, ...offlineEnv(), PULUMI_STACK: stack };
  }

  static async create(program: string, stack = "it"): Promise<TestProject> {
    const p = new TestProject(program, stack);
    const r = await p.pulumi(["stack", "init", stack]);
    if (r.code !== 0) throw new Error(`pulumi stack init failed:\n${r.output}`);
    return p;
  }

  /** Runs the real `pulumi` CLI in the project. Never throws for a non-zero exit. */
  pulumi(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(
        "pulumi",
        [...args, "--non-interactive", "--color=never"],
        { cwd: this.dir, env: { ...this.env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
          resolve({ code, stdout, stderr, output: `${stdout}\n${stderr}` });
        },
      );
    });
  }

  /**
   * Starts the real `pulumi` CLI in the project in the background, as a
   * second terminal would: its pid, a way to kill it, and its result when it
   * ends (never a rejection).
   */
  pulumiInBackground(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): BackgroundRun {
    const child = spawn("pulumi", [...args, "--non-interactive", "--color=never"], { cwd: this.dir, env: { ...this.env, ...extraEnv } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<CliResult>((resolve) =>
      child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, output: `${stdout}\n${stderr}` })),
    );
    return { pid: child.pid!, done, kill: () => child.kill("SIGKILL") };
  }

  config(values: Record<string, string>, secret = false): Promise<CliResult> {
    const args = ["config", "set-all"];
    for (const [k, v] of Object.entries(values)) args.push(secret ? "--secret" : "--plaintext", `${k}=${v}`);
    return this.pulumi(args);
  }

  /** The stack's state file, as the file backend stores it. */
  stateText(): string {
    const dir = join(this.env.PULUMI_BACKEND_URL!.replace(/^file:\/\//, ""), ".pulumi", "stacks", "drove-it");
    return readFileSync(join(dir, `${this.env.PULUMI_STACK}.json`), "utf8");
  }
}

/**
 * Fails with the CLI's whole output when a command did not succeed, its
 * diagnostics first: a report that keeps only the head of a long message (a
 * CI summary) still says why.
 */
export function expectOk(r: { code: number; output: string }, what: string): void {
  if (r.code === 0) return;
  assert.fail(`${what} failed (exit ${r.code}):\n${diagnosticsOf(r.output)}\n--- the whole output ---\n${r.output}`);
}

/** What a CLI's output says went wrong: its Diagnostics section, else its lines that speak of an error. */
function diagnosticsOf(output: string): string {
  const at = output.indexOf("Diagnostics:");
  return (at >= 0 ? output.slice(at) : output.split("\n").filter((l) => /error|fail/i.test(l)).join("\n")).trim();
}

/**
 * Asserts that a CLI's output matches `re`; when it does not, the report leads
 * with the output's diagnostics (as `expectOk` does), so that a summary that
 * keeps only its head still shows what the run said instead.
 */
export function expectMatch(output: string, re: RegExp, message?: string): void {
  if (re.test(output)) return;
  assert.fail(`${message ? `${message}: ` : ""}the output did not match ${re}; it said:\n${diagnosticsOf(output)}\n--- the whole output ---\n${output}`);
}

export { sh };

/**
 * GETs a URL on a lab machine: the body (trimmed when asked), `HTTP <status>`
 * for an error status, or `unreachable (<why>)`. Never throws.
 */
export async function httpText(url: string, opts: { trim?: boolean } = {}): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return `HTTP ${res.status}`;
    const text = await res.text();
    return opts.trim ? text.trim() : text;
  } catch (err) {
    return `unreachable (${(err as Error).message})`;
  }
}

/** Polls `fn` until it returns `want` (at most `tries` times, 300 ms apart); returns the last value seen. */
export async function eventually<T>(fn: () => Promise<T>, want: T, tries = 40): Promise<T> {
  let got = await fn();
  for (let i = 1; i < tries && got !== want; i++) {
    await new Promise((r) => setTimeout(r, 300));
    got = await fn();
  }
  return got;
}
