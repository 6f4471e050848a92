/**
 * Persistent SSH connections across runs, as OpenSSH's ControlPersist does for
 * Ansible: with `DROVE_SSH_PERSIST=<seconds>`, the first run starts a keeper
 * process that holds one authenticated connection per machine, and each run's
 * provider opens its channels through it (a Unix socket in the state folder,
 * mode 0600) instead of logging in again. A connection nobody used for that
 * many seconds is closed, and the keeper leaves when it holds none.
 *
 * What a run sees is unchanged: the same commands, the same errors (a run is
 * bound to the connection it started on, checked alive then; one that dies
 * mid-run fails the run's next command as its own would), the same host-key
 * and credential checks (a connection is shared only by targets that agree on
 * all of them, `SshPool.key`). If the keeper cannot be started, the run logs
 * in itself.
 *
 * The wire, one socket per request: a JSON line `{ op, target, command }`,
 * then frames (a type byte, a 4-byte length, the payload) both ways.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import type { ClientChannel } from "ssh2";
import { ConnectError, DroveError, HostError, reasonOf } from "../errors";
import { packageRoot, stateDir } from "../paths";
import { traceEvent } from "../trace";
import type { SshTarget } from "./connection";

/** Frame types. Client to keeper: */
const STDIN = 1;
const STDIN_END = 2;
const SIGNAL = 3;
const CLOSE = 4;
/** Keeper to client: */
const READY = 16;
const STDOUT = 17;
const STDERR = 18;
const EXIT = 19;
const ERROR = 20;

/** How long a kept connection that sat idle may take to run `true` before it is taken for dead and replaced. */
const STALE_OPEN_MS = 3_000;
/** A connection used this recently is taken as alive without asking. */
const FRESH_MS = 1_000;

/** Whether the connection runs `true` within `staleOpenMs`. */
async function answers(c: KeepableConnection, staleOpenMs: number): Promise<boolean> {
  try {
    const ch = await withTimeout(c.rawExec("true"), staleOpenMs);
    return await withTimeout(
      new Promise<boolean>((resolve) => {
        ch.on("close", (code: number | null) => resolve(code === 0));
        ch.resume?.();
        ch.end();
      }),
      staleOpenMs,
    );
  } catch {
    return false;
  }
}

export function frame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into frames, whatever the chunking. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) break;
      const type = this.buf.readUInt8(0);
      const payload = this.buf.subarray(5, 5 + len);
      this.buf = this.buf.subarray(5 + len);
      this.onFrame(type, payload);
    }
  }
}

/** An error as it crosses the socket: enough to raise the same error, message and fixes on the other side. */
interface WireError {
  readonly name: string;
  readonly message: string;
  readonly host?: string;
  readonly fixes?: readonly string[];
  readonly retryable?: boolean;
  /** Set when the connection a run started on is gone: the run's client then reads as closed. */
  readonly gone?: boolean;
}

/** An error raised because the connection a run started on is gone (its client must read as closed). */
function connectionGone(host: string): Error {
  return Object.assign(new HostError(host, "run a command", "the SSH connection was closed"), { gone: true });
}

function toWire(err: unknown): WireError {
  const e = err as Partial<ConnectError> & Error & { gone?: boolean };
  return { name: e.name ?? "Error", message: e.message ?? reasonOf(err), host: e.host, fixes: e.fixes, retryable: e.retryable, ...(e.gone ? { gone: true } : {}) };
}

/** The same error, same class and message, on this side. */
export function fromWire(w: WireError): Error {
  let err: Error;
  if (w.name === "ConnectError") err = new ConnectError(w.host ?? "", "connect", "", { fixes: w.fixes, retryable: w.retryable });
  else if (w.name === "HostError") err = new HostError(w.host ?? "", "connect", "", { fixes: w.fixes });
  else if (w.name === "DroveError") err = new DroveError("", { fixes: w.fixes });
  else err = new Error();
  err.message = w.message;
  return err;
}

/** Seconds a kept connection stays after its last use, from `DROVE_SSH_PERSIST`; 0 when connections are not kept. */
export function persistSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DROVE_SSH_PERSIST;
  if (raw === undefined || raw === "" || raw === "0" || raw === "false" || raw === "no") return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 86_400) {
    throw new DroveError(`DROVE_SSH_PERSIST must be a whole number of seconds from 0 to 86400 (how long an idle SSH connection is kept for the next run), but it is ${JSON.stringify(raw)}`, {
      fixes: ["set it to 60 (as OpenSSH's ControlPersist=60 keeps a connection a minute)", "unset it to log in afresh on every run"],
    });
  }
  return n;
}

