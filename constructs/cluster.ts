import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { clientUrl } from "../providers/etcd/operations";
import { NODE_LABEL } from "../providers/swarm/operations";
import { CertificateAuthority, type Certificate } from "./certificate";
import type { ContainerRuntime } from "./container-runtime";
import { Host } from "./host";
import { Package } from "./package";
import { Service, type ServiceProps } from "./service";
import { freeId } from "../src/app";

export { ETCD_KEY_PREFIX, clusterKeyPrefix, servicesKeyPrefix, serviceEndpointsPrefix, serviceEndpointKey } from "../providers/etcd/keys";

/** The control plane: an etcd cluster drove runs (and drove's own scheduler), or Docker Swarm (swarm's scheduler and store). */
export type Orchestrator = "etcd" | "swarm";

export interface ClusterProps {
  /**
   * The hosts that run the control plane (etcd members): 1, 3 or 5, each also
   * a node of the cluster (`cluster.addHost(host)`). Adding or removing one
   * later changes etcd's membership one member at a time; it never
   * re-initialises the cluster.
   */
  readonly controlPlane: readonly Host[];
  /**
   * `"etcd"`: drove places replicas itself (at plan time) and keeps endpoints in
   * an etcd it runs on the control plane. `"swarm"`: a Docker Swarm (the control
   * plane its managers, every other node a worker, host labels as node labels)
   * schedules the same services and reschedules them by itself; every node
   * needs a Docker runtime, and runs at most one replica of each service.
   * @default "etcd"
   */
  readonly orchestrator?: Orchestrator;
  /**
   * Install Debian's `etcd-server` and `etcd-client` on the control-plane
   * hosts (a host that already declares them keeps its own declaration).
   * @default true
   */
  readonly installPackages?: boolean;
}

export interface AddHostOptions {
  /** Labels for placement (`zone`, `disk`, ...), merged over the host's own labels. @default {} */
  readonly labels?: Readonly<Record<string, string>>;
  /** The runtime that runs the cluster's containers on this host. @default - none (the host runs no replicas) */
  readonly runtime?: ContainerRuntime;
  /** What the host offers to the scheduler (`cpu`, `memory`, ...), counted against services' `placement.resources`. @default - unlimited */
  readonly capacity?: Readonly<Record<string, number>>;
}

/** A host of a cluster: a copy, changing it changes nothing. */
export interface ClusterNode {
  readonly host: Host;
  readonly labels: Readonly<Record<string, string>>;
  readonly runtime?: ContainerRuntime;
  readonly capacity?: Readonly<Record<string, number>>;
}

const CLUSTER = Symbol.for("drove.cluster");
const NAME = /^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/**
 * A cluster of hosts with an etcd control plane drove installs and
 * bootstraps over SSH: TLS between members and for clients, from the
 * cluster's own certificate authority, client certificates required.
 * Hosts join with labels; services (next) are placed on them.
 *
 * @example
 * const cluster = new Cluster(app, "prod", { controlPlane: [h1, h2, h3] });
 * for (const h of [h1, h2, h3]) cluster.addHost(h, { labels: { zone: "a" } });
 * export const etcd = cluster.etcdEndpoints;
 */
export class Cluster extends Construct {
  static isCluster(x: unknown): x is Cluster {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[CLUSTER] === true;
  }

  /** The cluster's name (its id): used in etcd keys and DNS names. */
  readonly clusterName: string;
  readonly orchestrator: Orchestrator;
  /** The etcd control plane (`drove:index:EtcdCluster`), or the swarm (`drove:index:Swarm`). */
  readonly controlPlane: EtcdControlPlane | SwarmControlPlane;
  private readonly _ca: CertificateAuthority | undefined;
  private readonly _controlPlane: readonly Host[];
  private readonly _nodes: ClusterNode[] = [];
  private readonly clientCerts = new Map<string, Certificate>();

