/**
 * Host locks: one drove run at a time changes a machine (as k0sctl locks its
 * hosts).
 *
 * A run that may change machines (`pulumi up`, `destroy`, ...) takes, on each
 * machine, before its first step there, an exclusive `flock` on
 * /run/drove/lock. A shell started on the run's SSH connection holds it and
 * records who holds it in /run/drove/lock.json; drove writes a heartbeat to
 * that shell's input. The lock ends with the shell, and the shell ends when:
 * - the run is done (drove closes its connection), or its process dies (the
 *   kernel closes the connection, sshd ends the session, the shell reads EOF);
 * - the run's `pulumi` was killed: its provider notices that its engine is
 *   gone and exits (see `exitWhenEngineGone`), which is the case above;
 * - no heartbeat came for `EXPIRY_S` seconds: the controller's machine or the
 *   network path died, which sshd alone may not notice for hours.
 * A second run that finds the lock taken fails for that machine at once,
 * naming the holder, before anything on it changes. `pulumi preview` and
 * `pulumi refresh` only read, and take no lock.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { basename } from "node:path";
import type { ClientChannel } from "ssh2";
import { HostError } from "../errors";
import { sh, type ShellCommand } from "../quote";
import { describeTarget, type SshConnection, type SshTarget } from "./connection";

export const LOCK_DIR = "/run/drove";
export const LOCK_FILE = `${LOCK_DIR}/lock`;
export const HOLDER_FILE = `${LOCK_DIR}/lock.json`;
/** How often drove tells a lock's holder that the run is alive. */
export const HEARTBEAT_MS = 5_000;
/** A lock whose run has not been heard from for this long is released. */
export const EXPIRY_S = 30;
/** How long a run waits for a lock (a run's preview pass hands its lock to its update pass). */
export const WAIT_S = 2;
/** How long a run waits for a lock held by itself (its preview pass, still closing). */
const SAME_RUN_WAIT_MS = 60_000;

/** Who holds a lock: never a secret, never a command line (it may carry config values). */
export interface LockHolder {
  readonly stack?: string;
  readonly project?: string;
  /** The `pulumi` command: `up`, `destroy`... */
  readonly command?: string;
  /** `user@host` of the machine the run is on. */
  readonly controller: string;
  /** The `pulumi` process's id on that machine. */
  readonly pid: number;
  /** When the run began, ISO 8601. */
  readonly since: string;
}

/** "stack dev of project web, `pulumi up` by root@ctl pid 1234, since 2026-11-30T19:40:00.000Z" */
export function describeHolder(h: LockHolder): string {
  const what = [h.stack ? `stack ${h.stack}` : undefined, h.project ? `project ${h.project}` : undefined].filter(Boolean).join(" of ");
  const how = `${h.command ? `\`pulumi ${h.command}\` ` : ""}by ${h.controller} pid ${h.pid}`;
  return [what || undefined, how, `since ${h.since}`].filter(Boolean).join(", ");
}

/** Whether two holders are one run (its preview pass and its update pass). */
export function sameRun(a: LockHolder, b: LockHolder): boolean {
  return a.controller === b.controller && a.pid === b.pid;
}

/**
 * The remote shell that takes and holds the lock. It prints `LOCKED <name>`
 * and then lives while heartbeats come, or `BUSY <name>` and the holder's
 * record, and ends. `<name>` is the machine's own name, for messages.
 */
export function lockCommand(holder: LockHolder, options: { waitS?: number; expiryS?: number } = {}): ShellCommand {
  const waitS = options.waitS ?? WAIT_S;
  const expiryS = options.expiryS ?? EXPIRY_S;
  // fd 9 holds the lock; the heartbeat reader is started without it, so the lock never outlives this shell.
  return sh`command -v flock >/dev/null 2>&1 || { echo 'flock: command not found' >&2; exit 127; }
