/**
 * `drove:index:Service`: a service's replicas on the cluster's nodes (each a
 * container run through the node's runtime by providers/container), its endpoints
 * in etcd, and on every node a virtual IP, an HAProxy frontend and a hosts entry.
 */
import { createHash } from "node:crypto";
import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, pool, runChecked, withHost, type Failures } from "../common";
import { HostError, isConnectError, reasonOf } from "../../src/errors";
import { sh } from "../../src/quote";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import { containerKind, type ContainerInputs } from "../container/provider";
import type { CliEngine } from "../container/facts";
import { healthProbeCommand, nodeServiceFactCommand, parseNodeServiceFact, SERVICE_LABEL, SLOT_LABEL, VERSION_LABEL, type NodeServiceFact, type ReplicaFact } from "./facts";
import {
  freeSlot,
  hostPort,
  nodeProxyRemovalSteps,
  nodeProxySteps,
  planReplicas,
  renderHaproxy,
  replicaName,
  slotsPerNode,
  type Endpoint,
  type Replica,
  secretFileSteps,
  secretsDir as secretsDirOf,
} from "./operations";
import { etcdDeleteCommand, etcdPutCommand, endpointKey, endpointPrefix, etcdListCommand, type EtcdAccess } from "./etcd";
import { checkServiceSpec, type ServiceSpec } from "./check";
import { scheduleService, type ScheduleNode, type ScheduleService } from "./schedule";
import { attestationRefusal } from "../attestation/provider";

/** A node of the cluster as the service sees it. */
export interface ServiceNode {
  readonly connection: SshTarget;
  /** The address other nodes reach its replicas at. */
  readonly address: string;
  readonly labels: Record<string, string>;
  readonly engine: CliEngine;
  readonly capacity?: Record<string, number>;
  /** Present when the host has an Attestation: whether it passed in this run (unknown in a preview that re-checks it). */
  readonly attested?: boolean;
}

/** A service as drove's own orchestrator runs it: the shared spec (`check.ts`), etcd, and the placement. */
export interface ServiceInputs extends ServiceSpec<ServiceNode> {
  readonly etcd: EtcdAccess;
  /** The scheduler's view of every service of the cluster (this one included): constraints only. */
  readonly scheduling: { services: ScheduleService[] };
  /** Replicas per node: computed by `check` from the previous placement, so it shows as a diff. */
  readonly placement: Record<string, number>;
  /** Why the scheduler placed them so, one line per decision. */
  readonly placementExplanation: string[];
  /** The nodes that serve the virtual IP (every reachable node). */
  readonly proxyNodes: string[];
  /** Every service's placement as this run's scheduler saw it: the others' previous placement next time. */
  readonly clusterPlacement?: Record<string, Record<string, number>>;
}

export interface ServiceOutputs extends ServiceInputs {
  /** What runs: one entry per replica. */
  readonly endpoints: { node: string; slot: number; address: string; hostPorts: number[]; healthy: boolean }[];
}


/** The digest of everything whose change needs new replicas. */
export function versionOf(i: Pick<ServiceInputs, "image" | "command" | "env" | "secrets" | "ports" | "healthCheck">): string {
  const canon = JSON.stringify([i.image, i.command ?? null, Object.entries(i.env).sort(), Object.entries(i.secrets).sort(), i.ports, i.healthCheck ?? null]);
  return createHash("sha256").update(canon).digest("hex").slice(0, 16);
}

// ------------------------------------------------------------------ reachability

/** A node answers SSH within a few seconds; otherwise it counts as gone for this plan. */
async function reachable(target: SshTarget): Promise<boolean> {
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 12000).unref());
  const probe = pool.get({ ...target, connectTimeoutMs: 3000 }).then(
    () => true,
    (err) => (isConnectError(err) ? false : Promise.reject(err)),
  );
  return Promise.race([probe, timeout]);
}

async function reachability(nodes: Record<string, ServiceNode>): Promise<Set<string>> {
  const gone = new Set<string>();
  await Promise.all(
    Object.entries(nodes).map(async ([name, n]) => {
      if (isUnknown(n.connection) || isUnknown(n.connection?.host)) return;
      if (!(await reachable(n.connection))) gone.add(name);
    }),
  );
  return gone;
}

