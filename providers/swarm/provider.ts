/**
 * `drove:index:Swarm`: a Docker Swarm over a cluster's nodes (initialised on the
 * first manager, the others joined as managers or workers with join tokens read
 * over SSH and kept as Pulumi secrets, node labels from the hosts' labels, every
 * node leaving on destroy), and `drove:index:SwarmService`: a drove service as a
 * swarm service, reachable on every node at its virtual IP and name through the
 * node's HAProxy, which follows where swarm runs the replicas by its own checks.
 */
import { randomBytes } from "node:crypto";
import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { DroveError, HostError, isConnectError, reasonOf } from "../../src/errors";
import { sh, type ShellCommand } from "../../src/quote";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import { checkServiceSpec, num, SERVICE_NAME, type ServiceSpec } from "../service/check";
import { nodeServiceFactCommand, parseNodeServiceFact } from "../service/facts";
import { nodeProxyRemovalSteps, nodeProxySteps, renderHaproxy } from "../service/operations";
import { infoProbe, nodesProbe, parseInfoProbe, parseNodesProbe, parseSecretsProbe, parseServiceProbe, parseSwarmProbe, parseTasksProbe, secretsProbe, serviceProbe, swarmProbe, tasksProbe } from "./facts";
import {
  dockerApi,
  foreignNodes,
  initBody,
  joinBody,
  leaveCommand,
  NODE_LABEL,
  parseApiAnswer,
  planMembership,
  planNodeSpecs,
  publishedPorts,
  rolloutState,
  secretBody,
  secretName,
  SERVICE_LABEL,
  serviceSpec,
  specVersion,
  swarmServiceName,
  type ApiMethod,
  type NodeSwarmFact,
  type RestartPolicy,
  type SwarmRole,
  type SwarmServiceLive,
  type TaskFact,
} from "./operations";

const NO_DOCKER = ["run Docker on the node (cluster.addHost(host, { runtime: ContainerRuntime.docker(host) }))", "check `systemctl status docker` there"];

/** One Engine API call on a node: the answer's body, or an error naming the node, the call and the daemon's message. */
async function api(conn: SshConnection, action: string, method: ApiMethod, path: string, body?: string, allow: number[] = []): Promise<{ status: number; body: unknown }> {
  const cmd = dockerApi(method, path, body !== undefined);
  const r = await conn.exec(cmd, body !== undefined ? { stdin: body } : {});
  if (r.code !== 0) {
    throw new HostError(describeTarget(conn.target), action, r.stderr.trim().split("\n").slice(-2).join(" ") || `exit status ${r.code}`, { fixes: NO_DOCKER });
  }
  const a = parseApiAnswer(r.stdout);
  if (a.status >= 400 && !allow.includes(a.status)) throw new HostError(describeTarget(conn.target), action, `${method} ${path.split("?")[0]} answered ${a.status}: ${a.message}`);
  return { status: a.status, body: a.body };
}