mkdir -p ${LOCK_DIR} || exit 2
exec 9>>${LOCK_FILE}
if ! flock -w ${waitS} 9; then printf 'BUSY %s\\n' "$(uname -n)"; cat ${HOLDER_FILE} 2>/dev/null; exit 0; fi
printf '%s\\n' ${JSON.stringify(holder)} > ${`${HOLDER_FILE}.tmp`} && mv -f ${`${HOLDER_FILE}.tmp`} ${HOLDER_FILE}
printf 'LOCKED %s\\n' "$(uname -n)"
while timeout ${expiryS} sh -c 'read -r beat' 9>&-; do :; done
rm -f ${HOLDER_FILE}`;
}

export type LockAnswer =
  | { readonly state: "locked"; readonly machine: string }
  | { readonly state: "busy"; readonly machine: string; readonly holder?: LockHolder }
  | { readonly state: "failed"; readonly reason: string; readonly fixes: readonly string[] }
  /** Not complete yet: more output is needed. */
  | undefined;

/** Reads the lock shell's output; `exited` once it ended, with its exit status and errors. */
export function parseLockAnswer(stdout: string, exited?: { code: number; stderr: string }): LockAnswer {
  const nl = stdout.indexOf("\n");
  const first = nl < 0 ? undefined : stdout.slice(0, nl);
  const locked = /^LOCKED (.*)$/.exec(first ?? "");
  if (locked) return { state: "locked", machine: locked[1] };
  if (!exited) return undefined;
  const busy = /^BUSY (.*)$/.exec(first ?? "");
  if (busy) return { state: "busy", machine: busy[1], holder: parseHolder(stdout.slice(nl + 1)) };
  if (exited.code === 127 && /flock/.test(exited.stderr)) {
    return { state: "failed", reason: "flock (util-linux) is not installed there", fixes: ["install util-linux on the machine (`apt-get install util-linux`, `dnf install util-linux`)"] };
  }
  const reason = exited.stderr.trim().split("\n").slice(-3).join(" ") || `the lock shell ended with exit status ${exited.code}`;
  return { state: "failed", reason, fixes: [] };
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text.trim()) as Partial<LockHolder>;
    if (typeof h.controller !== "string" || typeof h.pid !== "number" || typeof h.since !== "string") return undefined;
    const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    const out: { -readonly [K in keyof LockHolder]: LockHolder[K] } = { controller: h.controller, pid: h.pid, since: h.since };
    if (str(h.stack)) out.stack = str(h.stack);
    if (str(h.project)) out.project = str(h.project);
    if (str(h.command)) out.command = str(h.command);
    return out;
  } catch {
    return undefined;
  }
}

/** The fixes for a login user that may not use sudo without a password (as `providers/common.ts` gives them). */
export function sudoFixes(target: SshTarget, stderr: string): string[] {
  const user = target.user ?? "root";
  if (!/sudo: a (terminal|password) is required|is not in the sudoers file|may not run sudo/.test(stderr)) return [];
  return [`let ${user} run commands without a password (\`echo '${user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/${user}\` as root on the machine)`, 'log in as root (`user: "root"`)'];
}

/** `10.0.0.5:22`, or `10.0.0.5:22 via 10.0.0.1:22` behind a bastion. */
export function routeOf(t: SshTarget): string {
  return `${t.host}:${t.port ?? 22}${t.jump ? ` via ${routeOf(t.jump)}` : ""}`;
}

/** Another run holds the machine's lock. */
export class LockError extends HostError {
  constructor(target: SshTarget, machine: string, holder: LockHolder | undefined, expiryS = EXPIRY_S) {
    const who = holder ? ` (${describeHolder(holder)})` : " (it has not recorded who it is yet)";
    const reason = `another drove run holds it${who}`;
    super(describeTarget(target), "lock", reason, {
      fixes: ["wait for it to finish", `if that run was killed, run again: its lock is released when its SSH session ends (within ${expiryS} s)`],
    });
    // "Unable to lock m1 (10.0.0.5:22): ..." names the machine as it names itself.
    const generic = `Unable to lock on ${describeTarget(target)}: `;
    this.message = `Unable to lock ${machine} (${routeOf(target)}): ${this.message.slice(generic.length)}`;
    this.name = "LockError";
  }
}

/** A machine's lock, held over one SSH connection for as long as it stays open. */
export class HostLock {
  private open = true;
  private readonly beat: NodeJS.Timeout;

  private constructor(
    private readonly channel: ClientChannel,
    /** The machine's own name. */
    readonly machine: string,
  ) {
    this.beat = setInterval(() => {
      if (this.open) channel.write("\n");
    }, HEARTBEAT_MS);
    this.beat.unref();
    channel.on("close", () => this.lost());
    channel.on("error", () => this.lost());
  }

  /** False once its shell or its connection ended. */
  get held(): boolean {
    return this.open;
  }

  release(): void {
    if (!this.open) return;
    this.lost();
    this.channel.end();
  }

  private lost(): void {
    this.open = false;
    clearInterval(this.beat);
  }