/**
 * Why an attested node takes no replica in this plan, or undefined. Its
 * Attestation ran before this plan (the service waits for it): `false` is a
 * refusal; in a preview, where it is unknown, the refresh's check decides.
 */
function admissionRefusal(n: ServiceNode): string | undefined {
  const verdict = attestationRefusal(n.connection);
  if (n.attested === false) return verdict.reason ?? "its attestation did not pass";
  if (n.attested === true) return undefined;
  return verdict.checked ? verdict.reason : undefined;
}

// ------------------------------------------------------------------ facts

interface NodeState {
  readonly name: string;
  readonly node: ServiceNode;
  readonly fact: NodeServiceFact;
  /** Health of each replica by slot (probed now). */
  readonly health: Map<number, { ok: boolean; output: string }>;
}

function hostPortsOf(i: ServiceInputs, slot: number): number[] {
  return i.ports.map((_, k) => hostPort(i.portBlock, slot, k, i.ports.length));
}

function hostPortFor(i: ServiceInputs, slot: number, containerPort: number): number | undefined {
  const k = i.ports.findIndex((p) => p.targetPort === containerPort);
  return k < 0 ? undefined : hostPort(i.portBlock, slot, k, i.ports.length);
}

async function probeHealth(conn: SshConnection, i: ServiceInputs, node: ServiceNode, r: { name: string; slot: number }): Promise<{ ok: boolean; output: string }> {
  const cmd = healthProbeCommand({ engine: node.engine, name: r.name, check: i.healthCheck, hostPortOf: (p) => hostPortFor(i, r.slot, p), timeout: i.health.timeout });
  const res = await conn.exec(cmd);
  return { ok: res.code === 0, output: (res.stdout + res.stderr).trim().split("\n").slice(-3).join(" | ") || `exit status ${res.code}` };
}

async function nodeState(i: ServiceInputs, name: string, node: ServiceNode): Promise<NodeState> {
  return withHost(node.connection, async (conn) => {
    const out = await runChecked(conn, `inspect service ${i.name}`, { command: nodeServiceFactCommand({ engine: node.engine, cluster: i.cluster, service: i.name, vip: i.vip }), probe: true });
    const fact = parseNodeServiceFact(out);
    const health = new Map<number, { ok: boolean; output: string }>();
    for (const r of fact.replicas) health.set(r.slot, r.running ? await probeHealth(conn, i, node, r) : { ok: false, output: "not running" });
    return { name, node, fact, health };
  });
}

// ------------------------------------------------------------------ replicas

function replicaInputs(i: ServiceInputs, node: ServiceNode, slot: number, version: string): ContainerInputs {
  const ports = hostPortsOf(i, slot).map((host, k) => ({ host, container: i.ports[k].targetPort, protocol: "tcp" as const }));
  return {
    connection: node.connection,
    engine: node.engine,
    name: replicaName(i.cluster, i.name, slot),
    image: i.image,
    ...(i.command ? { command: i.command } : {}),
    env: i.env,
    ports,
    volumes: Object.keys(i.secrets).length ? [{ source: secretsDir(i, slot), target: "/run/secrets", readOnly: true }] : [],
    restart: i.restart,
    labels: { [SERVICE_LABEL]: `${i.cluster}/${i.name}`, [SLOT_LABEL]: String(slot), [VERSION_LABEL]: version },
    running: true,
  };
}

function secretsDir(i: ServiceInputs, slot: number): string {
  return secretsDirOf(i.cluster, i.name, slot);
}

/** Secrets as files on tmpfs, mode 0400 from the first byte, each written from stdin: never a command line, never an image layer. */
async function writeSecrets(conn: SshConnection, i: ServiceInputs, slot: number): Promise<void> {
  for (const step of secretFileSteps(secretsDir(i, slot), i.secrets)) await runChecked(conn, `${step.description} of ${i.name}`, step);
}

async function removeReplica(i: ServiceInputs, node: ServiceNode, r: ReplicaFact): Promise<void> {
  await containerKind.delete(r.name, { ...replicaInputs(i, node, r.slot, r.version), image: r.image, instance: r.instance });
  await withHost(node.connection, (conn) => runChecked(conn, `remove the secrets of ${i.name}`, { command: sh`rm -rf ${`/run/drove/services/${i.cluster}-${i.name}-${r.slot}`}` }));
}

