import { readFileSync } from "node:fs";
import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import pLimit from "p-limit";
import { ConnectError, HostError, reasonOf } from "../errors";
import { quote, type ShellCommand } from "../quote";
import { redact } from "../secrets";
import { composeBatch, parseBatch, type BatchItemResult } from "./batch";
import { traced } from "../trace";
import { keptClient } from "./keeper";
import { fingerprint, knownHostKeys, parsePinnedHostKey } from "./host-key";

/** Where and how to reach a machine over SSH. */
export interface SshTarget {
  /** Address or DNS name. */
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** @default "root" */
  readonly user?: string;
  /** A private key in OpenSSH or PEM form. A secret: never logged. */
  readonly privateKey?: string;
  /**
   * A private key file on the machine that runs Pulumi (as `ssh -i` takes
   * one), read when connecting: the key itself is then in no state, no
   * diff and no RPC. Ignored when `privateKey` is given.
   */
  readonly privateKeyPath?: string;
  /** The passphrase of `privateKey`, if it has one. A secret. */
  readonly privateKeyPassphrase?: string;
  /** A password, where keys are not used. A secret. */
  readonly password?: string;
  /** The host key to expect: `SHA256:...` or an `ssh-ed25519 AAAA...` line. */
  readonly hostKey?: string;
  /** A known_hosts file to check the host key against, when `hostKey` is not given. */
  readonly knownHostsFile?: string;
  /** Run commands through `sudo -n` (for a non-root user). @default user !== "root" */
  readonly sudo?: boolean;
  /** A machine to hop through first (it may have its own `jump`). */
  readonly jump?: SshTarget;
  /** @default 10000 */
  readonly connectTimeoutMs?: number;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Bytes fed to the command's standard input. */
  readonly stdin?: string | Buffer;
  /**
   * How long the command may run before drove stops it and fails: nothing a
   * machine does may hang a run forever.
   * @default 900000 (15 minutes)
   */
  readonly timeoutMs?: number;
  /** Run as the login user even when the target uses sudo. */
  readonly noSudo?: boolean;
  /**
   * A read-only probe that may share one round trip with the other probes
   * waiting for this machine (see `batch.ts`). Ignored with `stdin`.
   */
  readonly batch?: boolean;
}

/** `user@host:port`, for messages. */
export function describeTarget(t: SshTarget): string {
  return `${t.user ?? "root"}@${t.host}${(t.port ?? 22) === 22 ? "" : `:${t.port}`}`;
}

/** The secrets a target carries, for redaction. */
export function targetSecrets(t: SshTarget | undefined): string[] {
  if (!t) return [];
  return [t.privateKey, t.privateKeyPassphrase, t.password, ...targetSecrets(t.jump)].filter(
    (s): s is string => typeof s === "string",
  );
}

const MAX_CHANNELS = 8; // OpenSSH's MaxSessions defaults to 10
const MAX_BATCH = 64;
const DEFAULT_TIMEOUT_MS = 900_000;

interface RawResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

function text(r: RawResult | BatchItemResult): ExecResult {
  return { code: r.code, stdout: r.stdout.toString("utf8"), stderr: r.stderr.toString("utf8") };
}

interface Probe {
  /** The probe's own shell text (run in a subshell of a batch). */
  readonly text: string;
  /** The same, as it runs alone: under `sh -c`, through sudo when the target needs it. */
  readonly wrapped: string;
  readonly timeoutMs: number;
  resolve(r: ExecResult): void;
  reject(err: Error): void;
}

/** One authenticated SSH connection; channels are multiplexed over it. */
export class SshConnection {
  private readonly channels = pLimit(MAX_CHANNELS);
  private closed = false;
  private readonly probes: Probe[] = [];
  private probeScheduled = false;
  private probeInFlight = false;
  /** How many commands ran over this connection (for benchmarks and tests). */
  commands = 0;