  constructor(scope: Construct, id: string, props: ClusterProps) {
    super(scope, freeId(scope, id));
    Object.defineProperty(this, CLUSTER, { value: true });
    const where = this.node.path;
    const errors: string[] = [];
    if (!NAME.test(id)) errors.push(`${where}: the cluster's id is its name in etcd keys and DNS names: lower-case letters, digits and '-', up to 42, but ${JSON.stringify(id)} was provided`);
    const cp = props?.controlPlane ?? [];
    if (!Array.isArray(cp) || ![1, 3, 5].includes(cp.length)) {
      errors.push(`${where}: \`controlPlane\` must have 1, 3 or 5 hosts, but ${Array.isArray(cp) ? cp.length : 0} ${Array.isArray(cp) && cp.length === 1 ? "was" : "were"} provided`);
    }
    const seen = new Set<Host>();
    for (const h of Array.isArray(cp) ? cp : []) {
      if (!Host.isHost(h)) errors.push(`${where}: \`controlPlane\` must list Host constructs, but ${String(h)} was provided`);
      else if (seen.has(h)) errors.push(`${where}: host ${h.node.path} appears twice in \`controlPlane\`; list each host once`);
      seen.add(h);
    }
    const orchestrator = props?.orchestrator ?? "etcd";
    if (orchestrator !== "etcd" && orchestrator !== "swarm") errors.push(`${where}: \`orchestrator\` must be "etcd" or "swarm", but ${JSON.stringify(orchestrator)} was provided`);
    if (errors.length) throw new ValidationError(errors);
    this.clusterName = id;
    this.orchestrator = orchestrator;
    this._controlPlane = [...cp];
    if (orchestrator === "swarm") {
      this._ca = undefined;
      this.controlPlane = new SwarmControlPlane(this, "Resource", this);
      this.node.addValidation({ validate: () => this.validateTree() });
      return;
    }
    this._ca = new CertificateAuthority(this, "ca", { commonName: `drove cluster ${id} etcd CA` });
    if (props.installPackages ?? true) {
      for (const h of this._controlPlane) {
        for (const p of ["etcd-server", "etcd-client"]) {
          const declared = h.node.findAll().some((c) => c instanceof Package && c.packageName === p && Host.of(c) === h);
          if (!declared) h.addPackage(p);
        }
      }
    }
    this.controlPlane = new EtcdControlPlane(this, "Resource", this);
    this.node.addValidation({ validate: () => this.validateTree() });
  }

