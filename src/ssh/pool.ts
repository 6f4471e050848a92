import { createHash } from "node:crypto";
import pLimit from "p-limit";
import { ConnectError, HostError } from "../errors";
import { describeTarget, SshConnection, type SshTarget } from "./connection";

export interface PoolOptions {
  /** Connection attempts per host before its resources fail. @default 3 */
  readonly attempts?: number;
  /** First back-off, doubled each attempt. @default 500 */
  readonly backoffMs?: number;
  /** Handshakes in flight at once, across hosts (they cost CPU). @default 16 */
  readonly concurrentHandshakes?: number;
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

  constructor(private readonly options: PoolOptions = {}) {
    this.handshakes = pLimit(options.concurrentHandshakes ?? 16);
  }

  /**
   * A connection is shared only by targets that agree on everything that was
   * verified when it opened: address, user, the pinned host key and the
   * credentials. A changed pin or key never rides on an older connection.
   */
  static key(t: SshTarget): string {
    const creds = createHash("sha256")
      .update(JSON.stringify([t.privateKey ?? "", t.privateKeyPassphrase ?? "", t.password ?? ""]))
      .digest("hex");
    return [describeTarget(t), t.hostKey ?? "", t.knownHostsFile ?? "", t.sudo ?? "", creds, t.jump ? SshPool.key(t.jump) : ""].join("|");
  }

  async get(target: SshTarget): Promise<SshConnection> {
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
        const conn = await SshConnection.open(target);
        const name = describeTarget(target);
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
    for (const p of this.connections.values()) p.then((c) => c.close()).catch(() => undefined);
    this.connections.clear();
  }
}