  private constructor(
    readonly target: SshTarget,
    private readonly client: Client,
    private readonly via?: SshConnection,
  ) {
    client.on("close", () => {
      this.closed = true;
    });
    client.on("error", () => {
      this.closed = true;
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Opens a connection (through `jump`, when given) and checks the host key;
   * with `DROVE_SSH_PERSIST`, a kept one from drove's SSH keeper (`keeper.ts`).
   */
  static async open(target: SshTarget): Promise<SshConnection> {
    const kept = await keptClient(target);
    if (kept) return new SshConnection(target, kept as unknown as Client);
    return SshConnection.login(target);
  }

  /** Logs in: a connection of this process's own. */
  static async login(target: SshTarget): Promise<SshConnection> {
    const via = target.jump ? await SshConnection.login(target.jump) : undefined;
    const port = target.port ?? 22;
    const name = describeTarget(target);
    const expected = expectedHostKey(target);
    let seen: string | undefined;
    // (ssh2 is loaded on the first connection: a program, or a provider that only plans, never needs it)
    const client = new (require("ssh2") as typeof import("ssh2")).Client();
    const config: ConnectConfig = {
      host: target.host,
      port,
      username: target.user ?? "root",
      readyTimeout: target.connectTimeoutMs ?? 10_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        seen = fingerprint(key);
        return expected.accepts(key);
      },
    };
    if (target.privateKey) config.privateKey = target.privateKey;
    else if (target.privateKeyPath) config.privateKey = readKeyFile(name, target.privateKeyPath);
    if (target.privateKeyPassphrase) config.passphrase = target.privateKeyPassphrase;
    if (target.password) config.password = target.password;
    if (via) config.sock = await via.forward(target.host, port);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error & { level?: string; code?: string }) => {
        client.removeAllListeners("ready");
        reject(connectError(name, err, expected, seen, target));
      };
      client.once("error", onError);
      client.once("ready", () => {
        client.removeListener("error", onError);
        resolve();
      });
      try {
        client.connect(config);
      } catch (err) {
        onError(err as Error);
      }
    });
    return new SshConnection(target, client, via);
  }

  private forward(host: string, port: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) =>
      this.client.forwardOut("127.0.0.1", 0, host, port, (err, ch) => (err ? reject(err) : resolve(ch))),
    );
  }

  /** Runs one command under `sh -c`, through sudo when the target needs it. */
  exec(command: ShellCommand, options: ExecOptions = {}): Promise<ExecResult> {
    const targetSudo = this.target.sudo ?? (this.target.user ?? "root") !== "root";
    const useSudo = !options.noSudo && targetSudo;
    const wrapped = (useSudo ? "sudo -n " : "") + "sh -c " + quote(command.text);
    // (a batch runs as the target's user would, under one sudo when it needs one)
    if (options.batch && options.stdin === undefined && useSudo === targetSudo) {
      return new Promise((resolve, reject) => {
        this.probes.push({ text: command.text, wrapped, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, resolve, reject });
        this.scheduleProbes();
      });
    }
    return this.run(wrapped, options).then(text);
  }

  /**
   * Sends the waiting probes as one batch: at once when none is in flight,
   * else as soon as the one in flight returns (so probes that arrive while a
   * batch runs ride together in the next).
   */
  private scheduleProbes(): void {
    if (this.probeScheduled || this.probeInFlight || this.probes.length === 0) return;
    this.probeScheduled = true;
    setImmediate(() => {
      this.probeScheduled = false;
      this.probeInFlight = true;
      const items = this.probes.splice(0, MAX_BATCH);
      void this.runProbes(items).finally(() => {
        this.probeInFlight = false;
        this.scheduleProbes();
      });
    });
  }

  private async runProbes(items: Probe[]): Promise<void> {
    const alone = (p: Probe) => this.run(p.wrapped, { timeoutMs: p.timeoutMs }).then((r) => p.resolve(text(r)), p.reject);
    if (items.length === 1) return alone(items[0]);
    const batch = composeBatch(items.map((p) => p.text));
    const sudo = this.target.sudo ?? (this.target.user ?? "root") !== "root";
    let results: BatchItemResult[] | undefined;
    try {
      const r = await traced(`ssh batch of ${items.length} probes on ${describeTarget(this.target)}`, () =>
        this.run((sudo ? "sudo -n " : "") + "sh -c " + quote(batch.script), { timeoutMs: Math.max(...items.map((p) => p.timeoutMs)) }),
      );
      results = r.code === 0 ? parseBatch(r.stdout, batch, items.length) : undefined;
    } catch (err) {
      for (const p of items) p.reject(err as Error);
      return;
    }
    if (!results) {
      // The machine's shell did not give the frames back (no mktemp, a full /tmp...): one by one.
      await Promise.all(items.map(alone));
      return;
    }
    items.forEach((p, i) => p.resolve(text(results[i])));
  }

  /** Runs a wrapped command on its own channel. */
  private run(wrapped: string, options: ExecOptions): Promise<RawResult> {
    return this.channels(
      () =>
        new Promise<RawResult>((resolve, reject) => {
          if (this.closed) {
            reject(new HostError(describeTarget(this.target), "run a command", "the SSH connection was closed"));
            return;
          }
          this.commands++;
          this.client.exec(wrapped, (err, stream) => {
            if (err) {
              reject(channelError(this.target, err));
              return;
            }
            const out: Buffer[] = [];
            const errOut: Buffer[] = [];
            const limit = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
            const timer = setTimeout(() => {
              stream.signal("KILL");
              stream.close();
              reject(
                new HostError(describeTarget(this.target), "finish a command", `it was still running after ${Math.round(limit / 1000)} s, so drove stopped it`, {
                  fixes: ["find out on the machine what it waits for", "give that step more time"],
                }),
              );
            }, limit);
            stream.on("data", (d: Buffer) => out.push(d));
            stream.stderr.on("data", (d: Buffer) => errOut.push(d));
            stream.on("close", (code: number | null, signal?: string) => {
              clearTimeout(timer);
              resolve({ code: code ?? (signal ? 128 : 255), stdout: Buffer.concat(out), stderr: Buffer.concat(errOut) });
            });
            if (options.stdin !== undefined) stream.end(options.stdin);
            else stream.end();
          });
        }),
    );
  }

  /**
   * Starts a command that runs as long as its channel stays open (a host
   * lock's holder, `lock.ts`): outside the channel limit and the deadline of
   * `exec`. The caller reads its output, writes to its input, and ends it.
   */
  start(command: ShellCommand): Promise<ClientChannel> {
    const useSudo = this.target.sudo ?? (this.target.user ?? "root") !== "root";
    return this.rawExec((useSudo ? "sudo -n " : "") + "sh -c " + quote(command.text));
  }

  /** @internal A channel for a command as given (already wrapped): `start`'s, and the SSH keeper's. */
  rawExec(wrapped: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new HostError(describeTarget(this.target), "run a command", "the SSH connection was closed"));
        return;
      }
      this.commands++;
      this.client.exec(wrapped, (err, stream) => (err ? reject(channelError(this.target, err)) : resolve(stream)));
    });
  }

  close(): void {
    this.closed = true;
    this.client.end();
    this.via?.close();
  }
}