  /** Joins a host to the cluster, with labels merged over the host's own; returns the node (a copy). */
  addHost(host: Host, options: AddHostOptions = {}): ClusterNode {
    const where = this.node.path;
    const errors: string[] = [];
    if (!Host.isHost(host)) throw new ValidationError([`${where}: addHost() needs a Host construct, but ${String(host)} was provided`]);
    if (this._nodes.some((n) => n.host === host)) errors.push(`${where}: host ${host.node.path} was already added to the cluster; add each host once`);
    for (const [k, v] of Object.entries(options.labels ?? {})) {
      if (!LABEL_KEY.test(k)) errors.push(`${where}: label key ${JSON.stringify(k)} (for ${host.node.path}) must be letters, digits, '-', '_' or '.', at most 63, with an optional DNS prefix`);
      if (typeof v !== "string" || !LABEL_VALUE.test(v)) errors.push(`${where}: label ${k} (for ${host.node.path}) has value ${JSON.stringify(v)}, which must be letters, digits, '-', '_' or '.', at most 63`);
    }
    for (const [k, v] of Object.entries(options.capacity ?? {})) {
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) errors.push(`${where}: capacity ${k} of ${host.node.path} must be a number of 0 or more, but ${JSON.stringify(v)} was provided`);
    }
    if (errors.length) throw new ValidationError(errors);
    const node: ClusterNode = {
      host,
      labels: { ...host.labels, ...(options.labels ?? {}) },
      ...(options.runtime ? { runtime: options.runtime } : {}),
      ...(options.capacity ? { capacity: { ...options.capacity } } : {}),
    };
    this._nodes.push(node);
    return copyNode(node);
  }

  /** The cluster's nodes (copies), in the order they were added. */
  get nodes(): readonly ClusterNode[] {
    return this._nodes.map(copyNode);
  }

  /** The hosts that run etcd (a copy). */
  get controlPlaneHosts(): readonly Host[] {
    return [...this._controlPlane];
  }

  /** The cluster's own certificate authority (etcd clusters only): signs its members' and clients' certificates. */
  get ca(): CertificateAuthority {
    if (!this._ca) throw new ValidationError([`${this.node.path}: a swarm cluster has no etcd and no certificate authority of drove's; swarm keeps its own`]);
    return this._ca;
  }

  /** `https://<address>:2379` per control-plane host. */
  get etcdEndpoints(): pulumi.Output<string[]> {
    if (this.orchestrator === "swarm") throw new ValidationError([`${this.node.path}: a swarm cluster has no etcd endpoints; swarm keeps the cluster's state`]);
    return pulumi.all(this._controlPlane.map((h) => pulumi.output(h.address))).apply((as) => as.map((a) => clientUrl(a)));
  }

  /** The CA certificate clients verify the members with (PEM). */
  get caCertPem(): pulumi.Output<string> {
    return this.ca.certPem;
  }

  /** Runs a service on the cluster's nodes: `new Service(this, id, props)` (constructs/service.ts). */
  addService(id: string, props: ServiceProps): Service {
    return new Service(this, id, props);
  }

  /**
   * A client certificate for etcd, signed by the cluster's CA (one per id;
   * asking twice returns the same one). Its key is a Pulumi secret. Ask for
   * it while building the tree (a constructor), not while it renders.
   */
  clientCertificate(id: string): Certificate {
    const existing = this.clientCerts.get(id);
    if (existing) return existing;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(id)) throw new ValidationError([`${this.node.path}: a client certificate's id must be letters, digits, '-', '_' or '.', but ${JSON.stringify(id)} was provided`]);
    const cert = this.ca.issue(`client-${id}`, { commonName: id, usages: ["client"] });
    this.clientCerts.set(id, cert);
    return cert;
  }

  private validateTree(): string[] {
    const msgs: string[] = [];
    // Certificates are resources: one asked for while the tree renders would never be made.
    // Issue the services' client certificates now, before synthesis collects the resources.
    for (const c of this.orchestrator === "swarm" ? [] : this.node.findAll()) {
      const name = (c as { serviceName?: unknown }).serviceName;
      if ((c as unknown as Record<symbol, unknown>)[Symbol.for("drove.service")] === true && typeof name === "string") this.clientCertificate(`service-${name}`);
    }
    for (const h of this._controlPlane) {
      if (!this._nodes.some((n) => n.host === h)) msgs.push(`control-plane host ${h.node.path} is not a node of the cluster; add it with cluster.addHost(${h.node.id})`);
    }
    const others = this.node.root.node.findAll().filter((c): c is Cluster => Cluster.isCluster(c) && c !== this);
    for (const n of this._nodes) {
      const also = others.filter((o) => o._nodes.some((x) => x.host === n.host) || o._controlPlane.includes(n.host));
      if (also.length) msgs.push(`host ${n.host.node.path} is also in cluster ${also.map((o) => o.node.path).join(", ")}; a host belongs to one cluster`);
    }
    for (const h of this._controlPlane) {
      if (this._nodes.some((n) => n.host === h)) continue;
      const also = others.filter((o) => o._nodes.some((x) => x.host === h) || o._controlPlane.includes(h));
      if (also.length) msgs.push(`host ${h.node.path} is also in cluster ${also.map((o) => o.node.path).join(", ")}; a host belongs to one cluster`);
    }
    if (this.orchestrator === "swarm") {
      for (const n of this._nodes) {
        if (n.runtime?.engine !== "docker") msgs.push(`node ${n.host.node.id} needs Docker to be a swarm node: cluster.addHost(${n.host.node.id}, { runtime: ContainerRuntime.docker(${n.host.node.id}) })${n.runtime ? `, not ${n.runtime.engine}` : ""}`);
        if (n.labels[NODE_LABEL] !== undefined) msgs.push(`node ${n.host.node.id}: the label ${NODE_LABEL} is drove's own in a swarm (it names the node for \`pinned\`); use another key`);
      }
    }
    const ids = this._controlPlane.map((h) => h.node.id);
    const dup = ids.filter((x, i) => ids.indexOf(x) !== i);
    if (dup.length) msgs.push(`control-plane hosts must have distinct ids (they name etcd members), but ${[...new Set(dup)].join(", ")} appear more than once`);
    return msgs;
  }
}

