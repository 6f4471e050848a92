/**
 * Docker Swarm, pure: the Engine API calls drove makes (through `curl` on the
 * node's Docker socket, so that join tokens, secrets and environment values
 * travel on stdin, never on a command line), the swarm's membership plan, and
 * a drove service as a swarm `ServiceSpec` and back.
 */
import { createHash } from "node:crypto";
import { sh, type ShellCommand } from "../../src/quote";
import { hostPort, type HealthCheck, type HealthTiming, type ServicePort } from "../service/operations";

/** The Engine API version drove speaks (Docker 20.10 and later). */
export const DOCKER_API = "v1.41";
/** Swarm's management port. */
export const SWARM_PORT = 2377;
/** The node label naming a node by its drove name (for `pinned` placement). */
export const NODE_LABEL = "drove.node";
/** Labels on services, their containers and secrets: `<cluster>/<service>`. */
export const SERVICE_LABEL = "drove.service";
/** The container label holding the digest of the task template it was made from: tells this run's tasks from older ones. */
export const VERSION_LABEL = "drove.version";
/** The service label holding drove's rollout (`<maxSurge>/<maxUnavailable>`), which swarm's update config cannot express whole. */
export const ROLLOUT_LABEL = "drove.rollout";

// ---------------------------------------------------------------- the Engine API

export type ApiMethod = "GET" | "POST" | "DELETE";

/**
 * One Engine API call on the node's own socket; a body, when there is one, comes
 * from stdin. Prints the answer's body, then the HTTP status on a line of its own.
 */
export function dockerApi(method: ApiMethod, path: string, withBody = false): ShellCommand {
  const url = `http://localhost/${DOCKER_API}${path}`;
  const body = withBody ? sh` -H 'Content-Type: application/json' --data-binary @-` : sh``;
  return sh`curl -sS --unix-socket /var/run/docker.sock -X ${method}${body} -w '\\n%{http_code}' ${url}`;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
  /** The daemon's own message for an error status. */
  readonly message: string;
}

export function parseApiAnswer(stdout: string): ApiAnswer {
  const trimmed = stdout.replace(/\n$/, "");
  const nl = trimmed.lastIndexOf("\n");
  const status = Number(trimmed.slice(nl + 1));
  const text = nl < 0 ? "" : trimmed.slice(0, nl);
  if (!Number.isInteger(status) || status < 100) throw new Error(`unexpected answer from the Docker API: ${JSON.stringify(stdout.slice(0, 200))}`);
  let body: unknown = undefined;
  if (text.trim()) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  const message = status >= 400 ? (typeof body === "object" && body !== null && typeof (body as { message?: unknown }).message === "string" ? (body as { message: string }).message : String(text).trim() || `HTTP ${status}`) : "";
  return { status, body, message };
}

/** `?filters=` for the list endpoints. */
export function filtersQuery(filters: Record<string, string[]>): string {
  return `filters=${encodeURIComponent(JSON.stringify(filters))}`;
}

// ---------------------------------------------------------------- nodes and membership

export type SwarmRole = "manager" | "worker";

/** What `GET /info` says of a node's place in a swarm. */
export interface NodeSwarmFact {
  /** inactive | pending | active | error | locked */
  readonly state: string;
  readonly nodeId: string;
  readonly clusterId: string;
  readonly controlAvailable: boolean;
  readonly error: string;
}

export function parseInfo(body: unknown): NodeSwarmFact {
  const s = ((body ?? {}) as { Swarm?: Record<string, unknown> }).Swarm;
  if (!s || typeof s !== "object") throw new Error("unexpected answer from GET /info: no Swarm section");
  return {
    state: String(s.LocalNodeState ?? "inactive"),
    nodeId: String(s.NodeID ?? ""),
    clusterId: String((s.Cluster as { ID?: string } | undefined)?.ID ?? ""),
    controlAvailable: s.ControlAvailable === true,
    error: String(s.Error ?? ""),
  };
}

/** A node as the swarm's managers list it (`GET /nodes`). */
export interface SwarmNodeEntry {
  readonly id: string;
  readonly version: number;
  readonly hostname: string;
  readonly role: SwarmRole;
  readonly availability: string;
  readonly labels: Record<string, string>;
  /** ready | down | unknown | disconnected */
  readonly state: string;
  readonly addr: string;
}

