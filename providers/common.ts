import { isDeepStrictEqual } from "node:util";
import type * as provider from "@pulumi/pulumi/provider";
import { HostError, reasonOf } from "../src/errors";
import { and } from "../src/quote";
import { redact } from "../src/secrets";
import { describeTarget, parsePinnedHostKey, SshPool, targetSecrets, type SshConnection, type SshTarget } from "../src/ssh";
import type { Step } from "./file/operations";

/** One pool per provider process: one SSH connection per host per run. */
export const pool = new SshPool();

/** The value the engine sends for inputs it does not know yet (during preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function isUnknown(v: unknown): boolean {
  return v === UNKNOWN;
}

export type Failures = provider.CheckFailure[];

/** Checks a `connection` input; returns it, adding failures for what is wrong. */
export function checkConnection(value: unknown, failures: Failures, prop = "connection"): SshTarget {
  if (isUnknown(value)) return value as unknown as SshTarget;
  if (typeof value !== "object" || value === null) {
    failures.push({ property: prop, reason: "`connection` is required: the address, user, key and host key of the machine" });
    return {} as SshTarget;
  }
  const c = value as Record<string, unknown>;
  if (!isUnknown(c.host) && (typeof c.host !== "string" || !c.host)) {
    failures.push({ property: `${prop}.host`, reason: "`host` must be the machine's address or DNS name" });
  }
  if (c.port !== undefined && !isUnknown(c.port) && !(Number.isInteger(c.port) && (c.port as number) > 0 && (c.port as number) < 65536)) {
    failures.push({ property: `${prop}.port`, reason: `\`port\` must be between 1 and 65535, but ${JSON.stringify(c.port)} was provided` });
  }
  if (c.hostKey === undefined && c.knownHostsFile === undefined) {
    failures.push({
      property: `${prop}.hostKey`,
      reason: "no host key is pinned: set `hostKey` (SHA256:... from `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) or `knownHostsFile`; drove never connects to an unverified machine",
    });
  } else if (typeof c.hostKey === "string" && !isUnknown(c.hostKey) && !parsePinnedHostKey(c.hostKey)) {
    failures.push({ property: `${prop}.hostKey`, reason: "`hostKey` must be a SHA256:... fingerprint or an `ssh-ed25519 AAAA...` public key line" });
  }
  if (c.privateKey === undefined && c.privateKeyPath === undefined && c.password === undefined && !isUnknown(c.privateKey)) {
    failures.push({ property: `${prop}.privateKey`, reason: "give `privateKeyPath` (a key file), `privateKey` (as a Pulumi secret) or `password` to log in with" });
  }
  if (c.privateKeyPath !== undefined && !isUnknown(c.privateKeyPath) && (typeof c.privateKeyPath !== "string" || !c.privateKeyPath.startsWith("/"))) {
    failures.push({ property: `${prop}.privateKeyPath`, reason: `\`privateKeyPath\` must be an absolute path to a key file, but ${JSON.stringify(c.privateKeyPath)} was provided` });
  }
  if (c.jump !== undefined) checkConnection(c.jump, failures, `${prop}.jump`);
  return c as unknown as SshTarget;
}

/** A connection's identity: where it goes, not which credentials it uses. */
export function connectionIdentity(c: SshTarget | undefined): string {
  if (!c) return "";
  return `${c.user ?? "root"}@${c.host}:${c.port ?? 22}`;
}

/**
 * Compares old outputs with new inputs, property by property. `replaceOn` are properties that cannot
 * change in place; `connection` changes are in place unless the machine itself
 * changes (a different address), which is a replacement.
 */
export function diffInputs(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  replaceOn: readonly string[],
  outputOnly: readonly string[] = [],
): provider.DiffResult {
  // The engine passes the old *outputs*: properties only the provider sets are not compared.
  const keys = new Set([...Object.keys(olds), ...Object.keys(news)].filter((k) => !outputOnly.includes(k)));
  const changed: string[] = [];
  const replaces: string[] = [];
  for (const k of keys) {
    if (k === "connection") {
      const o = olds.connection as SshTarget | undefined;
      const n = news.connection as SshTarget | undefined;
      if (isUnknown(n) || isUnknown(n?.host)) {
        changed.push(k);
        continue;
      }
      if (connectionIdentity(o) !== connectionIdentity(n)) {
        changed.push(k);
        replaces.push(k);
      } else if (!isDeepStrictEqual(o, n)) changed.push(k);
      continue;
    }
    if (!isDeepStrictEqual(olds[k], news[k])) {
      changed.push(k);
      if (replaceOn.includes(k)) replaces.push(k);
    }
  }
  return { changes: changed.length > 0, replaces };
}

/** Runs a command on the connection; a non-zero exit is an error naming host and action. */
export async function runChecked(
  conn: SshConnection,
  action: string,
  step: {
    command: import("../src/quote").ShellCommand;
    stdin?: string | Buffer;
    /** A read-only probe: it may share a round trip with this machine's other probes. */
    probe?: boolean;
  },
): Promise<string> {
  const r = await conn.exec(step.command, step.stdin !== undefined ? { stdin: step.stdin } : step.probe ? { batch: true } : {});
  if (r.code !== 0) {
    const reason = r.stderr.trim().split("\n").slice(-3).join(" ") || `exit status ${r.code}`;
    throw new HostError(describeTarget(conn.target), action, reason, { fixes: fixesFor(conn.target, r.stderr) });
  }
  return r.stdout;
}

/** What a user can do about a failure whose cause drove recognises. */
export function fixesFor(target: SshTarget, stderr: string): string[] {
  const user = target.user ?? "root";
  if (/sudo: a (terminal|password) is required|is not in the sudoers file|may not run sudo/.test(stderr)) {
    return [
      `let ${user} run commands without a password (\`echo '${user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/${user}\` as root on the machine)`,
      'log in as root (`user: "root"`)',
    ];
  }
  return [];
}

/** Runs a plan's steps in one round trip. */
export async function applySteps(conn: SshConnection, what: string, steps: Step[]): Promise<void> {
  if (steps.length === 0) return;
  const stdin = steps.find((s) => s.stdin !== undefined)?.stdin;
  if (steps.filter((s) => s.stdin !== undefined).length > 1) {
    for (const s of steps) await runChecked(conn, s.description, s);
    return;
  }
  await runChecked(conn, what, { command: and(...steps.map((s) => s.command)), stdin });
}

/** Runs `fn` with a connection; errors name the host and never carry a secret. */
export async function withHost<T>(target: SshTarget, fn: (conn: SshConnection) => Promise<T>): Promise<T> {
  try {
    return await fn(await pool.get(target));
  } catch (err) {
    const msg = redact(reasonOf(err), targetSecrets(target));
    if (err instanceof HostError) {
      err.message = msg;
      throw err;
    }
    throw new HostError(describeTarget(target), "reconcile", msg);
  }
}
