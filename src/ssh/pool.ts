import { traced } from "../trace";
import { createHash } from "node:crypto";
import pLimit from "p-limit";
import { ConnectError, HostError } from "../errors";
import { describeTarget, SshConnection, type SshTarget } from "./connection";
import { exitWhenEngineGone, HostLock, LockError, routeOf, runHolder, type LockHolder } from "./lock";

export interface PoolOptions {
  /** Connection attempts per host before its resources fail. @default 3 */
  readonly attempts?: number;
  /** First back-off, doubled each attempt. @default 500 */
  readonly backoffMs?: number;
  /** Handshakes in flight at once, across hosts (they cost CPU). @default 16 */
  readonly concurrentHandshakes?: number;
  /**
   * Who takes each machine's lock (`lock.ts`) before its connection is used,
   * or false for no lock.
   * @default this run, when the process is a provider serving a `pulumi` command that may change machines (not preview or refresh)
   */
  readonly lock?: LockHolder | false;
}

/**
 * One SSH connection per host per run, shared by every resource on that host.
 * A host that does not answer fails only its own resources.
 */
export class SshPool {
  private readonly connections = new Map<string, Promise<SshConnection>>();
  private readonly handshakes: ReturnType<typeof pLimit>;
  /** Connections opened, per `user@host:port` (for tests and benchmarks). */
  readonly opened = new Map<string, number>();
  private readonly holder: LockHolder | undefined;
  /** Per machine (its route): its lock, shared by every connection to it. */
  private readonly locks = new Map<string, Promise<HostLock>>();
  /** Machines another run holds: refused for the rest of this run, so none of it half-applies there. */
  private readonly refused = new Map<string, LockError>();

  constructor(private readonly options: PoolOptions = {}) {
    this.handshakes = pLimit(options.concurrentHandshakes ?? 16);
    this.holder = options.lock === undefined ? runHolder() : options.lock || undefined;
    // A provider of a run that locks must not outlive its engine, even one that never connected.
    if (this.holder) exitWhenEngineGone();
  }

  /**
   * A connection is shared only by targets that agree on everything that was
   * verified when it opened: address, user, the pinned host key and the
   * credentials. A changed pin or key never rides on an older connection.
   */
  static key(t: SshTarget): string {
    const creds = createHash("sha256")
      .update(JSON.stringify([t.privateKey ?? "", t.privateKeyPath ?? "", t.privateKeyPassphrase ?? "", t.password ?? ""]))
      .digest("hex");
    return [describeTarget(t), t.hostKey ?? "", t.knownHostsFile ?? "", t.sudo ?? "", creds, t.jump ? SshPool.key(t.jump) : ""].join("|");
  }

  /** A connection to the target; in a run that locks, only once the machine's lock is held. */
  async get(target: SshTarget): Promise<SshConnection> {
    const conn = await this.connect(target);
    if (this.holder) await traced(`lock ${describeTarget(target)}`, () => this.lock(target, conn, this.holder!));
    return conn;
  }

  private async lock(target: SshTarget, conn: SshConnection, holder: LockHolder): Promise<void> {
    const machine = routeOf(target);
    for (;;) {
      const refused = this.refused.get(machine);
      if (refused) throw refused;
      const existing = this.locks.get(machine);
      if (!existing) break;
      const held = await existing.then((l) => l.held, () => false);
      if (held) return;
      // Lost with its connection (or refused just now): the next loop takes it again, or says why not.
      if (this.locks.get(machine) === existing) this.locks.delete(machine);
    }
    const taking = HostLock.acquire(conn, holder);
    this.locks.set(machine, taking);
    try {
      await taking;
    } catch (err) {
      if (this.locks.get(machine) === taking) this.locks.delete(machine);
      if (err instanceof LockError) this.refused.set(machine, err);
      throw err;
    }
  }

  private async connect(target: SshTarget): Promise<SshConnection> {
    const key = SshPool.key(target);
    const existing = this.connections.get(key);
    if (existing) {
      const conn = await existing.catch(() => undefined);
      if (conn?.isOpen) return conn;
      this.connections.delete(key);
    }
    const opening = this.handshakes(() => this.openWithRetries(target));
    this.connections.set(key, opening);
    opening.catch(() => this.connections.delete(key));
    return opening;
  }

  private async openWithRetries(target: SshTarget): Promise<SshConnection> {
    const attempts = this.options.attempts ?? 3;
    let delay = this.options.backoffMs ?? 500;
    let last: unknown;
    for (let i = 1; i <= attempts; i++) {
      try {
        const name = describeTarget(target);
        const conn = await traced(`ssh connect ${name}`, () => SshConnection.open(target));
        this.opened.set(name, (this.opened.get(name) ?? 0) + 1);
        return conn;
      } catch (err) {
        last = err;
        if (!(err as { retryable?: boolean }).retryable || i === attempts) break;
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
    if (last instanceof HostError) throw last;
    throw new ConnectError(describeTarget(target), "connect", String(last));
  }

  closeAll(): void {
    for (const l of this.locks.values()) l.then((x) => x.release()).catch(() => undefined);
    this.locks.clear();
    for (const p of this.connections.values()) p.then((c) => c.close()).catch(() => undefined);
    this.connections.clear();
  }
}
