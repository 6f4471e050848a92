import type { ResourceKind } from "../kind";
import { DroveError, isConnectError } from "../../src/errors";
import { refusalFixes, refusalMessage } from "../attestation/operations";
import { checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { SshPool, type SshTarget } from "../../src/ssh";
import { hostFactsCommand, parseHostFacts, type HostFacts } from "./facts";

export interface HostInputs {
  readonly connection: SshTarget;
  /** The hostname the program expects; checked against the machine. */
  readonly hostname?: string;
}

export interface HostOutputs extends HostInputs {
  readonly facts: HostFacts;
  /** Set by a refresh that could not reach the machine: why. */
  readonly unreachable?: string;
}

/** Facts are gathered once per host per run and shared. */
const factsCache = new Map<string, Promise<HostFacts>>();

/**
 * A machine's facts, gathered once per run. `known` (the facts a refresh
 * read last time) spares asking tools whose binaries have not changed.
 */
export function hostFacts(connection: SshTarget, known?: HostFacts): Promise<HostFacts> {
  const key = SshPool.key(connection);
  let p = factsCache.get(key);
  if (!p) {
    p = withHost(connection, async (conn) => parseHostFacts(await runChecked(conn, "gather facts", { command: hostFactsCommand(known), probe: true })));
    factsCache.set(key, p);
    p.catch(() => factsCache.delete(key));
  }
  return p;
}

/** How a machine is reached: address and port, through its bastions (not who logs in). */
export function routeOf(c: SshTarget): string {
  return `${c.host}:${c.port ?? 22}${c.jump ? ` via ${routeOf(c.jump)}` : ""}`;
}

/**
 * Preflight across the stack: one machine must not be managed as two Hosts
 * (two addresses, or two routes, to one machine-id), and two machines must not
 * answer to one hostname. The provider serves the whole run, so it sees every
 * Host's facts; a clash fails the second Host before anything on it changes.
 */
export class Admissions {
  private readonly byMachineId = new Map<string, { route: string; phase: Phase }>();
  private readonly byHostname = new Map<string, { route: string; phase: Phase }>();

  /**
   * `phase` says where the facts come from: a refresh of a Host already in
   * the state ("read"), or one being made or changed ("apply"). Only the same
   * phases are compared: a Host being replaced (a new address for the same
   * machine) is made while its old self, read a moment before, still exists.
   */
  admit(connection: SshTarget, facts: HostFacts, phase: Phase = "apply"): void {
    const route = routeOf(connection);
    const clash = (seen: { route: string; phase: Phase } | undefined) => seen !== undefined && seen.route !== route && seen.phase === phase;
    const same = this.byMachineId.get(facts.machineId);
    if (clash(same)) {
      throw new Error(
        `Unable to admit ${route}: it is the same machine (machine-id ${facts.machineId}) as ${same!.route}, which this stack also manages. Either manage it as one Host, or, if these are two machines cloned from one image, give each its own machine-id (empty /etc/machine-id, then \`systemd-machine-id-setup\`)`,
      );
    }
    const named = this.byHostname.get(facts.hostname);
    if (clash(named) && same?.route !== named!.route) {
      throw new Error(
        `Unable to admit ${route}: it says its hostname is ${JSON.stringify(facts.hostname)}, as ${named!.route} does. Either give each machine its own hostname, or check that both addresses are right`,
      );
    }
    this.byMachineId.set(facts.machineId, { route, phase });
    this.byHostname.set(facts.hostname, { route, phase });
  }
}

type Phase = "read" | "apply";

const admissions = new Admissions();

function checkExpected(inputs: HostInputs, facts: HostFacts): void {
  admissions.admit(inputs.connection, facts);
  if (inputs.hostname !== undefined && facts.hostname !== inputs.hostname) {
    throw new Error(
      `Unable to admit ${inputs.connection.host}: it says its hostname is ${JSON.stringify(facts.hostname)}, but the program expects ${JSON.stringify(inputs.hostname)}. Either fix the address in the program, or change the hostname prop.`,
    );
  }
}

/** A machine drove manages: its connection, and the facts it reports. */
export const hostKind: ResourceKind<HostInputs, HostOutputs> = {
  token: "drove:index:Host",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["facts", "unreachable"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    if (news.hostname !== undefined && (typeof news.hostname !== "string" || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(news.hostname))) {
      failures.push({ property: "hostname", reason: `\`hostname\` must be a valid hostname, but ${JSON.stringify(news.hostname)} was provided` });
    }
    return { inputs: { connection, ...(news.hostname !== undefined ? { hostname: news.hostname as string } : {}) }, failures };
  },

  diff(olds, news) {
    // A machine the last refresh could not reach is not changed here: its
    // Reachability (a leaf nothing depends on) fails the run at the end,
    // naming it, so that everything not on it converges first.
    return diffInputs(olds as never, news as never, [], this.outputOnly);
  },

  async create(inputs) {
    const facts = await hostFacts(inputs.connection);
    checkExpected(inputs, facts);
    return { id: facts.machineId, outs: { ...inputs, facts } };
  },

  async read(_id, props) {
    const { facts: _f, unreachable: _u, ...inputs } = props;
    try {
      const facts = await hostFacts(props.connection, props.facts);
      admissions.admit(props.connection, facts, "read");
      return { outs: { ...inputs, facts } as HostOutputs, inputs: inputs as HostInputs };
    } catch (err) {
      // Not reaching a machine is news about it, not a reason to stop the whole run.
      if (isConnectError(err)) return { outs: { ...props, unreachable: err.message }, inputs: inputs as HostInputs };
      throw err;
    }
  },

  async update(_id, olds, news) {
    const facts = await hostFacts(news.connection, olds.facts);
    checkExpected(news, facts);
    return { ...news, facts };
  },

  async delete() {
    // A host is registered, not installed: forgetting it changes nothing on the machine.
  },
};

export interface ReachabilityInputs {
  /** The Host's construct path, for messages. */
  readonly host: string;
  /** How the machine is reached (no credentials), for messages. */
  readonly route?: string;
  /** Why the refresh that began this run could not reach the machine; absent when it could. */
  readonly unreachable?: string;
  /** Why the machine's Attestation refused it in this run; absent when it passed or has none. */
  readonly refused?: { readonly code: string; readonly reason: string };
}

/**
 * Whether a Host answered when the run began (and passed its attestation).
 * Nothing depends on it: a lost machine leaves its own resources as they
 * were, everything else converges (replicas move, proxies and etcd follow),
 * and this fails the run, naming the machine, so that `pulumi up` never
 * reports success over it.
 */
export const reachabilityKind: ResourceKind<ReachabilityInputs, ReachabilityInputs> = {
  token: "drove:index:Reachability",
  secretPaths: [],
  outputOnly: [],

  check(news) {
    const failures: Failures = [];
    if (typeof news.host !== "string" || news.host === "") failures.push({ property: "host", reason: "`host` must name the Host" });
    // In a preview, a Host's output that its state lacks is unknown: only a known reason counts.
    const unreachable = typeof news.unreachable === "string" && news.unreachable !== "" && !isUnknown(news.unreachable) ? news.unreachable : undefined;
    const route = typeof news.route === "string" ? news.route : undefined;
    const r = news.refused as { code?: unknown; reason?: unknown } | undefined;
    const refused = r && !isUnknown(r) && typeof r === "object" && typeof r.reason === "string" ? { code: String(r.code ?? ""), reason: r.reason } : undefined;
    return { inputs: { host: String(news.host ?? ""), ...(route ? { route } : {}), ...(unreachable ? { unreachable } : {}), ...(refused ? { refused } : {}) }, failures };
  },

  diff(_olds, news) {
    // A reachable, admitted machine has nothing to do here; a lost or refused one is news on every run until it is back.
    if (news.unreachable) return { changes: true, detailedDiff: { unreachable: { kind: 1 /* ADD */, inputDiff: true } } };
    if (news.refused) return { changes: true, detailedDiff: { refused: { kind: 1 /* ADD */, inputDiff: true } } };
    return { changes: false };
  },

  async create(inputs) {
    failIfLost(inputs);
    return { id: inputs.host, outs: { host: inputs.host, ...(inputs.route ? { route: inputs.route } : {}) } };
  },

  async read(id, props) {
    return { outs: props, inputs: props };
  },

  async update(_id, _olds, news) {
    failIfLost(news);
    return { host: news.host, ...(news.route ? { route: news.route } : {}) };
  },

  async delete() {},
};

function failIfLost(i: ReachabilityInputs): void {
  if (!i.unreachable && i.refused) {
    const where = i.route ? `${i.host} (${i.route})` : i.host;
    throw new DroveError(
      `${refusalMessage(where, i.refused.reason)}. Nothing was scheduled on it and no secret was sent to it; everything else converged (a cluster moved its replicas)`,
      { fixes: refusalFixes(i.refused.code) },
    );
  }
  if (!i.unreachable) return;
  const where = i.route ? `${i.host} (${i.route})` : i.host;
  throw new Error(
    `Unable to reach ${where} when this run began: ${i.unreachable}. Its resources were left as they were and everything else converged (a cluster moved its replicas). ` +
      `Either bring the machine back and run \`pulumi up\` again (it is cleaned and reused), or remove it from the program`,
  );
}

/**
 * What drove 0.1 stacks made before Reachability stopped waiting for every
 * resource: kept so that their next run can delete it. It does nothing on
 * any machine.
 */
export const barrierKind: ResourceKind<Record<string, never>, Record<string, never>> = {
  token: "drove:index:Barrier",
  secretPaths: [],
  outputOnly: [],
  check: () => ({ inputs: {}, failures: [] }),
  diff: () => ({ changes: false }),
  create: async () => ({ id: "barrier", outs: {} }),
  read: async () => ({ outs: {}, inputs: {} }),
  update: async () => ({}),
  delete: async () => {},
};