export function parseNodes(body: unknown): SwarmNodeEntry[] {
  if (!Array.isArray(body)) throw new Error("unexpected answer from GET /nodes: not a list");
  return body.map((n: Record<string, any>) => ({
    id: String(n.ID),
    version: Number(n.Version?.Index ?? 0),
    hostname: String(n.Description?.Hostname ?? ""),
    role: n.Spec?.Role === "manager" ? "manager" : "worker",
    availability: String(n.Spec?.Availability ?? "active"),
    labels: { ...(n.Spec?.Labels ?? {}) },
    state: String(n.Status?.State ?? "unknown"),
    addr: String(n.Status?.Addr ?? ""),
  }));
}

export interface SwarmNodeDesired {
  readonly address: string;
  readonly role: SwarmRole;
  readonly labels: Record<string, string>;
}

/** The labels drove keeps on a node: the user's, and its drove name. */
export function nodeLabels(name: string, d: SwarmNodeDesired): Record<string, string> {
  return { ...d.labels, [NODE_LABEL]: name };
}

export interface MembershipPlan {
  /** The node that initialises the swarm, when no node is in one yet. */
  readonly init?: string;
  /** The manager drove talks to (after `init`, the initialising node). */
  readonly leader?: string;
  /** Nodes that join, in order (managers first). */
  readonly joins: { node: string; role: SwarmRole }[];
  readonly errors: string[];
}

/**
 * Who initialises, who joins. A node already in another swarm, a node stuck
 * joining, or a swarm none of whose managers drove can reach are errors with the
 * fix: drove never makes a node leave a swarm it did not make.
 */
export function planMembership(p: { managers: readonly string[]; nodes: Record<string, SwarmNodeDesired>; facts: Record<string, NodeSwarmFact> }): MembershipPlan {
  const errors: string[] = [];
  const names = Object.keys(p.nodes);
  const active = names.filter((n) => p.facts[n]?.state === "active");
  // Only managers know the swarm's id; a worker's place is checked against the managers' node list.
  const clusters = [...new Set(active.map((n) => p.facts[n].clusterId).filter(Boolean))];
  for (const n of names) {
    const f = p.facts[n];
    if (!f) continue;
    if (["pending", "error", "locked"].includes(f.state)) {
      errors.push(`node ${n} is in swarm state "${f.state}"${f.error ? ` (${f.error})` : ""}; run \`docker swarm leave --force\` on it, or unlock it, and run again`);
    }
  }
  if (clusters.length > 1) {
    const by = clusters.map((c) => `${c.slice(0, 12)}: ${active.filter((n) => p.facts[n].clusterId === c).join(", ")}`);

    errors.push(`the nodes are in ${clusters.length} different swarms (${by.join("; ")}); make the nodes of the other swarm leave it (\`docker swarm leave --force\`), or take them out of this cluster`);
  }
  if (errors.length) return { joins: [], errors };
  const joinOrder = [...p.managers, ...names.filter((n) => !p.managers.includes(n))];
  if (!active.length) {
    const init = p.managers[0];
    return { init, leader: init, joins: joinOrder.filter((n) => n !== init).map((node) => ({ node, role: p.nodes[node].role })), errors };
  }
  const leader = p.managers.find((n) => p.facts[n]?.state === "active" && p.facts[n].controlAvailable) ?? active.find((n) => p.facts[n].controlAvailable);
  if (!leader) {
    errors.push(`nodes ${active.join(", ")} are in a swarm but none of them is a manager drove can reach; bring a manager back, or make them leave (\`docker swarm leave --force\`) so that drove initialises a new swarm`);
    return { joins: [], errors };
  }
  const joins = joinOrder.filter((n) => p.facts[n] && p.facts[n].state === "inactive").map((node) => ({ node, role: p.nodes[node].role }));
  return { leader, joins, errors };
}

/** Nodes that say they are in a swarm the managers do not list: in another swarm. */
export function foreignNodes(facts: Record<string, NodeSwarmFact>, entries: readonly SwarmNodeEntry[]): string[] {
  return Object.entries(facts)
    .filter(([, f]) => f.state === "active" && !entries.some((e) => e.id === f.nodeId))
    .map(([n]) => n);
}