class RolloutError extends HostError {}

/** Starts one replica and waits for its health check; a failure removes it again and stops the roll. */
async function startReplica(i: ServiceInputs, nodeName: string, node: ServiceNode, slot: number, version: string): Promise<ReplicaFact> {
  const name = replicaName(i.cluster, i.name, slot);
  const inputs = replicaInputs(i, node, slot, version);
  const cleanup = () => withHost(node.connection, (conn) => conn.exec(sh`${node.engine} rm --force ${name} >/dev/null 2>&1; rm -rf ${`/run/drove/services/${i.cluster}-${i.name}-${slot}`}`)).catch(() => undefined);
  let instance: string;
  try {
    await withHost(node.connection, (conn) => writeSecrets(conn, i, slot));
    instance = (await containerKind.create(inputs)).outs.instance;
  } catch (err) {
    await cleanup();
    // The container kind's own "Unable to run container X on H: reason. Either ..." -> its reason.
    const reason = reasonOf(err).replace(/^Unable to [^:]*? on [^:\s]+: /s, "").replace(/\. Either .*$/s, "");
    throw new RolloutError(describeTarget(node.connection), `start replica ${name} of ${i.name}`, `${reason}. The roll stopped; the replicas already serving keep serving`, {
      fixes: ["fix the image or its command and run `pulumi up` again", "set the previous image back"],
    });
  }
  const deadline = Date.now() + (i.health.interval * i.health.retries + 30) * 1000;
  let last = { ok: false, output: "no check ran" };
  while (Date.now() < deadline) {
    last = await withHost(node.connection, (conn) => probeHealth(conn, i, node, { name, slot }));
    if (last.ok) break;
    const running = await withHost(node.connection, (conn) => conn.exec(sh`${node.engine} container inspect --format '{{.State.Running}}' ${name}`));
    if (running.stdout.trim() !== "true") {
      const logs = await withHost(node.connection, (conn) => conn.exec(sh`${node.engine} logs --tail 5 ${name} 2>&1`));
      last = { ok: false, output: `the container exited: ${logs.stdout.trim().split("\n").slice(-5).join(" | ")}` };
      break;
    }
    await new Promise((r) => setTimeout(r, i.health.interval * 1000));
  }
  if (!last.ok) {
    await cleanup();
    throw new RolloutError(describeTarget(node.connection), `start replica ${name} of ${i.name} (node ${nodeName})`, `its health check failed: ${last.output}. The roll stopped; the replicas already serving keep serving`, {
      fixes: ["fix the image or its health check and run `pulumi up` again", "set the previous image back"],
    });
  }
  return { name, slot, version, running: true, image: i.image, instance, labels: inputs.labels };
}

// ------------------------------------------------------------------ proxies and etcd

function endpointsOf(i: ServiceInputs, serving: { nodeName: string; slot: number }[]): Endpoint[] {
  return serving.map((s) => ({ id: `${s.nodeName}-${s.slot}`, address: i.nodes[s.nodeName].address, hostPorts: hostPortsOf(i, s.slot) }));
}

function proxyConfig(i: ServiceInputs, serving: { nodeName: string; slot: number }[]): string {
  return renderHaproxy({ cluster: i.cluster, service: i.name, vip: i.vip, ports: i.ports, endpoints: endpointsOf(i, serving), healthCheck: i.healthCheck, timing: i.health });
}

/** Writes the proxy of every reachable node whose configuration differs (a graceful HAProxy reload each). */
async function syncProxies(i: ServiceInputs, serving: { nodeName: string; slot: number }[], written: Map<string, string>, gone: Set<string>): Promise<void> {
  const config = proxyConfig(i, serving);
  await Promise.all(
    Object.entries(i.nodes)
      .filter(([name]) => !gone.has(name))
      .map(async ([name, node]) => {
        if (written.get(name) === config) return;
        await withHost(node.connection, (conn) => applySteps(conn, `configure the proxy of ${i.name}`, nodeProxySteps({ cluster: i.cluster, service: i.name, vip: i.vip, config })));
        written.set(name, config);
      }),
  );
}

