/**
 * The pure parts of a Service: addresses and ports allocated from its name,
 * the HAProxy configuration and /etc/hosts block every node gets, and the
 * rolling-update schedule. Nothing here touches SSH.
 */
import { createHash } from "node:crypto";
import { sh, type ShellCommand } from "../../src/quote";
import type { Step } from "../file/operations";

// ---------------------------------------------------------------- addresses

/** Virtual IPs come from this range, one /32 per service, added to `lo` on every node. */
export const VIP_PREFIX = "10.254";
export const VIP_RANGE = `${VIP_PREFIX}.0.0/16`;

function hash32(text: string): number {
  return createHash("sha256").update(text, "utf8").digest().readUInt32BE(0);
}

/**
 * The virtual IP of `cluster/service`: a hash of the name into 10.254.0.1-10.254.255.254,
 * moved to the next free address when another service of the cluster holds it.
 */
export function vipFor(cluster: string, service: string, taken: ReadonlySet<string> = new Set()): string {
  let i = hash32(`${cluster}/${service}`) % 65534;
  for (let n = 0; n < 65534; n++, i = (i + 1) % 65534) {
    const ip = `${VIP_PREFIX}.${(i + 1) >> 8}.${(i + 1) & 255}`;
    if (!taken.has(ip)) return ip;
  }
  throw new Error(`no virtual IP is free in ${VIP_RANGE}`);
}

/**
 * Virtual IPs for every service of a cluster: deterministic from the names alone.
 * On a hash collision the service whose name sorts later takes the next free address.
 */
export function allocateVips(cluster: string, services: readonly string[]): Record<string, string> {
  const taken = new Set<string>();
  const out: Record<string, string> = {};
  for (const s of [...new Set(services)].sort()) {
    out[s] = vipFor(cluster, s, taken);
    taken.add(out[s]);
  }
  return out;
}

/** Host ports for replicas: a block of PORT_BLOCK ports per service, from PORT_BASE. */
export const PORT_BASE = 20000;
export const PORT_BLOCK = 64;
export const PORT_BLOCKS = 700; // 20000..64799

export function portBlockFor(cluster: string, service: string, taken: ReadonlySet<number> = new Set()): number {
  let b = hash32(`ports:${cluster}/${service}`) % PORT_BLOCKS;
  for (let n = 0; n < PORT_BLOCKS; n++, b = (b + 1) % PORT_BLOCKS) if (!taken.has(b)) return b;
  throw new Error("no host port block is free");
}

/** Port blocks for every service of a cluster, as `allocateVips` does for addresses. */
export function allocatePortBlocks(cluster: string, services: readonly string[]): Record<string, number> {
  const taken = new Set<number>();
  const out: Record<string, number> = {};
  for (const s of [...new Set(services)].sort()) {
    out[s] = portBlockFor(cluster, s, taken);
    taken.add(out[s]);
  }
  return out;
}

/** How many replicas of a service one node can hold at once (surge included), given its port count. */
export function slotsPerNode(portCount: number): number {
  return Math.floor(PORT_BLOCK / Math.max(1, portCount));
}

/** The host port of a replica's `i`-th service port. */
export function hostPort(block: number, slot: number, portIndex: number, portCount: number): number {
  if (slot < 0 || slot >= slotsPerNode(portCount)) throw new Error(`slot ${slot} is out of range`);
  return PORT_BASE + block * PORT_BLOCK + slot * Math.max(1, portCount) + portIndex;
}

/** The lowest slot not in use on a node. */
export function freeSlot(used: Iterable<number>, portCount: number): number {
  const u = new Set(used);
  for (let s = 0; s < slotsPerNode(portCount); s++) if (!u.has(s)) return s;
  throw new Error(`every one of the ${slotsPerNode(portCount)} replica slots of this node is in use`);
}

/** `<service>.<cluster>.drove`: the name every node resolves to the service's virtual IP. */
export function serviceDnsName(cluster: string, service: string): string {
  return `${service}.${cluster}.drove`;
}

/** The container name of a replica. */
export function replicaName(cluster: string, service: string, slot: number): string {
  return `drove-${cluster}-${service}-${slot}`;
}

// ---------------------------------------------------------------- HAProxy

export interface ServicePort {
  /** The port on the virtual IP. */
  readonly port: number;
  /** The container's port. */
  readonly targetPort: number;
  readonly protocol: "tcp";
}

export type HealthCheck =
  | { readonly http: { readonly path: string; readonly port: number } }
  | { readonly tcp: { readonly port: number } }
  | { readonly command: readonly string[] };

export interface HealthTiming {
  /** Seconds between checks. */
  readonly interval: number;
  /** Seconds before one check fails. */
  readonly timeout: number;
  /** Failed checks before a replica counts as unhealthy. */
  readonly retries: number;
}