/** This build of drove (its version and the keeper's code), so a keeper of an older build is never used. */
function buildId(): string {
  const version = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")).version as string;
  return createHash("sha256").update(`${version}\n${statSync(__filename).mtimeMs}`).digest("hex").slice(0, 10);
}

/** The keeper's socket: in the state folder, in a directory only its owner may enter. */
export function keeperSocket(): string | undefined {
  const dir = join(stateDir(), "ssh");
  const path = join(dir, `keeper-${buildId()}.sock`);
  // (a Unix socket's path has at most 107 bytes)
  return Buffer.byteLength(path) > 100 ? undefined : path;
}

// ---------------------------------------------------------------------------
// The keeper: a process of its own.

interface Kept {
  conn?: Promise<KeepableConnection>;
  /** Counts logins: a run holds the number of the connection it started on. */
  generation: number;
  active: number;
  lastUsed: number;
}

/** What the keeper needs of a connection (an `SshConnection`). */
export interface KeepableConnection {
  readonly isOpen: boolean;
  rawExec(command: string): Promise<ClientChannel>;
  close(): void;
}

export interface KeeperOptions {
  /** Logs in to a target. @default SshConnection.login */
  readonly login?: (target: SshTarget) => Promise<KeepableConnection>;
  /** Called when the keeper is done (idle, or told to stop). @default process.exit(0) */
  readonly exit?: () => void;
  /** A connection used this recently is taken as alive without asking. @default 1000 */
  readonly freshMs?: number;
  /** How long an idle kept connection may take to run `true` before it is taken for dead and replaced. @default 3000 */
  readonly staleOpenMs?: number;
}