async function etcd(i: ServiceInputs, what: string, command: ReturnType<typeof etcdPutCommand>): Promise<string> {
  return withHost(i.etcd.connection, (conn) => runChecked(conn, what, { command, stdin: `${i.etcd.caPem.trim()}\n${i.etcd.certPem.trim()}\n${i.etcd.keyPem.trim()}\n` }));
}

function endpointValue(i: ServiceInputs, nodeName: string, slot: number): string {
  const address = i.nodes[nodeName].address;
  return JSON.stringify({ service: i.name, node: nodeName, slot, address, ports: i.ports.map((p, k) => ({ port: p.port, targetPort: p.targetPort, hostPort: hostPortsOf(i, slot)[k] })) });
}

// ------------------------------------------------------------------ converge

async function converge(i: ServiceInputs): Promise<ServiceOutputs> {
  const gone = await reachability(i.nodes);
  const states = (await Promise.all(Object.entries(i.nodes).filter(([n]) => !gone.has(n)).map(([n, node]) => nodeState(i, n, node)))).filter((s): s is NodeState => !!s);
  const byNode = new Map(states.map((s) => [s.name, s]));
  const version = versionOf(i);
  const existing: (Replica & { fact: ReplicaFact })[] = states.flatMap((s) =>
    s.fact.replicas.map((r) => ({ node: s.name, slot: r.slot, version: r.version, healthy: s.health.get(r.slot)?.ok === true, fact: r })),
  );
  const plan = planReplicas({ existing, placement: i.placement, version, unreachable: gone, maxSurge: i.rollout.maxSurge, maxUnavailable: i.rollout.maxUnavailable });
  const written = new Map<string, string>(states.filter((s) => s.fact.vip && s.fact.hostsBlock !== undefined && s.fact.haproxyActive && s.fact.proxyConfig).map((s) => [s.name, s.fact.proxyConfig!]));
  const key = (r: { node: string; slot: number }) => `${r.node}/${r.slot}`;
  const serving = new Map<string, { nodeName: string; slot: number; fact: ReplicaFact }>();
  for (const r of [...plan.keep, ...plan.retire]) serving.set(key(r), { nodeName: r.node, slot: r.slot, fact: (r as (typeof existing)[number]).fact });

  // What does not serve goes first: out of the proxies, out of etcd, then stopped.
  await syncProxies(i, [...serving.values()], written, gone);
  const registered = new Set((await etcd(i, `list the endpoints of ${i.name}`, etcdListCommand(i.etcd, endpointPrefix(i.cluster, i.name)))).split("\n").filter(Boolean));
  const servingKeys = () => new Set([...serving.values()].map((x) => endpointKey(i.cluster, i.name, `${x.nodeName}-${x.slot}`)));
  for (const k of registered) if (!servingKeys().has(k)) await etcd(i, `deregister an endpoint of ${i.name}`, etcdDeleteCommand(i.etcd, k));
  for (const r of plan.discard) {
    const s = byNode.get(r.node);
    if (s) await removeReplica(i, s.node, (r as (typeof existing)[number]).fact);
  }
  for (const s of serving.values()) {
    const k = endpointKey(i.cluster, i.name, `${s.nodeName}-${s.slot}`);
    if (!registered.has(k)) await etcd(i, `register an endpoint of ${i.name}`, etcdPutCommand(i.etcd, k, endpointValue(i, s.nodeName, s.slot)));
  }

  // The roll: a few new replicas at a time, each healthy before an old one drains.
  const adds = [...plan.add];
  const retires = [...plan.retire];
  const used = new Map<string, Set<number>>();
  for (const s of states) used.set(s.name, new Set(s.fact.replicas.filter((r) => plan.discard.every((d) => !(d.node === s.name && d.slot === r.slot))).map((r) => r.slot)));
  for (const step of plan.steps) {
    const started = await Promise.all(
      adds.splice(0, step.add).map(async (nodeName) => {
        const node = i.nodes[nodeName];
        const slots = used.get(nodeName) ?? new Set<number>();
        used.set(nodeName, slots);
        const slot = freeSlot(slots, i.ports.length);
        slots.add(slot);
        try {
          return { nodeName, slot, fact: await startReplica(i, nodeName, node, slot, version) };
        } catch (err) {
          slots.delete(slot);
          throw err;
        }
      }),
    );
    for (const s of started) {
      serving.set(`${s.nodeName}/${s.slot}`, s);
      await etcd(i, `register an endpoint of ${i.name}`, etcdPutCommand(i.etcd, endpointKey(i.cluster, i.name, `${s.nodeName}-${s.slot}`), endpointValue(i, s.nodeName, s.slot)));
    }
    const leaving = retires.splice(0, step.remove);
    if (started.length) await syncProxies(i, [...serving.values()], written, gone);
    if (!leaving.length) continue;
    for (const r of leaving) {
      serving.delete(key(r));
      await etcd(i, `deregister an endpoint of ${i.name}`, etcdDeleteCommand(i.etcd, endpointKey(i.cluster, i.name, `${r.node}-${r.slot}`)));
    }
    await syncProxies(i, [...serving.values()], written, gone);
    for (const r of leaving) {
      await removeReplica(i, i.nodes[r.node], (r as (typeof existing)[number]).fact);
      used.get(r.node)?.delete(r.slot);
    }
  }
  await syncProxies(i, [...serving.values()], written, gone);

  // Nodes that left the cluster: whatever of this service they still hold goes.
  return {
    ...i,
    endpoints: [...serving.values()]
      .map((s) => ({ node: s.nodeName, slot: s.slot, address: i.nodes[s.nodeName].address, hostPorts: hostPortsOf(i, s.slot), healthy: true }))
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.slot - b.slot)),
  };
}