  /**
   * Takes the lock of the machine `conn` leads to, for `holder`; fails with a
   * LockError, naming the holder, when another run has it.
   */
  static async acquire(conn: SshConnection, holder: LockHolder): Promise<HostLock> {
    const deadline = Date.now() + SAME_RUN_WAIT_MS;
    for (;;) {
      const { lock, answer } = await HostLock.attempt(conn, holder);
      if (lock) return lock;
      if (answer?.state === "busy") {
        // This run's own preview pass, whose provider is still being closed: it lets go shortly.
        if (answer.holder && sameRun(answer.holder, holder) && Date.now() < deadline) continue;
        throw new LockError(conn.target, answer.machine, answer.holder);
      }
      const failed = answer as Extract<LockAnswer, { state: "failed" }>;
      throw new HostError(describeTarget(conn.target), "lock", failed.reason, { fixes: failed.fixes.length ? [...failed.fixes] : sudoFixes(conn.target, failed.reason) });
    }
  }

  private static async attempt(conn: SshConnection, holder: LockHolder): Promise<{ lock?: HostLock; answer: LockAnswer }> {
    const channel = await conn.start(lockCommand(holder));
    return new Promise((resolve) => {
      let stdout = "";
      let stderr = "";
      let done = false;
      const finish = (r: { lock?: HostLock; answer: LockAnswer }) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        channel.close();
        finish({ answer: { state: "failed", reason: `the shell holding the lock did not answer within ${WAIT_S + 30} s`, fixes: ["check that the machine is not overloaded, and run again"] } });
      }, (WAIT_S + 30) * 1000);
      channel.on("data", (d: Buffer) => {
        stdout += d.toString("utf8");
        const answer = parseLockAnswer(stdout);
        if (answer?.state === "locked") finish({ lock: new HostLock(channel, answer.machine), answer });
      });
      channel.stderr.on("data", (d: Buffer) => {
        stderr += d.toString("utf8");
      });
      channel.on("close", (code: number | null) => finish({ answer: parseLockAnswer(stdout, { code: code ?? 255, stderr }) }));
    });
  }
}

/** The `pulumi` command in a command line (`up`, `preview`...), skipping global flags and their values. */
export function pulumiCommandOf(argv: readonly string[]): string | undefined {
  if (argv.length === 0 || basename(argv[0]) !== "pulumi") return undefined;
  const valued = new Set(["-C", "--cwd", "-v", "--verbose", "--color", "--memprofilerate", "--profiling", "--tracing", "--tracing-header", "--otel-traces"]);
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (valued.has(a)) i++;
    else if (!a.startsWith("-")) return a;
  }
  return undefined;
}

/** `pulumi` commands that only read machines, and so take no lock. */
const READ_ONLY = new Set(["preview", "pre", "refresh"]);

/** The command line of this process's parent (the Pulumi engine, for a provider). */
function parentArgv(): string[] {
  try {
    return readFileSync(`/proc/${process.ppid}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
  } catch {
    try {
      return execFileSync("ps", ["-o", "args=", "-p", String(process.ppid)], { encoding: "utf8" }).trim().split(/\s+/);
    } catch {
      return [];
    }
  }
}

/**
 * The lock holder for this process, when it is a provider serving a `pulumi`
 * command that may change machines; undefined otherwise (preview, refresh,
 * or not run by Pulumi at all). The protocol tells a provider nothing of
 * preview or update, so its parent's command line says which run it serves.
 */
export function runHolder(argv: readonly string[] = parentArgv(), env: NodeJS.ProcessEnv = process.env, now: Date = new Date()): LockHolder | undefined {
  const command = pulumiCommandOf(argv);
  if (argv.length === 0 || basename(argv[0]) !== "pulumi" || (command !== undefined && READ_ONLY.has(command))) return undefined;
  const holder: { -readonly [K in keyof LockHolder]: LockHolder[K] } = { controller: `${userInfo().username}@${hostname()}`, pid: process.ppid, since: now.toISOString() };
  if (env.PULUMI_STACK) holder.stack = env.PULUMI_STACK;
  if (env.PULUMI_PROJECT) holder.project = env.PULUMI_PROJECT;
  if (command) holder.command = command;
  return holder;
}

let watching = false;

/**
 * A `pulumi` killed outright (SIGKILL) cannot stop its plugins: its provider
 * would live on, keeping its connections and so its locks. Once its engine is
 * gone (the parent changed), the provider exits, and its locks go with it.
 */
export function exitWhenEngineGone(): void {
  if (watching) return;
  watching = true;
  const engine = process.ppid;
  if (engine <= 1) return;
  setInterval(() => {
    if (process.ppid === engine) return;
    process.stderr.write(`drove: the Pulumi engine (pid ${engine}) is gone; this provider exits and its host locks are released\n`);
    process.exit(1);
  }, 1000).unref();
}