/** Runs the keeper on `socketPath` until it has held nothing for `idleMs`. */
export async function serveKeeper(socketPath: string, idleMs: number, options: KeeperOptions = {}): Promise<{ close(): void }> {
  // The keeper logs in itself, whatever the environment says.
  process.env.DROVE_SSH_PERSIST = "0";
  const { SshConnection, describeTarget } = await import("./connection");
  const { SshPool } = await import("./pool");
  const login = options.login ?? ((t: SshTarget) => SshConnection.login(t));
  const exit = options.exit ?? (() => process.exit(0));
  const freshMs = options.freshMs ?? FRESH_MS;
  const staleOpenMs = options.staleOpenMs ?? STALE_OPEN_MS;
  const kept = new Map<string, Kept>();
  let sockets = 0;
  let lastActivity = Date.now();

  const open = (k: Kept, target: SshTarget) => {
    k.generation++;
    k.conn = login(target);
    k.conn.catch(() => {
      if (k.conn) k.conn = undefined;
    });
    return k.conn;
  };
  const entry = (target: SshTarget): Kept => {
    const key = SshPool.key(target);
    let k = kept.get(key);
    if (!k) kept.set(key, (k = { active: 0, lastUsed: Date.now(), generation: 0 }));
    return k;
  };

  /**
   * A run's connection, when it starts: the kept one if it still answers
   * (one that sat idle is asked to run `true` first: a link cut or a machine
   * rebooted since leaves no trace until then), else a fresh login, whose
   * failure is the run's.
   */
  const forRun = async (k: Kept, target: SshTarget): Promise<number> => {
    const c = k.conn ? await k.conn.catch(() => undefined) : undefined;
    if (c?.isOpen) {
      if (k.active > 1 || Date.now() - k.lastUsed < freshMs) return k.generation;
      if (await answers(c, staleOpenMs)) return k.generation;
      c.close();
    }
    await open(k, target);
    return k.generation;
  };

  /**
   * A channel on the connection the run started with. One that died since is
   * not replaced behind the run's back: the run sees "the SSH connection was
   * closed", as it would on a connection of its own, and asks again.
   */
  const channel = async (k: Kept, target: SshTarget, command: string, generation: number): Promise<ClientChannel> => {
    const c = k.generation === generation && k.conn ? await k.conn.catch(() => undefined) : undefined;
    if (!c?.isOpen) throw connectionGone(describeTarget(target));
    return c.rawExec(command);
  };

  const server = createServer((sock) => {
    sockets++;
    lastActivity = Date.now();
    let header = "";
    let k: Kept | undefined;
    let ch: ClientChannel | undefined;
    let ended = false;
    const pending: [number, Buffer][] = [];
    const reader = new FrameReader((type, payload) => {
      if (!ch) {
        pending.push([type, payload]);
        return;
      }
      apply(type, payload);
    });
    const apply = (type: number, payload: Buffer) => {
      if (!ch) return;
      if (type === STDIN) ch.write(payload);
      else if (type === STDIN_END) ch.end();
      else if (type === SIGNAL) ch.signal(payload.toString("utf8"));
      else if (type === CLOSE) ch.close();
    };
    const finish = () => {
      if (ended) return;
      ended = true;
      if (k) {
        k.active--;
        k.lastUsed = Date.now();
      }
      sock.end();
    };
    sock.on("error", () => undefined);
    sock.on("close", () => {
      sockets--;
      lastActivity = Date.now();
      // The run went away mid-command (killed): its command ends with it, as it would with its own connection.
      if (ch && !ended) ch.close();
      finish();
    });
    sock.on("data", (chunk: Buffer) => {
      if (k) return reader.push(chunk);
      header += chunk.toString("latin1");
      const nl = header.indexOf("\n");
      if (nl < 0) return;
      const rest = Buffer.from(header.slice(nl + 1), "latin1");
      let req: { op: string; target: SshTarget; command?: string; generation?: number };
      try {
        req = JSON.parse(Buffer.from(header.slice(0, nl), "latin1").toString("utf8"));
      } catch (err) {
        sock.end(frame(ERROR, JSON.stringify(toWire(err))));
        return;
      }
      if (req.op === "ping") {
        sock.end(frame(READY));
        return;
      }
      if (req.op === "exit") {
        // `drove ssh-stop`, or a benchmark between tools: every connection closes now.
        shutdown();
        sock.end(frame(READY), exit);
        return;
      }
      k = entry(req.target);
      // (lastUsed moves when a request ends: "idle" is the time since the last one did)
      k.active++;
      reader.push(rest);
      const target = req.target;
      if (req.op === "connect") {
        forRun(k, target).then(
          (generation) => {
            sock.write(frame(READY, JSON.stringify({ generation })));
            finish();
          },
          (err) => {
            sock.write(frame(ERROR, JSON.stringify(toWire(err))));
            finish();
          },
        );
        return;
      }
      channel(k, target, req.command ?? "true", req.generation ?? -1).then(
        (c) => {
          ch = c;
          if (ended) return void c.close();
          sock.write(frame(READY));
          c.on("data", (d: Buffer) => sock.write(frame(STDOUT, d)));
          c.stderr.on("data", (d: Buffer) => sock.write(frame(STDERR, d)));
          c.on("close", (code: number | null, signal?: string) => {
            sock.write(frame(EXIT, JSON.stringify({ code, signal })));
            finish();
          });
          for (const [t, p] of pending.splice(0)) apply(t, p);
        },
        (err) => {
          sock.write(frame(ERROR, JSON.stringify(toWire(err))));
          finish();
        },
      );
    });
  });

  const dir = join(socketPath, "..");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  // Listen beside the final path and move into place: a keeper started at the same moment by another run
  // either loses the rename (and serves only the run that started it) or wins it; neither sees a half-made socket.
  const mine = `${socketPath}.${process.pid}`;
  rmSync(mine, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(mine, () => resolve());
  });
  chmodSync(mine, 0o600);
  renameSync(mine, socketPath);
  const ownInode = statSync(socketPath).ino;
  // (only our own socket: a newer keeper may have taken the path)
  function removeOwnSocket(): void {
    try {
      if (statSync(socketPath).ino === ownInode) rmSync(socketPath, { force: true });
    } catch {
      // gone already
    }
  }

  const timer = setInterval(() => {
    const now = Date.now();
    for (const [key, k] of kept) {
      if (k.active === 0 && now - k.lastUsed > idleMs) {
        void k.conn?.then((c) => c.close(), () => undefined);
        kept.delete(key);
      }
    }
    if (kept.size === 0 && sockets === 0 && now - lastActivity > idleMs) {
      shutdown();
      exit();
    }
  }, Math.min(1_000, idleMs));
  /** Stops listening and closes every kept connection. */
  function shutdown(): void {
    clearInterval(timer);
    server.close();
    for (const x of kept.values()) void x.conn?.then((c) => c.close(), () => undefined);
    kept.clear();
    removeOwnSocket();
  }
  return { close: shutdown };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