export type NodeChange =
  | { readonly kind: "update"; readonly node: string; readonly id: string; readonly version: number; readonly spec: { Role: SwarmRole; Availability: string; Labels: Record<string, string> } }
  | { readonly kind: "remove"; readonly id: string; readonly hostname: string };

/**
 * After membership: each node's role and labels as desired (managers promoted
 * first, demotions after), and the swarm's entries that are no node of the
 * cluster (a node that left, or an old entry of a node that joined again) removed
 * once they are down.
 */
export function planNodeSpecs(p: { nodes: Record<string, SwarmNodeDesired>; nodeIds: Record<string, string>; entries: readonly SwarmNodeEntry[] }): NodeChange[] {
  const out: NodeChange[] = [];
  const ours = new Set(Object.values(p.nodeIds));
  const updates = Object.entries(p.nodes).flatMap(([name, d]) => {
    const e = p.entries.find((x) => x.id === p.nodeIds[name]);
    if (!e) return [];
    const labels = nodeLabels(name, d);
    if (e.role === d.role && e.availability === "active" && sameRecord(e.labels, labels)) return [];
    return [{ kind: "update" as const, node: name, id: e.id, version: e.version, spec: { Role: d.role, Availability: "active", Labels: labels } }];
  });
  out.push(...updates.filter((u) => u.spec.Role === "manager"), ...updates.filter((u) => u.spec.Role !== "manager"));
  for (const e of p.entries) if (!ours.has(e.id) && e.state !== "ready") out.push({ kind: "remove", id: e.id, hostname: e.hostname });
  return out;
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** `POST /swarm/init` body. */
export function initBody(address: string): string {
  return JSON.stringify({ ListenAddr: `0.0.0.0:${SWARM_PORT}`, AdvertiseAddr: `${address}:${SWARM_PORT}` });
}

/** `POST /swarm/join` body: the token travels on stdin. */
export function joinBody(address: string, leaderAddress: string, token: string): string {
  return JSON.stringify({ ListenAddr: `0.0.0.0:${SWARM_PORT}`, AdvertiseAddr: `${address}:${SWARM_PORT}`, RemoteAddrs: [`${leaderAddress}:${SWARM_PORT}`], JoinToken: token });
}

/** The node leaves the swarm, and the bridge swarm made on it goes (a node in no swarm keeps none). */
export function leaveCommand(): ShellCommand {
  return sh`${dockerApi("POST", "/swarm/leave?force=true")} >/dev/null; ${dockerApi("DELETE", "/networks/docker_gwbridge")} >/dev/null; true`;
}

// ---------------------------------------------------------------- services

export function swarmServiceName(cluster: string, service: string): string {
  return `${cluster}-${service}`;
}

/** The host port each service port is published on, on every node that runs a replica. */
export function publishedPorts(portBlock: number, portCount: number): number[] {
  return Array.from({ length: portCount }, (_, k) => hostPort(portBlock, 0, k, portCount));
}

/** A placement in the scheduler's vocabulary (constructs/service.ts), for swarm constraints. */
export interface SwarmPlacement {
  readonly nodeSelector?: Record<string, string>;
  readonly matchExpressions?: { key: string; operator: string; values?: string[] }[];
  readonly pinned?: string[];
  readonly spread?: { maxPerNode?: number };
  readonly colocateWith?: string;
  readonly resources?: Record<string, number>;
}

/**
 * Swarm constraints are a conjunction of `==` and `!=` on node labels: what
 * maps onto them, and, for what does not, the reason and the way out.
 */
export function constraintsFor(p: SwarmPlacement): { constraints: string[]; errors: string[] } {
  const constraints: string[] = [];
  const errors: string[] = [];
  for (const [k, v] of Object.entries(p.nodeSelector ?? {})) constraints.push(`node.labels.${k}==${v}`);
  for (const e of p.matchExpressions ?? []) {
    const values = e.values ?? [];
    if (e.operator === "In" && values.length === 1) constraints.push(`node.labels.${e.key}==${values[0]}`);
    else if (e.operator === "NotIn") for (const v of values) constraints.push(`node.labels.${e.key}!=${v}`);
    else errors.push(`the expression \`${e.key} ${e.operator}${values.length ? ` ${values.join(",")}` : ""}\` has no swarm constraint (swarm matches labels with == and != only); use \`In\` with one value, \`NotIn\`, or a nodeSelector`);
  }
  if (p.pinned?.length === 1) constraints.push(`node.labels.${NODE_LABEL}==${p.pinned[0]}`);
  else if (p.pinned && p.pinned.length > 1) errors.push(`\`pinned\` to ${p.pinned.length} nodes has no swarm constraint (one node only); label those nodes and use a nodeSelector instead`);
  if (p.colocateWith !== undefined) errors.push("`colocateWith` is drove's own scheduler's; swarm has no such constraint: use a nodeSelector shared by both services");
  if (p.resources && Object.keys(p.resources).length) errors.push("`placement.resources` is drove's own scheduler's; swarm reserves CPU and memory, not named capacities: drop it with orchestrator \"swarm\"");
  return { constraints: constraints.sort(), errors };
}

export interface SwarmRollout {
  readonly maxSurge: number;
  readonly maxUnavailable: number;
}

/**
 * drove's rollout as swarm's update config. With no replica allowed to be
 * missing (maxUnavailable 0), new tasks start first, `maxSurge` at a time;
 * otherwise old ones stop first, `maxUnavailable` at a time. A task that fails
 * (or fails its health check within the monitor window) rolls the update back.
 */
export function updateConfig(r: SwarmRollout, health: HealthTiming): Record<string, unknown> {
  const startFirst = r.maxUnavailable === 0;
  return {
    Parallelism: startFirst ? r.maxSurge : r.maxUnavailable,
    Order: startFirst ? "start-first" : "stop-first",
    FailureAction: "rollback",
    Monitor: seconds(health.interval * health.retries + 5),
    MaxFailureRatio: 0,
  };
}

function seconds(s: number): number {
  return s * 1_000_000_000;
}

export type RestartPolicy = "no" | "always" | "on-failure" | "unless-stopped";

const CONDITION: Record<RestartPolicy, string> = { no: "none", always: "any", "unless-stopped": "any", "on-failure": "on-failure" };

/** What a swarm service is made of, as drove wants it. */
export interface SwarmServiceDesired {
  readonly cluster: string;
  readonly name: string;
  readonly image: string;
  readonly command?: string[];
  readonly env: Record<string, string>;
  readonly ports: ServicePort[];
  readonly portBlock: number;
  readonly healthCheck?: HealthCheck;
  readonly health: HealthTiming;
  readonly restart: RestartPolicy;
  /** Undefined for a global service. */
  readonly replicas?: number;
  readonly constraints: string[];
  readonly rollout: SwarmRollout;
  /** The swarm secrets to mount: file name -> the secret's id and name. */
  readonly secrets: Record<string, { id: string; name: string }>;
}

/**
 * The `ServiceSpec` (Engine API) of a drove service: ports published on each
 * node's own address (`mode=host`, no routing mesh: it needs IPVS), DNS
 * round-robin instead of a swarm VIP, at most one replica per node (its
 * published port), secrets as files under /run/secrets (mode 0400).
 */
export function serviceSpec(d: SwarmServiceDesired): Record<string, unknown> {
  const label = `${d.cluster}/${d.name}`;
  const hc = d.healthCheck;
  const published = publishedPorts(d.portBlock, d.ports.length);
  const template = {
      ContainerSpec: {
        Image: d.image,
        ...(d.command ? { Args: [...d.command] } : {}),
        Env: Object.entries(d.env)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, v]) => `${k}=${v}`),
        Labels: { [SERVICE_LABEL]: label } as Record<string, string>,
        Secrets: Object.entries(d.secrets)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([file, s]) => ({ File: { Name: file, UID: "0", GID: "0", Mode: 0o400 }, SecretID: s.id, SecretName: s.name })),
        ...(hc && "command" in hc
          ? { Healthcheck: { Test: ["CMD", ...hc.command], Interval: seconds(d.health.interval), Timeout: seconds(d.health.timeout), Retries: d.health.retries } }
          : {}),
      },
      RestartPolicy: { Condition: CONDITION[d.restart] },
      Placement: { Constraints: [...d.constraints], ...(d.replicas !== undefined ? { MaxReplicas: 1 } : {}) },
  };
  const version = createHash("sha256").update(JSON.stringify([template, published])).digest("hex").slice(0, 16);
  template.ContainerSpec.Labels[VERSION_LABEL] = version;
  return {
    Name: swarmServiceName(d.cluster, d.name),
    Labels: { [SERVICE_LABEL]: label, [ROLLOUT_LABEL]: `${d.rollout.maxSurge}/${d.rollout.maxUnavailable}` },
    TaskTemplate: template,
    Mode: d.replicas !== undefined ? { Replicated: { Replicas: d.replicas } } : { Global: {} },
    UpdateConfig: updateConfig(d.rollout, d.health),
    RollbackConfig: { Parallelism: 1, Order: d.rollout.maxUnavailable === 0 ? "start-first" : "stop-first", FailureAction: "pause" },
    EndpointSpec: {
      Mode: "dnsrr",
      Ports: d.ports.map((p, k) => ({ Protocol: "tcp", TargetPort: p.targetPort, PublishedPort: published[k], PublishMode: "host" })),
    },
  };
}