function copyNode(n: ClusterNode): ClusterNode {
  return { host: n.host, labels: { ...n.labels }, ...(n.runtime ? { runtime: n.runtime } : {}), ...(n.capacity ? { capacity: { ...n.capacity } } : {}) };
}

/** The etcd members of a cluster: one `drove:index:EtcdCluster` resource, so that membership changes happen in order. */
export class EtcdControlPlane extends Construct implements IResourceConstruct {
  private readonly cluster: Cluster;
  private readonly memberCerts = new Map<Host, Certificate>();
  /** The certificate drove itself (and a root shell on a member) talks to etcd with. */
  private readonly admin: Certificate;

  constructor(scope: Construct, id: string, cluster: Cluster) {
    super(scope, freeId(scope, id));
    markResource(this);
    this.cluster = cluster;
    this.admin = cluster.clientCertificate("drove");
    for (const h of cluster.controlPlaneHosts) {
      this.memberCerts.set(
        h,
        cluster.ca.issue(`member-${h.node.id}`, {
          commonName: h.node.id,
          ipAddresses: [h.address, "127.0.0.1"],
          dnsNames: ["localhost", h.node.id, ...(h.hostname ? [h.hostname] : [])],
          usages: ["server", "client"],
        }),
      );
    }
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    const hosts = this.cluster.controlPlaneHosts;
    const admin = this.admin;
    const members: Record<string, unknown> = {};
    const keys: Record<string, pulumi.Input<string>> = {};
    for (const h of hosts) {
      const cert = this.memberCerts.get(h)!;
      members[h.node.id] = { connection: h.connection, address: h.address, certPem: cert.certPem };
      keys[h.node.id] = cert.keyPem;
    }
    const pkgs = hosts.flatMap((h) => h.node.findAll().filter((c) => c instanceof Package && (c.packageName === "etcd-server" || c.packageName === "etcd-client") && Host.of(c) === h));
    return {
      type: "drove:index:EtcdCluster",
      dependsOn: [...hosts, ...pkgs, this.cluster.ca, ...this.memberCerts.values(), admin],
      props: {
        cluster: this.cluster.clusterName,
        caPem: this.cluster.ca.certPem,
        clientCertPem: admin.certPem,
        clientKeyPem: pulumi.secret(admin.keyPem),
        members,
        memberKeys: pulumi.secret(pulumi.output(keys)),
      },
      outputs: ["endpoints", "memberIds"],
    };
  }
}

/**
 * The swarm of a cluster: one `drove:index:Swarm` resource (init, joins, roles
 * and labels, in order). The control-plane hosts are its managers, the first
 * one initialising it; every other node joins as a worker.
 */
export class SwarmControlPlane extends Construct implements IResourceConstruct {
  private readonly cluster: Cluster;

  constructor(scope: Construct, id: string, cluster: Cluster) {
    super(scope, freeId(scope, id));
    markResource(this);
    this.cluster = cluster;
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    const managers = this.cluster.controlPlaneHosts.map((h) => h.node.id);
    const nodes: Record<string, unknown> = {};
    for (const n of this.cluster.nodes) {
      nodes[n.host.node.id] = { connection: n.host.connection, address: n.host.address, role: managers.includes(n.host.node.id) ? "manager" : "worker", labels: { ...n.labels } };
    }
    return {
      type: "drove:index:Swarm",
      dependsOn: this.cluster.nodes.flatMap((n) => [n.host, ...(n.runtime ? [n.runtime] : [])]),
      props: { cluster: this.cluster.clusterName, managers, nodes },
      outputs: ["swarmId", "nodeIds", "joinTokens"],
    };
  }
}