async function removeAll(i: ServiceInputs, nodes: Record<string, ServiceNode>): Promise<void> {
  const gone = await reachability(nodes);
  for (const [name, node] of Object.entries(nodes)) {
    if (gone.has(name)) continue;
    const s = await nodeState(i, name, node);
    await withHost(node.connection, (conn) => applySteps(conn, `remove the proxy of ${i.name}`, nodeProxyRemovalSteps({ cluster: i.cluster, service: i.name, vip: i.vip })));
    for (const r of s.fact.replicas) await removeReplica(i, node, r);
  }
  await etcd(i, `deregister the endpoints of ${i.name}`, etcdDeleteCommand(i.etcd, endpointPrefix(i.cluster, i.name), true));
}

// ------------------------------------------------------------------ check

function checkInputs(news: Record<string, unknown>, failures: Failures): ServiceInputs {
  const spec = checkServiceSpec<ServiceNode>(news, failures);
  for (const [n, node] of Object.entries(spec.nodes)) {
    if (!["docker", "podman"].includes(node.engine)) failures.push({ property: `nodes.${n}.engine`, reason: `node ${n} runs service replicas with "docker" or "podman", but ${JSON.stringify(node.engine)} was provided` });
  }
  const etcdIn = (news.etcd ?? {}) as EtcdAccess;
  if (!isUnknown(etcdIn)) checkConnection(etcdIn.connection, failures, "etcd.connection");
  return {
    ...spec,
    etcd: etcdIn,
    scheduling: (news.scheduling ?? { services: [] }) as ServiceInputs["scheduling"],
    placement: {},
    placementExplanation: [],
    proxyNodes: [],
  };
}

// ------------------------------------------------------------------ the kind