/** A replica as the proxies see it: an address and one host port per service port. */
export interface Endpoint {
  /** `<node>-<slot>` */
  readonly id: string;
  readonly address: string;
  /** Host ports, in the order of the service's ports. */
  readonly hostPorts: readonly number[];
}

export const HAPROXY_DIR = "/etc/haproxy/drove.d";
export const HAPROXY_DROPIN = "/etc/systemd/system/haproxy.service.d/drove.conf";
/**
 * Debian's unit runs `haproxy -Ws -f $CONFIG -p $PIDFILE $EXTRAOPTS` with EXTRAOPTS set to its
 * master socket: one more -f (a directory) loads every drove.d/*.cfg, the master socket kept.
 */
export const HAPROXY_DROPIN_CONTENT = `# managed by drove: load the services' proxies\n[Service]\nEnvironment="EXTRAOPTS=-S /run/haproxy-master.sock -f ${HAPROXY_DIR}"\n`;

export function haproxyFile(cluster: string, service: string): string {
  return `${HAPROXY_DIR}/${cluster}-${service}.cfg`;
}

function hcl(s: string): string {
  // HAProxy words: drove's own names are [a-z0-9-.], paths are checked by the construct.
  return s.replace(/[^A-Za-z0-9_./:-]/g, "_");
}

/**
 * One frontend on `vip:port` and one backend per service port, balancing over
 * the endpoints with HAProxy's own health checks (HTTP when the service's check is
 * HTTP on that port, TCP otherwise). A connection refused by a stopped replica is
 * redispatched to another.
 */