// ---------------------------------------------------------------------------
// The provider's side.

/**
 * A command's channel through the keeper, shaped as the parts of ssh2's
 * ClientChannel drove uses. Like a stream, it holds what arrives (output,
 * the exit) until its reader listens: a lock holder's first line may come
 * with the channel itself, before the code that opened it has had a turn.
 */
class KeptChannel extends EventEmitter {
  readonly stderr = new EventEmitter();
  private closed = false;
  private held: [kind: "out" | "err" | "close", args: unknown[]][] | undefined = [];
  constructor(private readonly sock: Socket) {
    super();
    const release = (event: string | symbol) => {
      if (event !== "data" && event !== "close") return;
      this.removeListener("newListener", release);
      // (after the caller's synchronous set-up: its other listeners too)
      setImmediate(() => {
        const held = this.held ?? [];
        this.held = undefined;
        for (const [kind, args] of held) this.deliver(kind, args);
      });
    };
    this.on("newListener", release);
  }
  write(d: Buffer | string): boolean {
    return this.sock.write(frame(STDIN, typeof d === "string" ? Buffer.from(d) : d));
  }
  end(d?: Buffer | string): this {
    if (d !== undefined) this.write(d);
    this.sock.write(frame(STDIN_END));
    return this;
  }
  signal(name: string): void {
    this.sock.write(frame(SIGNAL, name));
  }
  close(): void {
    if (!this.sock.destroyed) this.sock.write(frame(CLOSE));
  }
  /** @internal */
  _arrived(kind: "out" | "err" | "close", ...args: unknown[]): void {
    if (kind === "close") {
      if (this.closed) return;
      this.closed = true;
    }
    if (this.held) this.held.push([kind, args]);
    else this.deliver(kind, args);
  }
  private deliver(kind: "out" | "err" | "close", args: unknown[]): void {
    if (kind === "out") this.emit("data", ...args);
    else if (kind === "err") this.stderr.emit("data", ...args);
    else this.emit("close", ...args);
  }
}

function request(path: string, header: object): Promise<{ sock: Socket; reader: (on: (type: number, payload: Buffer) => void) => void }> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    sock.once("error", reject);
    sock.once("connect", () => {
      sock.removeListener("error", reject);
      sock.write(JSON.stringify(header) + "\n");
      resolve({
        sock,
        reader: (on) => {
          const r = new FrameReader(on);
          sock.on("data", (c: Buffer) => r.push(c));
        },
      });
    });
  });
}

/**
 * The part of ssh2's Client that `SshConnection` uses, with every channel
 * opened by the keeper on its kept connection.
 */
export class KeptClient extends EventEmitter {
  private closed = false;
  constructor(
    private readonly path: string,
    private readonly target: SshTarget,
    /** The keeper's connection this client's run started on. */
    private readonly generation: number,
  ) {
    super();
  }

  exec(command: string, cb: (err: Error | undefined, ch: ClientChannel) => void): void {
    request(this.path, { op: "exec", target: this.target, command, generation: this.generation }).then(
      ({ sock, reader }) => {
        const ch = new KeptChannel(sock);
        let ready = false;
        reader((type, payload) => {
          if (type === READY && !ready) {
            ready = true;
            cb(undefined, ch as unknown as ClientChannel);
          } else if (type === STDOUT) ch._arrived("out", payload);
          else if (type === STDERR) ch._arrived("err", payload);
          else if (type === EXIT) {
            const { code, signal } = JSON.parse(payload.toString("utf8")) as { code: number | null; signal?: string };
            ch._arrived("close", code, signal ?? undefined);
          } else if (type === ERROR && !ready) {
            ready = true;
            const wire = JSON.parse(payload.toString("utf8")) as WireError;
            // The connection this run started on is gone: closed, as a connection of its own would be.
            if (wire.gone) this.end();
            cb(fromWire(wire), undefined as unknown as ClientChannel);
          }
        });
        sock.on("error", () => undefined);
        sock.on("close", () => {
          if (!ready) {
            ready = true;
            cb(new Error("drove's SSH keeper closed the request"), undefined as unknown as ClientChannel);
          } else {
            ch._arrived("err", Buffer.from("\n(drove's SSH keeper went away before the command ended)\n"));
            ch._arrived("close", null);
          }
        });
      },
      (err) => cb(err as Error, undefined as unknown as ClientChannel),
    );
  }