export const serviceKind: ResourceKind<ServiceInputs, ServiceOutputs> = {
  token: "drove:index:Service",
  secretPaths: ["secrets", "etcd.keyPem", "etcd.connection.privateKey", "etcd.connection.password", "etcd.connection.privateKeyPassphrase"],
  outputOnly: ["endpoints"],

  check(news) {
    const failures: Failures = [];
    return { inputs: checkInputs(news, failures), failures };
  },

  async plan(news, olds) {
    const { inputs, failures } = this.check(news);
    if (failures.length) return { inputs, failures };
    // Placement happens here, in the plan: from the placement the last run chose, with the nodes that answer now.
    const gone = await reachability(inputs.nodes);
    const previous: Record<string, Record<string, number>> = { ...((olds?.clusterPlacement ?? {}) as Record<string, Record<string, number>>) };
    if (olds?.placement) previous[inputs.name] = olds.placement as Record<string, number>;
    else delete previous[inputs.name];
    // Fail closed: a host with an Attestation that did not pass in this run takes no replica (the ones it has move).
    const refused = new Map(
      Object.entries(inputs.nodes)
        .filter(([name, n]) => n.attested !== undefined && !gone.has(name))
        .map(([name, n]) => [name, admissionRefusal(n)] as const)
        .filter((x): x is readonly [string, string] => x[1] !== undefined),
    );
    const nodes: ScheduleNode[] = Object.entries(inputs.nodes).map(([name, n]) => ({ name, labels: n.labels, ...(n.capacity ? { capacity: n.capacity } : {}), available: !gone.has(name) && !refused.has(name) }));
    const r = scheduleService({ nodes, services: inputs.scheduling.services, self: inputs.name, previous, gone: [...gone].map((n) => `${n} (${inputs.nodes[n].connection.host})`) });
    for (const [name, reason] of refused) r.explanation.push(`  ${name} (${inputs.nodes[name].connection.host}) is not admitted and takes no replica: ${reason}`);
    for (const e of r.errors) failures.push({ property: "placement", reason: e });
    const perNode = Math.max(...Object.values(r.placement), 0) + inputs.rollout.maxSurge;
    if (perNode > slotsPerNode(inputs.ports.length)) failures.push({ property: "placement", reason: `a node would hold ${perNode} replicas of ${inputs.name} during a roll, more than its ${slotsPerNode(inputs.ports.length)} host-port slots; spread the service over more nodes or lower maxSurge` });
    return {
      inputs: {
        ...inputs,
        placement: r.placement,
        placementExplanation: r.explanation,
        clusterPlacement: r.cluster,
        proxyNodes: Object.keys(inputs.nodes).filter((n) => !gone.has(n)).sort(),
      },
      failures,
    };
  },

  diff(olds, news) {
    const d = diffInputs(olds as never, news as never, ["cluster", "name", "vip", "portBlock"], [...this.outputOnly, "scheduling", "placementExplanation", "clusterPlacement"]);
    return { ...d, deleteBeforeReplace: (d.replaces ?? []).length > 0 };
  },

  async create(inputs) {
    try {
      return { id: `${inputs.cluster}/${inputs.name}`, outs: await converge(inputs) };
    } catch (err) {
      // A create that fails leaves no state behind it: take back what it made on the machines.
      await removeAll(inputs, inputs.nodes).catch(() => undefined);
      throw err;
    }
  },

  async read(_id, props) {
    // What runs: healthy replicas of the current version, per node; the nodes whose proxy is in place.
    const version = versionOf(props);
    const gone = await reachability(props.nodes);
    const placement: Record<string, number> = {};
    const proxyNodes: string[] = [];
    const endpoints: ServiceOutputs["endpoints"] = [];
    const states: NodeState[] = [];
    for (const [name, node] of Object.entries(props.nodes)) {
      if (gone.has(name)) {
        // Out of reach: what it ran last is all that is known.
        if (props.placement[name]) placement[name] = props.placement[name];
        continue;
      }
      states.push(await nodeState(props, name, node));
    }
    const healthy = states.flatMap((s) => s.fact.replicas.filter((r) => s.health.get(r.slot)?.ok === true).map((r) => ({ nodeName: s.name, slot: r.slot })));
    const expected = proxyConfig(props, healthy);
    for (const s of states) {
      if (s.fact.vip && s.fact.hostsBlock !== undefined && s.fact.haproxyActive && s.fact.proxyConfig === expected) proxyNodes.push(s.name);
      for (const r of s.fact.replicas) {
        const ok = s.health.get(r.slot)?.ok === true;
        if (ok && r.version === version) placement[s.name] = (placement[s.name] ?? 0) + 1;
        endpoints.push({ node: s.name, slot: r.slot, address: s.node.address, hostPorts: hostPortsOf(props, r.slot), healthy: ok });
      }
    }
    if (!endpoints.length && !proxyNodes.length) return undefined;
    const live: ServiceInputs = { ...props, placement, proxyNodes: proxyNodes.sort() };
    const { endpoints: _e, ...inputs } = live as ServiceOutputs;
    return { outs: { ...live, endpoints }, inputs };
  },

  async update(_id, _olds, news) {
    return converge(news);
  },

  async delete(_id, props) {
    await removeAll(props, props.nodes);
  },
};