export function renderHaproxy(p: {
  readonly cluster: string;
  readonly service: string;
  readonly vip: string;
  readonly ports: readonly ServicePort[];
  readonly endpoints: readonly Endpoint[];
  readonly healthCheck?: HealthCheck;
  readonly timing: HealthTiming;
}): string {
  const lines = [
    `# managed by drove: service ${p.service} of cluster ${p.cluster}, ${serviceDnsName(p.cluster, p.service)} -> ${p.vip}`,
    "defaults",
    "    mode tcp",
    "    timeout connect 2s",
    "    timeout client 60s",
    "    timeout server 60s",
    "    retries 3",
    "    option redispatch",
  ];
  const eps = [...p.endpoints].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  p.ports.forEach((port, i) => {
    const name = `drove_${hcl(p.cluster)}_${hcl(p.service)}_${port.port}`;
    lines.push("", `frontend ${name}`, `    bind ${p.vip}:${port.port}`, `    default_backend ${name}`, "", `backend ${name}`, "    balance roundrobin");
    const hc = p.healthCheck;
    if (hc && "http" in hc && hc.http.port === port.targetPort) {
      lines.push(`    option httpchk GET ${hcl(hc.http.path)}`, "    http-check expect status 200-399");
    }
    lines.push(`    default-server inter ${p.timing.interval}s fall ${p.timing.retries} rise 1`);
    for (const e of eps) lines.push(`    server ${hcl(e.id)} ${e.address}:${e.hostPorts[i]} check`);
  });
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------- /etc/hosts

export function hostsMarker(cluster: string, service: string): string {
  return `drove service ${cluster}/${service}`;
}

/** The managed block: one line that names the service's virtual IP. */
export function hostsBlock(cluster: string, service: string, vip: string): string {
  const m = hostsMarker(cluster, service);
  return `# BEGIN ${m}\n${vip} ${serviceDnsName(cluster, service)}\n# END ${m}\n`;
}

/** Replaces (or, with an empty block, removes) the managed block of /etc/hosts, written in place under a lock. */
export function hostsFileContent(current: string, cluster: string, service: string, block: string): string {
  const m = hostsMarker(cluster, service);
  const out: string[] = [];
  let inside = false;
  for (const line of current.split("\n")) {
    if (line === `# BEGIN ${m}`) inside = true;
    else if (line === `# END ${m}`) inside = false;
    else if (!inside) out.push(line);
  }
  let text = out.join("\n");
  if (text.length && !text.endsWith("\n")) text += "\n";
  return text + block;
}

const HOSTS_SCRIPT = [
  `b="# BEGIN $1"; e="# END $1"`,
  `t=$(mktemp /etc/.hosts.drove.XXXXXX)`,
  `awk -v b="$b" -v e="$e" '$0==b{s=1;next} $0==e{s=0;next} !s' /etc/hosts > "$t"`,
  `cat >> "$t"`,
  // In place, not renamed: /etc/hosts may be a bind mount.
  `cat "$t" > /etc/hosts`,
  `rm -f "$t"`,
].join(" && ");

/** Writes the block (from stdin) into /etc/hosts; an empty stdin removes it. Other blocks and lines stay. */
export function hostsUpdateCommand(cluster: string, service: string): ShellCommand {
  return sh`flock /run/drove-hosts.lock sh -c ${HOSTS_SCRIPT} drove-hosts ${hostsMarker(cluster, service)}`;
}

// ---------------------------------------------------------------- secrets

/** Where a replica's secret files live on its node: tmpfs, mounted read-only at /run/secrets. */
export function secretsDir(cluster: string, service: string, slot: number): string {
  return `/run/drove/services/${cluster}-${service}-${slot}/secrets`;
}

/**
 * A replica's secret files: a fresh 0700 directory, then each file written from
 * stdin under umask 0377, so it is 0400 from its first byte (never on a command
 * line, never readable by anyone but root, not even while it is written).
 */
export function secretFileSteps(dir: string, secrets: Readonly<Record<string, string>>): Step[] {
  if (!Object.keys(secrets).length) return [];
  return [
    { description: "prepare the secrets", command: sh`rm -rf ${dir} && mkdir -p -m 0700 ${dir}` },
    ...Object.entries(secrets).map(([file, value]) => ({
      description: `write secret ${file}`,
      command: sh`umask 0377 && cat > ${`${dir}/${file}`} && chmod 0400 ${`${dir}/${file}`}`,
      stdin: value,
    })),
  ];
}

// ---------------------------------------------------------------- node steps

/** The virtual IP on `lo`, the proxy's file, and the hosts block: a node's share of a service. */
export function nodeProxySteps(p: {
  readonly cluster: string;
  readonly service: string;
  readonly vip: string;
  readonly config: string;
}): Step[] {
  const file = haproxyFile(p.cluster, p.service);
  return [
    {
      description: `add the virtual IP ${p.vip} to lo`,
      command: sh`{ ip -o addr show dev lo | grep -qF ${` ${p.vip}/32 `} || ip addr add ${`${p.vip}/32`} dev lo; }`,
    },
    {
      description: "let HAProxy load drove's services",
      command: sh`mkdir -p ${HAPROXY_DIR} /etc/systemd/system/haproxy.service.d && { [ "$(cat ${HAPROXY_DROPIN} 2>/dev/null)" = ${HAPROXY_DROPIN_CONTENT.trimEnd()} ] || { printf '%s\n' ${HAPROXY_DROPIN_CONTENT.trimEnd()} > ${HAPROXY_DROPIN} && systemctl daemon-reload; }; }`,
    },
    {
      description: `write ${file} and reload HAProxy`,
      command: sh`{ [ -e ${HAPROXY_DIR}/.adopted ] || [ -e ${HAPROXY_DIR}/.started ] || { if systemctl is-active -q haproxy; then touch ${HAPROXY_DIR}/.adopted; else touch ${HAPROXY_DIR}/.started; fi; }; } && t=$(mktemp ${`${file}.XXXXXX`}) && cat > "$t" && mv -f "$t" ${file} && systemctl enable -q haproxy 2>/dev/null; if systemctl is-active -q haproxy; then systemctl reload haproxy; else systemctl start haproxy; fi`,
      stdin: p.config,
    },
    { description: `name ${serviceDnsName(p.cluster, p.service)} in /etc/hosts`, command: hostsUpdateCommand(p.cluster, p.service), stdin: hostsBlock(p.cluster, p.service, p.vip) },
  ];
}

/** Everything `nodeProxySteps` made, removed; HAProxy stopped and its drop-in removed when drove started it and no service is left. */
export function nodeProxyRemovalSteps(p: { readonly cluster: string; readonly service: string; readonly vip: string }): Step[] {
  const file = haproxyFile(p.cluster, p.service);
  return [
    { description: `remove ${serviceDnsName(p.cluster, p.service)} from /etc/hosts`, command: hostsUpdateCommand(p.cluster, p.service), stdin: "" },
    {
      description: `remove ${file}`,
      command: sh`rm -f ${file} && if ls ${HAPROXY_DIR}/*.cfg >/dev/null 2>&1; then systemctl reload haproxy; else if [ -e ${HAPROXY_DIR}/.started ]; then systemctl disable -q --now haproxy 2>/dev/null || true; fi; rm -rf ${HAPROXY_DIR} && rm -f ${HAPROXY_DROPIN} && rmdir /etc/systemd/system/haproxy.service.d 2>/dev/null; systemctl daemon-reload; if systemctl is-active -q haproxy; then systemctl reload haproxy; fi; fi`,
    },
    { description: `remove the virtual IP ${p.vip} from lo`, command: sh`{ ip addr del ${`${p.vip}/32`} dev lo 2>/dev/null || true; }` },
  ];
}

// ---------------------------------------------------------------- rollout

export interface RolloutStep {
  /** New replicas to start, each gated on its health check. */
  readonly add: number;
  /** Replicas to drain and stop afterwards. */
  readonly remove: number;
}

/**
 * The schedule of a rolling update: `old` healthy replicas of the previous version,
 * `current` healthy ones of the new version, `desired` wanted. Each step starts some
 * new replicas (never more than desired + maxSurge at once) and, once they are healthy,
 * drains some old ones (never fewer than desired - maxUnavailable healthy). Scaling is the
 * same schedule with nothing old or nothing new.
 */
export function planRollout(p: { old: number; current: number; desired: number; maxSurge: number; maxUnavailable: number }): RolloutStep[] {
  const { desired: n, maxSurge, maxUnavailable } = p;
  if (maxSurge + maxUnavailable < 1) throw new Error("`maxSurge` and `maxUnavailable` cannot both be 0: the roll could never make progress");
  let old = p.old;
  let cur = p.current;
  const steps: RolloutStep[] = [];
  // Surplus of the new version (scaling down): it goes like old replicas do, after them.
  const surplus = Math.max(0, cur - n);
  cur -= surplus;
  old += surplus;
  const floor = Math.max(0, n - maxUnavailable);
  while (old > 0 || cur < n) {
    const add = Math.max(0, Math.min(n - cur, n + maxSurge - (old + cur)));
    cur += add;
    const remove = cur >= n ? old : Math.max(0, Math.min(old, old + cur - floor));
    old -= remove;
    if (add === 0 && remove === 0) throw new Error("rollout made no progress");
    steps.push({ add, remove });
  }
  return steps;
}

/** A replica as it runs (or ran) on a node. */
export interface Replica {
  readonly node: string;
  readonly slot: number;
  /** The digest of what it runs (image, env, secrets, ports, command). */
  readonly version: string;
  readonly healthy: boolean;
}

export interface ReplicaPlan {
  /** Healthy replicas of the new version that stay where they are. */
  readonly keep: readonly Replica[];
  /** Nodes to start a new replica on, in the order they start. */
  readonly add: readonly string[];
  /** Replicas that are not serving (unhealthy, or on a node out of reach): removed first, they cost no capacity. */
  readonly discard: readonly Replica[];
  /** Healthy replicas that go once new ones serve, in the order they go. */
  readonly retire: readonly Replica[];
  readonly steps: readonly RolloutStep[];
}

function cmp(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Existing replicas + the placement (replicas per node) + the new version -> what
 * stays, what starts where, what goes, and in which steps. A replica of the new
 * version on a node that keeps its count is never touched: the minimal movement
 * the scheduler promises holds for the containers too.
 */
export function planReplicas(p: {
  readonly existing: readonly Replica[];
  readonly placement: Readonly<Record<string, number>>;
  readonly version: string;
  /** Nodes out of reach: their replicas cannot serve and cannot be stopped now. */
  readonly unreachable?: ReadonlySet<string>;
  readonly maxSurge: number;
  readonly maxUnavailable: number;
}): ReplicaPlan {
  const unreachable = p.unreachable ?? new Set<string>();
  const sorted = [...p.existing].sort((a, b) => cmp(a.node, b.node) || cmp(a.slot, b.slot));
  const keep: Replica[] = [];
  const discard: Replica[] = [];
  const retire: Replica[] = [];
  const kept: Record<string, number> = {};
  for (const r of sorted) {
    const serving = r.healthy && !unreachable.has(r.node);
    if (!serving) discard.push(r);
    else if (r.version === p.version && (kept[r.node] ?? 0) < (p.placement[r.node] ?? 0)) {
      keep.push(r);
      kept[r.node] = (kept[r.node] ?? 0) + 1;
    } else retire.push(r);
  }
  // New replicas round-robin over the nodes, so a roll spreads its risk.
  const missing = Object.entries(p.placement)
    .map(([node, n]) => [node, Math.max(0, n - (kept[node] ?? 0))] as const)
    .sort((a, b) => cmp(a[0], b[0]));
  const add: string[] = [];
  for (let round = 0; add.length < missing.reduce((s, [, n]) => s + n, 0); round++) {
    for (const [node, n] of missing) if (round < n) add.push(node);
  }
  const desired = Object.values(p.placement).reduce((s, n) => s + n, 0);
  const steps = planRollout({ old: retire.length, current: keep.length, desired, maxSurge: p.maxSurge, maxUnavailable: p.maxUnavailable });
  return { keep, add, discard, retire, steps };
}