async function probe<T>(conn: SshConnection, action: string, command: ShellCommand, parse: (s: string) => T): Promise<T> {
  const out = await runChecked(conn, action, { command }).catch((err) => {
    throw new HostError(describeTarget(conn.target), action, reasonOf(err).replace(/^Unable to [^:]*: /, ""), { fixes: NO_DOCKER });
  });
  try {
    return parse(out);
  } catch (err) {
    throw new HostError(describeTarget(conn.target), action, reasonOf(err));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ================================================================== drove:index:Swarm

export interface SwarmNodeInputs {
  readonly connection: SshTarget;
  /** Where the other nodes reach it (swarm's advertise address). */
  readonly address: string;
  /** What drove wants; `read` reports what the swarm says ("absent": in no swarm, or in another one). */
  readonly role: SwarmRole | "absent";
  /** Node labels (placement constraints match them), without drove's own `drove.node`. */
  readonly labels: Record<string, string>;
}

export interface SwarmInputs {
  readonly cluster: string;
  /** Manager nodes, in order: the first initialises the swarm. */
  readonly managers: string[];
  readonly nodes: Record<string, SwarmNodeInputs>;
}

export interface SwarmOutputs extends SwarmInputs {
  readonly swarmId: string;
  /** Swarm's node ids, by node name. */
  readonly nodeIds: Record<string, string>;
  /** A secret: the tokens a worker and a manager join with. */
  readonly joinTokens: { worker: string; manager: string };
}

async function nodeFacts(nodes: Record<string, SwarmNodeInputs>, skip: ReadonlySet<string> = new Set()): Promise<Record<string, NodeSwarmFact>> {
  const out: Record<string, NodeSwarmFact> = {};
  await Promise.all(
    Object.entries(nodes)
      .filter(([n]) => !skip.has(n))
      .map(async ([n, node]) => {
        out[n] = await withHost(node.connection, (conn) => probe(conn, `read the swarm state of ${n}`, infoProbe(), parseInfoProbe));
      }),
  );
  return out;
}

async function convergeSwarm(i: SwarmInputs, olds?: SwarmOutputs): Promise<SwarmOutputs> {
  let facts = await nodeFacts(i.nodes);
  const plan = planMembership({ managers: i.managers, nodes: i.nodes as Record<string, { address: string; role: SwarmRole; labels: Record<string, string> }>, facts });
  if (plan.errors.length) throw new DroveError(`Unable to form the swarm of cluster ${i.cluster}: ${plan.errors.join("; ")}`);
  const leaderName = plan.leader!;
  const leader = i.nodes[leaderName];
  const onLeader = <T>(fn: (c: SshConnection) => Promise<T>) => withHost(leader.connection, fn);
  if (plan.init) await onLeader((c) => api(c, `initialise the swarm of cluster ${i.cluster}`, "POST", "/swarm/init", initBody(leader.address)));
  const swarm = await onLeader((c) => probe(c, "read the swarm's join tokens", swarmProbe(), parseSwarmProbe));
  for (const j of plan.joins) {
    const n = i.nodes[j.node];
    const token = j.role === "manager" ? swarm.managerToken : swarm.workerToken;
    await withHost(n.connection, (c) => api(c, `join ${j.node} to the swarm as a ${j.role}`, "POST", "/swarm/join", joinBody(n.address, leader.address, token)));
  }
  // Nodes the program no longer lists: demoted, out of the swarm, their entries removed.
  for (const [name, old] of Object.entries(olds?.nodes ?? {})) {
    if (i.nodes[name]) continue;
    const id = olds?.nodeIds?.[name];
    if (id && old.role === "manager") {
      const entries = await onLeader((c) => probe(c, "list the swarm's nodes", nodesProbe(), parseNodesProbe));
      const e = entries.find((x) => x.id === id);
      if (e && e.role === "manager") await onLeader((c) => api(c, `demote ${name}`, "POST", `/nodes/${id}/update?version=${e.version}`, JSON.stringify({ Role: "worker", Availability: e.availability, Labels: e.labels })));
    }
    await withHost(old.connection, (c) => runChecked(c, `make ${name} leave the swarm`, { command: leaveCommand() })).catch((err) => {
      if (!isConnectError(err)) throw err;
    });
    if (id) {
      for (let k = 0; k < 30; k++) {
        const r = await onLeader((c) => api(c, `remove ${name} from the swarm`, "DELETE", `/nodes/${id}?force=true`, undefined, [404, 400, 409, 500]));
        if (r.status < 400 || r.status === 404) break;
        await sleep(1000);
      }
    }
  }
  if (plan.init || plan.joins.length) facts = await nodeFacts(i.nodes);
  const nodeIds = Object.fromEntries(Object.entries(facts).map(([n, f]) => [n, f.nodeId]));
  const entries = await onLeader((c) => probe(c, "list the swarm's nodes", nodesProbe(), parseNodesProbe));
  const foreign = foreignNodes(facts, entries);
  if (foreign.length) {
    throw new DroveError(`Unable to form the swarm of cluster ${i.cluster}: ${foreign.join(", ")} ${foreign.length === 1 ? "is" : "are"} in another swarm than ${leaderName}'s`, {
      fixes: [`make ${foreign.length === 1 ? "it" : "them"} leave that swarm (\`docker swarm leave --force\`) and run \`pulumi up\` again`, "take them out of this cluster"],
    });
  }
  for (const ch of planNodeSpecs({ nodes: i.nodes as never, nodeIds, entries })) {
    if (ch.kind === "update") await onLeader((c) => api(c, `set the role and labels of ${ch.node}`, "POST", `/nodes/${ch.id}/update?version=${ch.version}`, JSON.stringify(ch.spec)));
    else await onLeader((c) => api(c, `remove the stale swarm entry of ${ch.hostname}`, "DELETE", `/nodes/${ch.id}?force=true`, undefined, [404]));
  }
  return { ...i, swarmId: swarm.id, nodeIds, joinTokens: { worker: swarm.workerToken, manager: swarm.managerToken } };
}

function checkSwarm(news: Record<string, unknown>, failures: Failures): SwarmInputs {
  const cluster = news.cluster as string;
  if (typeof cluster !== "string" || !SERVICE_NAME.test(cluster)) failures.push({ property: "cluster", reason: `\`cluster\` must be lower-case letters, digits and '-', but ${JSON.stringify(news.cluster)} was provided` });
  const nodes = (news.nodes ?? {}) as Record<string, SwarmNodeInputs>;
  const managers = (news.managers ?? []) as string[];
  if (![1, 3, 5].includes(managers.length)) failures.push({ property: "managers", reason: `a swarm needs 1, 3 or 5 managers (a raft quorum), but ${managers.length} were given` });
  for (const m of managers) if (!nodes[m]) failures.push({ property: "managers", reason: `manager ${m} is not one of the nodes (${Object.keys(nodes).join(", ")})` });
  for (const [n, node] of Object.entries(nodes)) {
    checkConnection(node.connection, failures, `nodes.${n}.connection`);
    const want: SwarmRole = managers.includes(n) ? "manager" : "worker";
    if (node.role !== want) failures.push({ property: `nodes.${n}.role`, reason: `node ${n} must be a ${want} (managers: ${managers.join(", ")}), but ${JSON.stringify(node.role)} was provided` });
    if (!isUnknown(node.address) && (typeof node.address !== "string" || !node.address)) failures.push({ property: `nodes.${n}.address`, reason: `node ${n} needs the address the others reach it at` });
  }
  return { cluster, managers, nodes: Object.fromEntries(Object.entries(nodes).map(([n, x]) => [n, { connection: x.connection, address: x.address, role: x.role, labels: { ...(x.labels ?? {}) } }])) };
}

export const swarmKind: ResourceKind<SwarmInputs, SwarmOutputs> = {
  token: "drove:index:Swarm",
  secretPaths: ["joinTokens"],
  outputOnly: ["swarmId", "nodeIds", "joinTokens"],

  check(news) {
    const failures: Failures = [];
    return { inputs: checkSwarm(news, failures), failures };
  },

  diff(olds, news) {
    return diffInputs(olds as never, news as never, ["cluster"], this.outputOnly);
  },

  async create(inputs) {
    return { id: inputs.cluster, outs: await convergeSwarm(inputs) };
  },

  async read(id, props) {
    const gone = new Set<string>();
    const facts: Record<string, NodeSwarmFact> = {};
    await Promise.all(
      Object.entries(props.nodes).map(async ([n, node]) => {
        try {
          facts[n] = await withHost(node.connection, (c) => probe(c, `read the swarm state of ${n}`, infoProbe(), parseInfoProbe));
        } catch (err) {
          if (!isConnectError(err)) throw err;
          gone.add(n);
        }
      }),
    );
    const leader = [...props.managers, ...Object.keys(props.nodes)].find((n) => facts[n]?.state === "active" && facts[n].controlAvailable && (!props.swarmId || facts[n].clusterId === props.swarmId));
    if (!leader) {
      if (Object.values(facts).some((f) => f.state === "active")) {
        // In a swarm, but not ours or without a manager: every node shows as absent, and up says why.
      } else if (!gone.size) return undefined;
    }
    const conn = leader ? props.nodes[leader].connection : undefined;
    const entries = conn ? await withHost(conn, (c) => probe(c, "list the swarm's nodes", nodesProbe(), parseNodesProbe)) : [];
    const swarm = conn ? await withHost(conn, (c) => probe(c, "read the swarm's join tokens", swarmProbe(), parseSwarmProbe)) : undefined;
    const nodes: Record<string, SwarmNodeInputs> = {};
    const nodeIds: Record<string, string> = {};
    for (const [n, node] of Object.entries(props.nodes)) {
      if (gone.has(n)) {
        nodes[n] = node;
        if (props.nodeIds?.[n]) nodeIds[n] = props.nodeIds[n];
        continue;
      }
      const f = facts[n];
      const e = f.state === "active" ? entries.find((x) => x.id === f.nodeId) : undefined;
      if (e) nodeIds[n] = e.id;
      const labels = { ...(e?.labels ?? {}) };
      if (labels[NODE_LABEL] === n) delete labels[NODE_LABEL];
      nodes[n] = { ...node, role: e ? e.role : "absent", labels: e ? labels : node.labels };
    }
    const live: SwarmInputs = { cluster: props.cluster, managers: props.managers, nodes };
    return {
      inputs: live,
      outs: { ...live, swarmId: swarm?.id ?? props.swarmId, nodeIds, joinTokens: swarm ? { worker: swarm.workerToken, manager: swarm.managerToken } : props.joinTokens },
    };
  },

  async update(_id, olds, news) {
    return convergeSwarm(news, olds);
  },

  async delete(_id, props) {
    // Workers first, then managers, the first manager last: the swarm ends with its last node.
    const order = [...Object.keys(props.nodes).filter((n) => !props.managers.includes(n)), ...[...props.managers].reverse()];
    for (const n of order) {
      await withHost(props.nodes[n].connection, (c) => runChecked(c, `make ${n} leave the swarm`, { command: leaveCommand() })).catch((err) => {
        if (!isConnectError(err)) throw err;
      });
    }
  },
};

// ================================================================== drove:index:SwarmService

export interface SwarmServiceNode {
  readonly connection: SshTarget;
  readonly address: string;
}

/** A service as Docker Swarm runs it: the shared spec (`../service/check.ts`), managers, replicas and constraints. */
export interface SwarmServiceInputs extends ServiceSpec<SwarmServiceNode> {
  /** The swarm's managers, in the order drove asks them. */
  readonly managers: Record<string, { connection: SshTarget }>;
  /** Absent for a global service. */
  readonly replicas?: number;
  readonly global: boolean;
  /** Swarm placement constraints (from the placement's selectors). */
  readonly constraints: string[];
  /** The nodes whose proxy is in place: `check` wants every node, `read` says which are. */
  readonly proxyNodes: string[];
}

export interface SwarmServiceOutputs extends SwarmServiceInputs {
  /** The swarm secrets in use, file name -> secret name. */
  readonly secretNames: Record<string, string>;
  /** Replicas running the current image when the run ended (swarm keeps the count by itself). */
  readonly running: number;
}

/** Runs `fn` on the first manager that answers as one. */
async function onManager<T>(i: Pick<SwarmServiceInputs, "managers" | "cluster" | "name">, fn: (c: SshConnection) => Promise<T>): Promise<T> {
  const reasons: string[] = [];
  for (const [name, m] of Object.entries(i.managers)) {
    let f: NodeSwarmFact;
    try {
      f = await withHost(m.connection, (c) => probe(c, `read the swarm state of ${name}`, infoProbe(), parseInfoProbe));
    } catch (err) {
      if (!isConnectError(err)) throw err;
      reasons.push(reasonOf(err));
      continue;
    }
    if (!(f.state === "active" && f.controlAvailable)) {
      reasons.push(`${name} is not a swarm manager (swarm state ${f.state})`);
      continue;
    }
    return withHost(m.connection, fn);
  }
  throw new DroveError(`Unable to reach a manager of swarm ${i.cluster} for service ${i.name}: ${reasons.join("; ")}`, { fixes: ["bring a manager back", "run `pulumi up` so that the Swarm resource re-forms the swarm"] });
}

function proxyConfig(i: SwarmServiceInputs): string {
  const published = publishedPorts(i.portBlock, i.ports.length);
  // Every node may run a replica: each is a server, and HAProxy's checks find the ones that do.
  const endpoints = Object.entries(i.nodes).map(([n, node]) => ({ id: n, address: node.address, hostPorts: published }));
  return renderHaproxy({ cluster: i.cluster, service: i.name, vip: i.vip, ports: i.ports, endpoints, healthCheck: i.healthCheck, timing: i.health });
}

async function proxyFacts(i: SwarmServiceInputs): Promise<Record<string, boolean>> {
  const expected = proxyConfig(i);
  const out: Record<string, boolean> = {};
  await Promise.all(
    Object.entries(i.nodes).map(async ([n, node]) => {
      const f = await withHost(node.connection, (c) => probe(c, `inspect the proxy of ${i.name}`, nodeServiceFactCommand({ engine: "docker", cluster: i.cluster, service: i.name, vip: i.vip }), parseNodeServiceFact));
      out[n] = f.vip && f.hostsBlock !== undefined && f.haproxyActive && f.proxyConfig === expected;
    }),
  );
  return out;
}

async function syncProxies(i: SwarmServiceInputs): Promise<void> {
  const config = proxyConfig(i);
  const inPlace = await proxyFacts(i);
  await Promise.all(
    Object.entries(i.nodes)
      .filter(([n]) => !inPlace[n])
      .map(([, node]) => withHost(node.connection, (c) => applySteps(c, `configure the proxy of ${i.name}`, nodeProxySteps({ cluster: i.cluster, service: i.name, vip: i.vip, config })))),
  );
}

async function serviceState(c: SshConnection, i: Pick<SwarmServiceInputs, "cluster" | "name">): Promise<{ live: SwarmServiceLive | undefined; tasks: TaskFact[] }> {
  const live = await probe(c, `inspect service ${i.name}`, serviceProbe(i.cluster, i.name), parseServiceProbe);
  const tasks = live ? await probe(c, `list the tasks of ${i.name}`, tasksProbe(i.cluster, i.name), parseTasksProbe) : [];
  return { live, tasks };
}

/** Waits until swarm runs the wanted replicas of the current image, or says the update failed. */
async function awaitRollout(c: SshConnection, i: SwarmServiceInputs, version: string, startedBefore?: string): Promise<number> {
  const deadline = Date.now() + Math.max(120, (i.health.interval * i.health.retries + 10) * ((i.replicas ?? Object.keys(i.nodes).length) + 2)) * 1000;
  let last = "";
  while (Date.now() < deadline) {
    const { live, tasks } = await serviceState(c, i);
    if (!live) throw new HostError(describeTarget(c.target), `run service ${i.name}`, "swarm no longer has the service");
    const s = rolloutState({ live, tasks, version, want: i.replicas, ...(startedBefore !== undefined ? { startedBefore } : {}) });
    if (s.state === "done") return tasks.filter((t) => t.desired === "running" && t.state === "running").length;
    if (s.state === "failed") {
      throw new HostError(describeTarget(c.target), `update service ${i.name}`, `${s.reason}. The replicas of the previous version keep serving`, { fixes: ["fix the image or its command and run `pulumi up` again", "set the previous image back"] });
    }
    last = s.reason;
    await sleep(1000);
  }
  throw new HostError(describeTarget(c.target), `run service ${i.name}`, `swarm did not converge in time: ${last}`, {
    fixes: ["check `docker service ps --no-trunc " + swarmServiceName(i.cluster, i.name) + "` on a manager", "lower `replicas` or widen the placement (each node runs at most one replica: its published port)"],
  });
}

async function convergeService(i: SwarmServiceInputs, olds?: SwarmServiceOutputs): Promise<SwarmServiceOutputs> {
  const { secretNames, running } = await onManager(i, async (c) => {
    const existing = await probe(c, `list the secrets of ${i.name}`, secretsProbe(i.cluster, i.name), parseSecretsProbe);
    const secrets: Record<string, { id: string; name: string }> = {};
    for (const [file, value] of Object.entries(i.secrets)) {
      const prev = olds?.secretNames?.[file];
      if (prev && existing[prev] && olds?.secrets?.[file] === value) {
        secrets[file] = { id: existing[prev], name: prev };
        continue;
      }
      const name = secretName(i.cluster, i.name, file, randomBytes(4).toString("hex"));
      const r = await api(c, `create secret ${file} of ${i.name}`, "POST", "/secrets/create", secretBody(name, i.cluster, i.name, value));
      secrets[file] = { id: String((r.body as { ID?: string }).ID), name };
    }
    const specObj = serviceSpec({ ...i, secrets });
    const spec = JSON.stringify(specObj);
    const { live } = await serviceState(c, i);
    if (!live) await api(c, `create service ${i.name}`, "POST", "/services/create", spec);
    else await api(c, `update service ${i.name}`, "POST", `/services/${swarmServiceName(i.cluster, i.name)}/update?version=${live.version}`, spec);
    const running = await awaitRollout(c, i, specVersion(specObj), live?.updateStartedAt);
    // Secrets no longer mounted go (a task still shutting down may hold one a moment).
    const keep = new Set(Object.values(secrets).map((s) => s.name));
    await removeSecrets(c, i, existing, keep);
    return { secretNames: Object.fromEntries(Object.entries(secrets).map(([f, s]) => [f, s.name])), running };
  });
  await syncProxies(i);
  return { ...i, proxyNodes: Object.keys(i.nodes).sort(), secretNames, running };
}

async function removeSecrets(c: SshConnection, i: Pick<SwarmServiceInputs, "name">, existing: Record<string, string>, keep: ReadonlySet<string>): Promise<void> {
  for (const [name, id] of Object.entries(existing)) {
    if (keep.has(name)) continue;
    for (let k = 0; ; k++) {
      const r = await api(c, `remove secret ${name} of ${i.name}`, "DELETE", `/secrets/${id}`, undefined, [404, 409, 400]);
      if (r.status < 400 || r.status === 404) break;
      if (k >= 60) throw new HostError(describeTarget(c.target), `remove secret ${name} of ${i.name}`, "it is still in use after 60 s");
      await sleep(1000);
    }
  }
}

async function removeService(i: SwarmServiceInputs): Promise<void> {
  await onManager(i, async (c) => {
    await api(c, `remove service ${i.name}`, "DELETE", `/services/${swarmServiceName(i.cluster, i.name)}`, undefined, [404]);
    const existing = await probe(c, `list the secrets of ${i.name}`, secretsProbe(i.cluster, i.name), parseSecretsProbe);
    await removeSecrets(c, i, existing, new Set());
  }).catch((err) => {
    // No manager at all: no swarm, no service.
    if (!(err instanceof DroveError && /Unable to reach a manager/.test(err.message) && Object.keys(i.managers).length)) throw err;
  });
  // Swarm removes the containers on each node by itself: wait for them, then take the proxy away.
  await Promise.all(
    Object.entries(i.nodes).map(([n, node]) =>
      withHost(node.connection, async (c) => {
        const filter = `label=${SERVICE_LABEL}=${i.cluster}/${i.name}`;
        for (let k = 0; ; k++) {
          const r = await c.exec(sh`docker ps -aq --filter ${filter} 2>/dev/null | wc -l`);
          if (r.stdout.trim() === "0") break;
          if (k >= 60) throw new HostError(describeTarget(c.target), `remove the replicas of ${i.name}`, `swarm left ${r.stdout.trim()} container(s) of ${n} after 60 s`, { fixes: [sh`docker rm -f $(docker ps -aq --filter ${filter})`.text] });
          await sleep(1000);
        }
        await applySteps(c, `remove the proxy of ${i.name}`, nodeProxyRemovalSteps({ cluster: i.cluster, service: i.name, vip: i.vip }));
      }),
    ),
  );
}

function checkService(news: Record<string, unknown>, failures: Failures): SwarmServiceInputs {
  const spec = checkServiceSpec<SwarmServiceNode>(news, failures);
  const managers = (news.managers ?? {}) as Record<string, { connection: SshTarget }>;
  if (!Object.keys(managers).length) failures.push({ property: "managers", reason: "the swarm has no manager" });
  for (const [n, m] of Object.entries(managers)) checkConnection(m.connection, failures, `managers.${n}.connection`);
  const global = news.global === true;
  const replicas = global ? undefined : num(news.replicas, 1);
  if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 0 && replicas <= 1000)) failures.push({ property: "replicas", reason: `\`replicas\` must be between 0 and 1000, but ${JSON.stringify(news.replicas)} was provided` });
  if (spec.rollout.maxSurge === 0 && spec.rollout.maxUnavailable === 0) failures.push({ property: "rollout", reason: "`maxSurge` and `maxUnavailable` cannot both be 0" });
  return {
    ...spec,
    managers,
    ...(replicas !== undefined ? { replicas } : {}),
    global,
    constraints: [...((news.constraints ?? []) as string[])].sort(),
    proxyNodes: Object.keys(spec.nodes).sort(),
  };
}