  /** A kept connection is the keeper's to close; this client is done with it. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit("close");
  }
}

/** A client on the keeper at `path` for `target`, bound to the connection the keeper has (or makes) for it now. */
export async function openKept(path: string, target: SshTarget): Promise<KeptClient> {
  return new KeptClient(path, target, await ask(path, target));
}

/** Asks the keeper for a live connection to `target` (it logs in when it holds none); its error is the login's. */
async function ask(path: string, target: SshTarget): Promise<number> {
  const { reader } = await request(path, { op: "connect", target });
  return new Promise<number>((resolve, reject) => {
    let done = false;
    reader((type, payload) => {
      if (done) return;
      done = true;
      if (type === READY) resolve((JSON.parse(payload.toString("utf8")) as { generation: number }).generation);
      else reject(fromWire(JSON.parse(payload.toString("utf8"))));
    });
  });
}

let starting: Promise<void> | undefined;

/** Starts a keeper on `path` (once per process) and waits until it answers. */
function startKeeper(path: string, seconds: number): Promise<void> {
  starting ??= (async () => {
    const child = spawn(process.execPath, [join(packageRoot, "bin", "ssh-keeper.js"), path, String(seconds * 1000)], {
      detached: true,
      stdio: "ignore",
      env: { ...process.env, DROVE_SSH_PERSIST: "0", DROVE_TRACE: "" },
    });
    child.unref();
    traceEvent(`ssh keeper started, pid ${child.pid}`);
    // A keeper that cannot serve (its folder cannot be made, say) exits at once: no need to wait it out.
    let exited: string | undefined;
    child.on("error", (err) => (exited = err.message));
    child.on("exit", (code, signal) => (exited = signal ? `it was killed by ${signal}` : `it exited with status ${code}`));
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        const { sock } = await request(path, { op: "ping" });
        sock.destroy();
        return;
      } catch (err) {
        if (exited !== undefined) throw new Error(exited);
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  })();
  // The next run of this process may try again.
  starting.catch(() => (starting = undefined));
  return starting;
}

/**
 * Stops the keeper of this build and state folder, if one runs: its
 * connections close at once. True when there was one.
 */
export async function stopKeeper(): Promise<boolean> {
  const path = keeperSocket();
  if (!path) return false;
  try {
    const { sock, reader } = await request(path, { op: "exit" });
    await new Promise<void>((resolve) => {
      reader(() => resolve());
      sock.on("close", () => resolve());
    });
    return true;
  } catch (err) {
    if (isSocketError(err)) return false;
    throw err;
  }
}

/**
 * A connection to `target` through the keeper (started when none runs), or
 * undefined when connections are not kept or the keeper cannot be reached:
 * the caller then logs in itself.
 */
export async function keptClient(target: SshTarget): Promise<KeptClient | undefined> {
  const seconds = persistSeconds();
  if (seconds === 0) return undefined;
  const path = keeperSocket();
  if (!path) {
    await warnKeeperUnavailable(join(stateDir(), "ssh"), "the path of its socket would be longer than a Unix socket's 107 bytes", "Set DROVE_STATE to a shorter folder, or unset DROVE_SSH_PERSIST.");
    return undefined;
  }
  try {
    return await openKept(path, target);
  } catch (err) {
    if (!isSocketError(err)) throw err;
  }
  try {
    await startKeeper(path, seconds);
  } catch (why) {
    await warnKeeperUnavailable(path, reasonOf(why));
    return undefined;
  }
  try {
    return await openKept(path, target);
  } catch (again) {
    // (a login's error is the run's to report, as without the keeper)
    if (!isSocketError(again)) throw again;
    await warnKeeperUnavailable(path, reasonOf(again));
    return undefined;
  }
}

let warned = false;

/** Once per process: the user asked for kept connections and gets none, so says so in the command's output. */
async function warnKeeperUnavailable(path: string, reason: string, fix = "Check that its folder can be made and written by this user (DROVE_STATE chooses it), or unset DROVE_SSH_PERSIST."): Promise<void> {
  traceEvent(`ssh keeper unavailable: ${reason}`);
  if (warned) return;
  warned = true;
  // (loaded here, not with this module: the engine's gRPC client is only needed for this message)
  const { warn } = await import("../engine-log");
  await warn(
    `DROVE_SSH_PERSIST is set, but drove's SSH keeper could not be started at ${path} (${reason}); this run logs in to each machine itself. ${fix}`,
  );
}

function isSocketError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "ENOTSOCK" || code === "EACCES" || code === "ENOTDIR";
}
