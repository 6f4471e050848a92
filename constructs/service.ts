import * as pulumi from "@pulumi/pulumi";
import { Construct, type IConstruct } from "constructs";
import { ValidationError } from "../src/errors";
import { isResourceConstruct, markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { allocatePortBlocks, allocateVips, serviceDnsName } from "../providers/service/operations";
import { constraintsFor, type SwarmPlacement } from "../providers/swarm/operations";
import type { ContainerRuntime } from "./container-runtime";
import type { Host } from "./host";
import { imageOf } from "./image";
import { Attestation } from "./attestation";
import { freeId } from "../src/app";

/** One port of a service. */
export interface ServicePortProps {
  /** The port on the service's virtual IP (and its name, `<service>.<cluster>.drove`). */
  readonly port: number;
  /** The container's port. @default - `port` */
  readonly targetPort?: number;
  /** Only TCP: HAProxy balances streams. @default "tcp" */
  readonly protocol?: "tcp";
}

/** How a replica proves it serves. */
export type HealthCheckProps = (
  | { readonly http: { readonly path: string; readonly port: number } }
  | { readonly tcp: { readonly port: number } }
  | { readonly command: readonly string[] }
) & {
  /** Seconds between checks. @default 2 */
  readonly interval?: number;
  /** Seconds one check may take. @default 2 */
  readonly timeout?: number;
  /** Failed checks before a replica is unhealthy (HAProxy's `fall`). @default 3 */
  readonly retries?: number;
};

/** A label query on node labels, as Kubernetes writes `matchExpressions`. */
export interface MatchExpression {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values?: readonly string[];
}

/** Where replicas may run: the scheduler's vocabulary (src/placement.ts). */
export interface PlacementProps {
  /** Nodes whose labels include all of these. @default {} */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** More label queries, all of which must hold. @default [] */
  readonly matchExpressions?: readonly MatchExpression[];
  /** At most `maxPerNode` replicas on one node; spread evenly across the values of `acrossLabel`. @default - none */
  readonly spread?: { readonly maxPerNode?: number; readonly acrossLabel?: string };
  /** Run only on these hosts. @default - any */
  readonly pinned?: readonly Host[];
  /** Run on the nodes that run this other service of the cluster. @default - none */
  readonly colocateWith?: Service | string;
  /** What one replica needs of a node's capacity (as cluster.addHost's `capacity` counts it). @default {} */
  readonly resources?: Readonly<Record<string, number>>;
}

export interface ServiceProps {
  /** Image reference; pin by digest (`registry/name@sha256:...`, or an `Image`'s `digestRef`). */
  readonly image: pulumi.Input<string>;
  /** How many replicas, 1 to 1000. Not with `global`. @default 1 */
  readonly replicas?: number;
  /** One replica on every node the placement allows. @default false */
  readonly global?: boolean;
  /** The ports the service answers on. At least one. */
  readonly ports: readonly ServicePortProps[];
  /** Command and arguments, replacing the image's. @default - the image's */
  readonly command?: readonly string[];
  /** Environment variables; values may be Pulumi secrets (they never reach a command line). @default {} */
  readonly env?: Readonly<Record<string, pulumi.Input<string>>>;
  /** Files mounted read-only at `/run/secrets/<name>` in every replica (mode 0400, on tmpfs, never in an image). Always secrets. @default {} */
  readonly secrets?: Readonly<Record<string, pulumi.Input<string>>>;
  /** Gates each new replica of a roll and drives HAProxy's checks. @default - the container runs */
  readonly healthCheck?: HealthCheckProps;
  /** @default "always" */
  readonly restart?: "no" | "always" | "on-failure" | "unless-stopped";
  /** Placement constraints. @default - anywhere */
  readonly placement?: PlacementProps;
  /** Rolling updates. */
  readonly rollout?: { readonly maxUnavailable?: number; readonly maxSurge?: number };
}

/** A node of a cluster as a Service needs it. */
export interface ServiceClusterNode {
  readonly host: Host;
  readonly labels: Readonly<Record<string, string>>;
  readonly runtime?: ContainerRuntime;
  readonly capacity?: Readonly<Record<string, number>>;
}

/** What a Service needs of its Cluster (constructs/cluster.ts). */
export interface ServiceCluster extends IConstruct {
  /** The cluster's name (etcd keys, DNS names). @default - its construct id */
  readonly clusterName?: string;
  /** Who schedules the replicas: drove with etcd, or Docker Swarm. @default "etcd" */
  readonly orchestrator?: "etcd" | "swarm";
  readonly nodes: readonly ServiceClusterNode[];
  /** The CA certificate (PEM) etcd clients verify the members with. */
  readonly caCertPem: pulumi.Input<string>;
  readonly controlPlaneHosts: readonly Host[];
  readonly etcdEndpoints: pulumi.Input<string[]>;
  clientCertificate(id: string): { readonly certPem: pulumi.Input<string>; readonly keyPem: pulumi.Input<string> };
}

const SERVICE = Symbol.for("drove.service");
const NAME = /^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function intIn(v: unknown, lo: number, hi: number): boolean {
  return Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
}

/**
 * A service on a cluster: `replicas` containers placed by the cluster's scheduler,
 * reachable on every node at a virtual IP and as `<service>.<cluster>.drove`
 * through HAProxy, endpoints in etcd, rolled a few at a time when the image, env or
 * secrets change.
 *
 * @example
 * cluster.addService("web", { image: img.digestRef, replicas: 3, ports: [{ port: 80, targetPort: 8080 }],
 *   healthCheck: { http: { path: "/", port: 8080 } } });
 */
export class Service extends Construct implements IResourceConstruct {
  static isService(x: unknown): x is Service {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[SERVICE] === true;
  }

  readonly cluster: ServiceCluster;
  /** The service's name (its id): a DNS label. */
  readonly serviceName: string;
  readonly replicas: number | undefined;
  readonly global: boolean;
  readonly ports: readonly { port: number; targetPort: number; protocol: "tcp" }[];
  readonly maxSurge: number;
  readonly maxUnavailable: number;
  private readonly props: ServiceProps;
  private readonly cert: { readonly certPem: pulumi.Input<string>; readonly keyPem: pulumi.Input<string> } | undefined;

  constructor(cluster: ServiceCluster, id: string, props: ServiceProps) {
    super(cluster as unknown as Construct, freeId(cluster as unknown as Construct, id));
    Object.defineProperty(this, SERVICE, { value: true });
    markResource(this);
    const where = this.node.path;
    const errors: string[] = [];
    const bad = (msg: string) => errors.push(`${where}: ${msg}`);
    if (!NAME.test(id)) bad(`the service's id is its DNS name: lower-case letters, digits and '-', up to 42, but ${JSON.stringify(id)} was provided`);
    if (props.image === undefined || props.image === "") bad("`image` is required");
    if (props.global && props.replicas !== undefined) bad("give `replicas` or `global: true`, not both");
    if (props.replicas !== undefined && !intIn(props.replicas, 1, 1000)) bad(`\`replicas\` must be between 1 and 1000, but ${props.replicas} was provided`);
    const ports = (props.ports ?? []).map((p) => ({ port: p.port, targetPort: p.targetPort ?? p.port, protocol: p.protocol ?? ("tcp" as const) }));
    if (!ports.length) bad("`ports` needs at least one port: [{ port: 80, targetPort: 8080 }]");
    for (const p of ports) {
      if (!intIn(p.port, 1, 65535) || !intIn(p.targetPort, 1, 65535)) bad(`ports must be between 1 and 65535, but ${JSON.stringify(p)} was provided`);
      if (p.protocol !== "tcp") bad(`only TCP ports can be balanced by HAProxy, but ${JSON.stringify(p.protocol)} was provided`);
    }
    if (new Set(ports.map((p) => p.port)).size !== ports.length) bad("each `port` may appear once");
    if (new Set(ports.map((p) => p.targetPort)).size !== ports.length) bad("each `targetPort` may appear once");
    for (const k of Object.keys(props.env ?? {})) if (!ENV_KEY.test(k)) bad(`environment variable name ${JSON.stringify(k)} must be letters, digits and '_', not starting with a digit`);
    // Values travel as KEY=value lines of an env file (as a Container's do): one line, no CR (Docker drops it), no NUL.
    for (const [k, v] of Object.entries(props.env ?? {})) {
      if (typeof v === "string" && /[\n\r\0]/.test(v)) bad(`environment variable ${k} must be a single line, without CR, LF or NUL characters, but ${JSON.stringify(v)} was provided`);
    }
    for (const k of Object.keys(props.secrets ?? {})) if (!SECRET_FILE.test(k)) bad(`secret ${JSON.stringify(k)} names a file in /run/secrets: letters, digits, '_', '.' or '-', not starting with '.'`);
    const hc = props.healthCheck;
    if (hc) {
      const port = "http" in hc ? hc.http.port : "tcp" in hc ? hc.tcp.port : undefined;
      if (port !== undefined && !ports.some((p) => p.targetPort === port)) bad(`the health check's port ${port} must be one of the service's target ports (${ports.map((p) => p.targetPort).join(", ")})`);
      if ("http" in hc && (!hc.http.path.startsWith("/") || /\s/.test(hc.http.path))) bad(`the health check's path must start with '/' and hold no space, but ${JSON.stringify(hc.http.path)} was provided`);
      if ("command" in hc && !hc.command.length) bad("the health check's command must not be empty");
      for (const k of ["interval", "timeout", "retries"] as const) if (hc[k] !== undefined && !intIn(hc[k], 1, 3600)) bad(`the health check's \`${k}\` must be a whole number from 1 to 3600, but ${hc[k]} was provided`);
    }
    const maxSurge = props.rollout?.maxSurge ?? 1;
    const maxUnavailable = props.rollout?.maxUnavailable ?? 1;
    if (!intIn(maxSurge, 0, 1000)) bad(`\`rollout.maxSurge\` must be between 0 and 1000, but ${maxSurge} was provided`);
    if (!intIn(maxUnavailable, 0, 1000)) bad(`\`rollout.maxUnavailable\` must be between 0 and 1000, but ${maxUnavailable} was provided`);
    if (maxSurge === 0 && maxUnavailable === 0) bad("`rollout.maxSurge` and `rollout.maxUnavailable` cannot both be 0: a roll could never make progress");
    const spread = props.placement?.spread;
    if (spread?.maxPerNode !== undefined && !intIn(spread.maxPerNode, 1, 64)) bad(`\`placement.spread.maxPerNode\` must be between 1 and 64, but ${spread.maxPerNode} was provided`);
    if (errors.length) throw new ValidationError(errors);

    this.cluster = cluster;
    this.serviceName = id;
    this.replicas = props.global ? undefined : (props.replicas ?? 1);
    this.global = props.global ?? false;
    this.ports = ports;
    this.maxSurge = maxSurge;
    this.maxUnavailable = maxUnavailable;
    this.props = props;

    // Its etcd client certificate is a resource: asked for now, while the tree is built (a swarm has no etcd).
    this.cert = cluster.orchestrator === "swarm" ? undefined : cluster.clientCertificate(`service-${id}`);
    // Constraints that depend on the cluster's nodes and other services: checked before any SSH.
    this.node.addValidation({ validate: () => this.validatePlacement() });
  }

  /** The cluster's name, as used in DNS names and keys. */
  get clusterName(): string {
    return this.cluster.clusterName ?? this.cluster.node.id;
  }

  /** `<service>.<cluster>.drove`, resolvable on every node of the cluster. */
  get dnsName(): string {
    return serviceDnsName(this.clusterName, this.serviceName);
  }

  /** The service's virtual IP (from 10.254.0.0/16, deterministic from the names of the cluster's services). */
  get virtualIp(): string {
    return allocateVips(this.clusterName, this.peers().map((s) => s.serviceName))[this.serviceName];
  }

  private peers(): Service[] {
    return this.cluster.node.findAll().filter(Service.isService);
  }

  private matches(labels: Readonly<Record<string, string>>, host: Host): boolean {
    const pl = this.props.placement ?? {};
    for (const [k, v] of Object.entries(pl.nodeSelector ?? {})) if (labels[k] !== v) return false;
    for (const e of pl.matchExpressions ?? []) {
      const has = e.key in labels;
      if (e.operator === "Exists" && !has) return false;
      if (e.operator === "DoesNotExist" && has) return false;
      if (e.operator === "In" && !(has && (e.values ?? []).includes(labels[e.key]))) return false;
      if (e.operator === "NotIn" && has && (e.values ?? []).includes(labels[e.key])) return false;
    }
    if (pl.pinned && !pl.pinned.includes(host)) return false;
    return true;
  }

  /** The services of a colocateWith cycle this one is in, or undefined. */
  private colocationCycle(): string[] | undefined {
    const byName = new Map(this.peers().map((p) => [p.serviceName, p]));
    const next = (svc: Service) => {
      const w = svc.props.placement?.colocateWith;
      return w === undefined ? undefined : byName.get(typeof w === "string" ? w : w.serviceName);
    };
    const path: string[] = [];
    for (let cur: Service | undefined = this; cur; cur = next(cur)) {
      const at = path.indexOf(cur.serviceName);
      if (at >= 0) return path.slice(at).includes(this.serviceName) ? path.slice(at) : undefined;
      path.push(cur.serviceName);
    }
    return undefined;
  }

  private validatePlacement(): string[] {
    const msgs: string[] = [];
    const nodes = this.cluster.nodes;
    const pl = this.props.placement ?? {};
    if (!nodes.length) return [`service ${this.serviceName} has no node to run on: add hosts with cluster.addHost(host)`];
    const eligible = nodes.filter((n) => this.matches(n.labels, n.host));
    if (!eligible.length) {
      const sel = [...Object.entries(pl.nodeSelector ?? {}).map(([k, v]) => `${k}=${v}`), ...(pl.matchExpressions ?? []).map((e) => `${e.key} ${e.operator} ${(e.values ?? []).join(",")}`.trim())];
      msgs.push(
        `service ${this.serviceName}: its placement (${[...sel, ...(pl.pinned ? [`pinned to ${pl.pinned.map((h) => h.node.id).join(", ")}`] : [])].join("; ") || "none"}) matches no node of the cluster (${nodes.map((n) => `${n.host.node.id} {${Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(", ")}}`).join("; ")}); change the selector, or label a host with cluster.addHost(host, { labels })`,
      );
    }
    for (const h of pl.pinned ?? []) if (!nodes.some((n) => n.host === h)) msgs.push(`service ${this.serviceName} is pinned to ${h.node.path}, which is not a node of the cluster; add it with cluster.addHost(host)`);
    if (pl.colocateWith !== undefined) {
      const other = typeof pl.colocateWith === "string" ? pl.colocateWith : pl.colocateWith.serviceName;
      if (!this.peers().some((s) => s.serviceName === other && s !== this)) msgs.push(`service ${this.serviceName} is to run with service ${other}, which the cluster does not have`);
      // A cycle of colocateWith, named once (by the service whose name comes first in it).
      const ring = this.colocationCycle();
      if (ring && [...ring].sort()[0] === this.serviceName) {
        const start = ring.indexOf(this.serviceName);
        const ordered = [...ring.slice(start), ...ring.slice(0, start)];
        msgs.push(`services ${ordered.join(", ")} are to run with each other in a cycle (${[...ordered, ordered[0]].join(" -> ")}), so none can be placed first; remove \`colocateWith\` from one of them`);
      }
    }
    for (const n of eligible) if (!n.runtime) msgs.push(`node ${n.host.node.id} has no container runtime for service ${this.serviceName}: cluster.addHost(host, { runtime: ContainerRuntime.docker(host) })`);
    for (const n of eligible) if (n.runtime && n.runtime.engine === "systemd") msgs.push(`node ${n.host.node.id} runs containers with systemd + runc on the host's network; service replicas need "docker" or "podman" to publish one port per replica`);
    if (this.cluster.orchestrator === "swarm") return [...msgs, ...this.validateSwarm(eligible.length)];
    const perNode = spreadMax(pl) ?? Infinity;
    if (this.replicas !== undefined && perNode * eligible.length < this.replicas) {
      msgs.push(`service ${this.serviceName} wants ${this.replicas} replicas but at most ${perNode} per node on ${eligible.length} eligible node(s) fit; lower \`replicas\`, raise \`placement.spread.maxPerNode\`, or add hosts`);
    }
    return msgs;
  }

  /** What swarm can and cannot do with this service, before any machine changes. */
  private validateSwarm(eligible: number): string[] {
    const msgs: string[] = [];
    const s = this.serviceName;
    const c = constraintsFor(this._schedulerSpec() as SwarmPlacement);
    for (const e of c.errors) msgs.push(`service ${s}: ${e}`);
    // Published on each node's own address (no routing mesh: it needs IPVS): one replica per node.
    if (!eligible) return msgs;
    if (this.replicas !== undefined && this.replicas > eligible) {
      msgs.push(`service ${s} wants ${this.replicas} replicas, but a swarm node runs at most one replica of a service (its published port) and ${eligible} node(s) are eligible; lower \`replicas\`, or add hosts`);
    } else if (this.replicas !== undefined && this.maxUnavailable === 0 && this.replicas + this.maxSurge > eligible) {
      msgs.push(`service ${s}: a roll with \`maxUnavailable: 0\` starts ${this.maxSurge} new replica(s) before stopping old ones, but with ${this.replicas} replicas on ${eligible} eligible node(s) (one per node) there is no free node for them; set \`rollout.maxUnavailable\` to 1 or more, lower \`replicas\`, or add hosts`);
    }
    return msgs;
  }

  /** @internal The service in the scheduler's vocabulary. */
  _schedulerSpec(): Record<string, unknown> & { name: string } {
    const pl = this.props.placement ?? {};
    return {
      name: this.serviceName,
      ...(this.global ? { global: true } : { replicas: this.replicas }),
      ...(pl.nodeSelector ? { nodeSelector: { ...pl.nodeSelector } } : {}),
      ...(pl.matchExpressions ? { matchExpressions: pl.matchExpressions.map((e) => ({ key: e.key, operator: e.operator, values: [...(e.values ?? [])] })) } : {}),
      ...(pl.spread ? { spread: { ...pl.spread } } : {}),
      ...(pl.pinned ? { pinned: pl.pinned.map((h) => h.node.id) } : {}),
      ...(pl.colocateWith !== undefined ? { colocateWith: typeof pl.colocateWith === "string" ? pl.colocateWith : pl.colocateWith.serviceName } : {}),
      ...(pl.resources ? { resources: { ...pl.resources } } : {}),
    };
  }

  /** What the service's resource waits for: its nodes, their runtimes, the cluster's other resources (its control plane), its image. */
  private dependencies(): IConstruct[] {
    const cluster = this.cluster;
    const image = imageOf(this.props.image);
    return [
      ...cluster.nodes.flatMap((n) => [n.host, ...(n.runtime ? [n.runtime] : [])]),
      ...cluster.node.findAll().filter((c) => isResourceConstruct(c) && !Service.isService(c)),
      ...(image ? [image] : []),
    ];
  }

  private swarmSpec(): ResourceSpec {
    return swarmSpecOf(this, this.props, this.dependencies());
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    if (this.cluster.orchestrator === "swarm") return this.swarmSpec();
    const p = this.props;
    const cluster = this.cluster;
    const peers = this.peers();
    const names = peers.map((s) => s.serviceName);
    const cert = this.cert!;
    const cp = cluster.controlPlaneHosts[0];
    const hc = p.healthCheck;
    const nodes: Record<string, unknown> = {};
    for (const n of cluster.nodes) {
      nodes[n.host.node.id] = {
        connection: n.host.connection,
        address: n.host.address,
        labels: { ...n.labels },
        engine: n.runtime?.engine ?? "docker",
        ...(n.capacity ? { capacity: { ...n.capacity } } : {}),
        // The service is planned after this run's check of the host; a refused one takes no replica.
        ...(Attestation.of(n.host) ? { attested: Attestation.of(n.host)!._admission } : {}),
      };
    }
    const deps = this.dependencies();
    return {
      type: "drove:index:Service",
      dependsOn: deps,
      outputs: ["endpoints"],
      props: {
        cluster: this.clusterName,
        name: this.serviceName,
        nodes,
        etcd: {
          connection: cp?.connection,
          endpoints: cluster.etcdEndpoints,
          caPem: cluster.caCertPem,
          certPem: cert.certPem,
          keyPem: pulumi.secret(cert.keyPem),
        },
        image: p.image,
        ...(p.command !== undefined ? { command: [...p.command] } : {}),
        env: { ...(p.env ?? {}) },
        secrets: pulumi.secret(pulumi.output({ ...(p.secrets ?? {}) })),
        ports: this.ports.map((x) => ({ ...x })),
        ...(hc ? { healthCheck: "http" in hc ? { http: { ...hc.http } } : "tcp" in hc ? { tcp: { ...hc.tcp } } : { command: [...hc.command] } } : {}),
        health: { interval: hc?.interval ?? 2, timeout: hc?.timeout ?? 2, retries: hc?.retries ?? 3 },
        restart: p.restart ?? "always",
        rollout: { maxSurge: this.maxSurge, maxUnavailable: this.maxUnavailable },
        scheduling: { services: peers.map((s) => s._schedulerSpec()) },
        vip: allocateVips(this.clusterName, names)[this.serviceName],
        portBlock: allocatePortBlocks(this.clusterName, names)[this.serviceName],
      },
    };
  }
}

/** The same service for Docker Swarm (`drove:index:SwarmService`, providers/swarm). */
function swarmSpecOf(svc: Service, p: ServiceProps, deps: IConstruct[]): ResourceSpec {
  const cluster = svc.cluster;
  const names = cluster.node.findAll().filter(Service.isService).map((x) => x.serviceName);
  const managers: Record<string, unknown> = {};
  for (const h of cluster.controlPlaneHosts) managers[h.node.id] = { connection: h.connection };
  const nodes: Record<string, unknown> = {};
  for (const n of cluster.nodes) nodes[n.host.node.id] = { connection: n.host.connection, address: n.host.address };
  const hc = p.healthCheck;
  return {
    type: "drove:index:SwarmService",
    dependsOn: deps,
    outputs: ["secretNames", "running"],
    props: {
      cluster: svc.clusterName,
      name: svc.serviceName,
      managers,
      nodes,
      image: p.image,
      ...(p.command !== undefined ? { command: [...p.command] } : {}),
      env: { ...(p.env ?? {}) },
      secrets: pulumi.secret(pulumi.output({ ...(p.secrets ?? {}) })),
      ports: svc.ports.map((x) => ({ ...x })),
      ...(hc ? { healthCheck: "http" in hc ? { http: { ...hc.http } } : "tcp" in hc ? { tcp: { ...hc.tcp } } : { command: [...hc.command] } } : {}),
      health: { interval: hc?.interval ?? 2, timeout: hc?.timeout ?? 2, retries: hc?.retries ?? 3 },
      restart: p.restart ?? "always",
      ...(svc.global ? { global: true } : { replicas: svc.replicas }),
      constraints: constraintsFor(svc._schedulerSpec() as SwarmPlacement).constraints,
      rollout: { maxSurge: svc.maxSurge, maxUnavailable: svc.maxUnavailable },
      vip: allocateVips(svc.clusterName, names)[svc.serviceName],
      portBlock: allocatePortBlocks(svc.clusterName, names)[svc.serviceName],
    },
  };
}

function spreadMax(pl: PlacementProps): number | undefined {
  return pl.spread?.maxPerNode;
}