const CONDITION_BACK: Record<string, RestartPolicy> = { any: "always", "on-failure": "on-failure", none: "no" };

export const swarmServiceKind: ResourceKind<SwarmServiceInputs, SwarmServiceOutputs> = {
  token: "drove:index:SwarmService",
  secretPaths: ["secrets"],
  outputOnly: ["secretNames", "running"],

  check(news) {
    const failures: Failures = [];
    return { inputs: checkService(news, failures), failures };
  },

  diff(olds, news) {
    return diffInputs(olds as never, news as never, ["cluster", "name", "vip", "portBlock"], this.outputOnly);
  },

  async create(inputs) {
    try {
      return { id: `${inputs.cluster}/${inputs.name}`, outs: await convergeService(inputs) };
    } catch (err) {
      // A create that fails leaves nothing behind it.
      await removeService(inputs).catch(() => undefined);
      throw err;
    }
  },

  async read(_id, props) {
    const found = await onManager(props, (c) => serviceState(c, props)).catch((err) => {
      if (err instanceof DroveError && /Unable to reach a manager/.test(err.message)) return { live: undefined, tasks: [] as TaskFact[] };
      throw err;
    });
    const proxies = await proxyFacts(props);
    const proxyNodes = Object.keys(proxies).filter((n) => proxies[n]).sort();
    const live = found.live;
    if (!live && !proxyNodes.length) return undefined;
    const published = publishedPorts(props.portBlock, props.ports.length);
    let inputs: SwarmServiceInputs = { ...props, proxyNodes };
    let running = 0;
    if (live) {
      // Each property as swarm holds it: drift shows per property.
      const ports = live.published.map((p) => {
        const k = props.ports.findIndex((x) => x.targetPort === p.targetPort);
        const ok = k >= 0 && published[k] === p.publishedPort && p.mode === "host" && live.endpointMode === "dnsrr";
        return { port: ok ? props.ports[k].port : 0, targetPort: p.targetPort, protocol: "tcp" as const };
      });
      const secrets: Record<string, string> = {};
      for (const [file, name] of Object.entries(live.secretNames)) secrets[file] = props.secretNames?.[file] === name && file in props.secrets ? props.secrets[file] : "";
      const restart = live.restart === "any" && (props.restart === "always" || props.restart === "unless-stopped") ? props.restart : (CONDITION_BACK[live.restart] ?? (live.restart as RestartPolicy));
      const { replicas: _r, command: _c, ...rest } = props;
      inputs = {
        ...rest,
        proxyNodes,
        image: live.image,
        ...(live.command ? { command: live.command } : {}),
        env: live.env,
        secrets,
        ports,
        restart,
        ...(live.replicas !== undefined ? { replicas: live.replicas } : {}),
        global: live.global,
        constraints: live.constraints,
        rollout: live.rollout,
      };
      running = found.tasks.filter((t) => t.desired === "running" && t.state === "running").length;
    } else {
      inputs = { ...inputs, image: "" };
    }
    return { inputs, outs: { ...inputs, secretNames: live?.secretNames ?? {}, running } };
  },

  async update(_id, olds, news) {
    return convergeService(news, olds);
  },

  async delete(_id, props) {
    await removeService(props);
  },
};