/** A channel that did not open; a kept connection's failed fresh login is passed on as it is. */
function channelError(target: SshTarget, err: Error): Error {
  if (err instanceof HostError) return err;
  return new HostError(describeTarget(target), "open an SSH channel", reasonOf(err));
}

interface HostKeyCheck {
  accepts(key: Buffer): boolean;
  describe: string;
}

function expectedHostKey(target: SshTarget): HostKeyCheck {
  const name = describeTarget(target);
  if (target.hostKey) {
    const pinned = parsePinnedHostKey(target.hostKey);
    if (!pinned) {
      throw new HostError(name, "check the host key", `hostKey ${JSON.stringify(target.hostKey)} is neither a SHA256 fingerprint nor a public key line`, {
        fixes: ["set hostKey to the output of `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the machine (SHA256:...)", "set it to the key line itself (ssh-ed25519 AAAA...)"],
      });
    }
    return { accepts: (key) => fingerprint(key) === pinned, describe: pinned };
  }
  if (target.knownHostsFile) {
    let text: string;
    try {
      text = readFileSync(target.knownHostsFile, "utf8");
    } catch (err) {
      throw new HostError(name, "check the host key", `the known_hosts file ${target.knownHostsFile} cannot be read (${reasonOf(err)})`, {
        fixes: ["create it with `ssh-keyscan`, checked against the machine's console", "pin the key with the hostKey prop instead"],
      });
    }
    const keys = knownHostKeys(text, target.host, target.port ?? 22);
    return {
      accepts: (key) => keys.some((k) => k.equals(key)),
      describe: keys.length ? keys.map(fingerprint).join(" or ") : `an entry in ${target.knownHostsFile} (there is none for this host)`,
    };
  }
  throw new HostError(name, "connect", "no host key is pinned, and drove never connects to an unverified machine", {
    fixes: ["set hostKey to the machine's host key fingerprint (SHA256:..., from `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)", "set knownHostsFile to a known_hosts file that lists it"],
  });
}

const RETRYABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);

function connectError(
  name: string,
  err: Error & { level?: string; code?: string },
  expected: HostKeyCheck,
  seen: string | undefined,
  target: SshTarget,
): HostError {
  const secrets = targetSecrets(target);
  const reason = redact(reasonOf(err), secrets);
  if (/verification failed/i.test(reason) && seen) {
    return new ConnectError(name, "connect", `its host key is ${seen}, but ${expected.describe} was expected, so drove refused it`, {
      fixes: [
        "the machine was reinstalled or its keys rotated: check the new key on its console and update hostKey",
        "someone is intercepting the connection: do not proceed",
      ],
    });
  }
  if (/Cannot parse privateKey|Encrypted private OpenSSH key detected|bad passphrase/i.test(reason)) {
    return new ConnectError(name, "read the private key", reason.replace(/^Cannot parse privateKey: /, "it is not a private key drove can read: "), {
      fixes: [
        "set privateKey to the contents of an OpenSSH or PEM private key file, or privateKeyPath to the file (e.g. ~/.ssh/id_ed25519, not the .pub)",
        "if the key has a passphrase, set privateKeyPassphrase (a Pulumi secret)",
      ],
    });
  }
  if (err.level === "client-authentication") {
    return new ConnectError(name, "log in", `the server refused every offered credential for user ${target.user ?? "root"}`, {
      fixes: ["add the public half of privateKey to ~/.ssh/authorized_keys of that user on the machine", "set user/privateKey to an account that is authorised"],
    });
  }
  const timedOut = /timed out/i.test(reason) || err.level === "client-timeout";
  return new ConnectError(name, "connect", timedOut ? "it did not answer in time" : reason, {
    fixes: ["check that the machine is up and sshd listens on that address and port", "check the address in the host's props"],
    retryable: timedOut || (err.code !== undefined && RETRYABLE.has(err.code)),
  });
}

/** A key file's content, or the reason it cannot be read, as an error that names the file and the fix. */
function readKeyFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConnectError(name, "read the private key", `${path}: ${(err as NodeJS.ErrnoException).code ?? reasonOf(err)}`, {
      fixes: ["create the key file there (it must be readable by the user running pulumi)", "point privateKeyPath at the key that logs in to this machine"],
    });
  }
}