/** A service as swarm holds it, in drove's terms (what `read` compares with the desired state). */
export interface SwarmServiceLive {
  readonly image: string;
  readonly command?: string[];
  readonly env: Record<string, string>;
  /** Container port -> published port, as published. */
  readonly published: { targetPort: number; publishedPort: number; mode: string }[];
  readonly replicas?: number;
  readonly global: boolean;
  readonly constraints: string[];
  readonly rollout: SwarmRollout;
  readonly restart: string;
  /** File name -> secret name. */
  readonly secretNames: Record<string, string>;
  readonly endpointMode: string;
  readonly version: number;
  /** `UpdateStatus.State` (`updating`, `completed`, `rollback_completed`, `paused`, ...), "" when none. */
  readonly updateState: string;
  readonly updateMessage: string;
  /** When that update (or its rollback) began: tells this run's update from an older one. */
  readonly updateStartedAt: string;
}

/** The digest `serviceSpec` labels a service's containers with. */
export function specVersion(spec: Record<string, unknown>): string {
  return String((spec as { TaskTemplate?: { ContainerSpec?: { Labels?: Record<string, string> } } }).TaskTemplate?.ContainerSpec?.Labels?.[VERSION_LABEL] ?? "");
}

export function parseService(body: unknown): SwarmServiceLive {
  const s = (body ?? {}) as Record<string, any>;
  const spec = s.Spec ?? {};
  const cs = spec.TaskTemplate?.ContainerSpec ?? {};
  const env: Record<string, string> = {};
  for (const e of (cs.Env ?? []) as string[]) {
    const i = e.indexOf("=");
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  const secretNames: Record<string, string> = {};
  for (const x of (cs.Secrets ?? []) as { File?: { Name?: string }; SecretName?: string }[]) if (x.File?.Name) secretNames[x.File.Name] = String(x.SecretName ?? "");
  const uc = spec.UpdateConfig ?? {};
  const derived = uc.Order === "start-first" ? { maxSurge: Number(uc.Parallelism ?? 1), maxUnavailable: 0 } : { maxSurge: 0, maxUnavailable: Number(uc.Parallelism ?? 1) };
  // drove's rollout comes from its label, as long as swarm's update config is still what that label makes.
  const m = /^(\d+)\/(\d+)$/.exec(String(spec.Labels?.[ROLLOUT_LABEL] ?? ""));
  const labelled = m ? { maxSurge: Number(m[1]), maxUnavailable: Number(m[2]) } : undefined;
  const matches = labelled && (labelled.maxUnavailable === 0 ? uc.Order === "start-first" && Number(uc.Parallelism) === labelled.maxSurge : uc.Order !== "start-first" && Number(uc.Parallelism) === labelled.maxUnavailable);
  const condition = String(spec.TaskTemplate?.RestartPolicy?.Condition ?? "any");
  return {
    image: String(cs.Image ?? ""),
    ...(cs.Args ? { command: [...cs.Args] } : {}),
    env,
    published: ((spec.EndpointSpec?.Ports ?? []) as Record<string, unknown>[]).map((p) => ({ targetPort: Number(p.TargetPort), publishedPort: Number(p.PublishedPort), mode: String(p.PublishMode ?? "ingress") })),
    ...(spec.Mode?.Replicated ? { replicas: Number(spec.Mode.Replicated.Replicas ?? 1) } : {}),
    global: !!spec.Mode?.Global,
    constraints: [...((spec.TaskTemplate?.Placement?.Constraints ?? []) as string[])].sort(),
    rollout: matches ? labelled! : derived,
    restart: condition,
    secretNames,
    endpointMode: String(spec.EndpointSpec?.Mode ?? "vip"),
    version: Number(s.Version?.Index ?? 0),
    updateState: String(s.UpdateStatus?.State ?? ""),
    updateMessage: String(s.UpdateStatus?.Message ?? ""),
    updateStartedAt: String(s.UpdateStatus?.StartedAt ?? ""),
  };
}

/** A task of a service (`GET /tasks`). */
export interface TaskFact {
  readonly id: string;
  readonly nodeId: string;
  readonly desired: string;
  readonly state: string;
  readonly error: string;
  readonly image: string;
  /** The task template's digest (`drove.version`), "" for a task drove did not make. */
  readonly version: string;
}

export function parseTasks(body: unknown): TaskFact[] {
  if (!Array.isArray(body)) throw new Error("unexpected answer from GET /tasks: not a list");
  return body.map((t: Record<string, any>) => ({
    id: String(t.ID),
    nodeId: String(t.NodeID ?? ""),
    desired: String(t.DesiredState ?? ""),
    state: String(t.Status?.State ?? ""),
    error: String(t.Status?.Err ?? t.Status?.Message ?? ""),
    image: String(t.Spec?.ContainerSpec?.Image ?? ""),
    version: String(t.Spec?.ContainerSpec?.Labels?.[VERSION_LABEL] ?? ""),
  }));
}

/** Task states a task does not leave. */
const FINAL = ["complete", "shutdown", "failed", "rejected", "orphaned", "remove"];

/**
 * Where a service's rollout stands: done, still going, or failed with the reason.
 * `startedBefore` is the update status's start time before this run's change: a
 * status that has not moved since is an older update's (a rollback of last time's
 * broken version, say), not this one's.
 */
export function rolloutState(p: { live: SwarmServiceLive; tasks: readonly TaskFact[]; version: string; want: number | undefined; startedBefore?: string }): { state: "done" | "waiting" | "failed"; reason: string } {
  const u = p.startedBefore !== undefined && p.live.updateStartedAt === p.startedBefore ? "" : p.live.updateState;
  // A failed update is reported once swarm has finished rolling it back: the service is steady again.
  if (u === "rollback_started") return { state: "waiting", reason: `swarm is rolling the update back: ${p.live.updateMessage || "a new task failed"}` };
  if (["rollback_completed", "rollback_paused", "paused"].includes(u)) {
    const errs = [...new Set(p.tasks.filter((t) => t.error && t.version === p.version).map((t) => t.error))].slice(-3);
    return { state: "failed", reason: `swarm ${u === "paused" ? "paused the update" : "rolled the update back"}: ${p.live.updateMessage || "a new task failed"}${errs.length ? ` (${errs.join("; ")})` : ""}` };
  }
  const running = p.tasks.filter((t) => t.desired === "running" && t.state === "running" && t.version === p.version).length;
  const desired = p.tasks.filter((t) => t.desired === "running").length;
  const want = p.want ?? desired;
  // A task swarm is taking down still holds its container (and its port) until it reaches a final state.
  const stopping = p.tasks.filter((t) => t.desired !== "running" && !FINAL.includes(t.state)).length;
  if ((u === "" || u === "completed") && running === want && desired === want && stopping === 0) return { state: "done", reason: "" };
  const errs = [...new Set(p.tasks.filter((t) => t.error).map((t) => t.error))].slice(-3);
  return { state: "waiting", reason: `${running} of ${want} replicas running${stopping ? `, ${stopping} stopping` : ""}${u ? `, update ${u}` : ""}${errs.length ? `; tasks: ${errs.join("; ")}` : ""}` };
}

/** A swarm secret's name: the service's, the file's, and a generation (secrets are immutable; a new value is a new secret). */
export function secretName(cluster: string, service: string, file: string, generation: string): string {
  return `${`${cluster}-${service}-${file}`.slice(0, 63 - generation.length)}-${generation}`;
}

/** `POST /secrets/create` body (the value base64, on stdin). */
export function secretBody(name: string, cluster: string, service: string, value: string): string {
  return JSON.stringify({ Name: name, Labels: { [SERVICE_LABEL]: `${cluster}/${service}` }, Data: Buffer.from(value, "utf8").toString("base64") });
}
