/**
 * The checks every kind of cluster service shares, whichever orchestrator
 * runs it (drove's own with etcd, or Docker Swarm): its identity, image,
 * ports, health and restart policy, rollout, and a connection per node. Each
 * kind's `check` calls {@link checkServiceSpec} first and adds its own.
 */
import { checkConnection, isUnknown, type Failures } from "../common";
import type { SshTarget } from "../../src/ssh";
import type { RestartPolicy } from "../container/operations";
import type { HealthCheck, HealthTiming, ServicePort } from "./operations";

/** A service or cluster name: a DNS label short enough for the names drove derives from it. */
export const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/;
export const RESTART_POLICIES: readonly RestartPolicy[] = ["no", "always", "on-failure", "unless-stopped"];

/** A number given as input, or its default when absent. */
export function num(v: unknown, dflt: number): number {
  return v === undefined ? dflt : Number(v);
}

/** What both kinds of service take the same way, defaults applied. */
export interface ServiceSpec<N> {
  readonly cluster: string;
  readonly name: string;
  /** By node name (a record, not a list: secrets inside keep their paths). Every node runs the service's proxy, and may run replicas. */
  readonly nodes: Record<string, N>;
  readonly image: string;
  readonly command?: string[];
  readonly env: Record<string, string>;
  /** File name -> content, mounted read-only at /run/secrets/<name> (mode 0400). */
  readonly secrets: Record<string, string>;
  readonly ports: ServicePort[];
  readonly healthCheck?: HealthCheck;
  readonly health: HealthTiming;
  readonly restart: RestartPolicy;
  readonly rollout: { maxSurge: number; maxUnavailable: number };
  readonly vip: string;
  readonly portBlock: number;
}

/**
 * Checks the shared part of a service's inputs, pushing one failure per wrong
 * property (named, with what was provided), and returns it with defaults.
 */
export function checkServiceSpec<N extends { connection: SshTarget }>(news: Record<string, unknown>, failures: Failures): ServiceSpec<N> {
  const name = news.name as string;
  const cluster = news.cluster as string;
  if (typeof name !== "string" || !SERVICE_NAME.test(name)) failures.push({ property: "name", reason: `\`name\` must be lower-case letters, digits and '-' (a DNS label, up to 42), but ${JSON.stringify(news.name)} was provided` });
  if (typeof cluster !== "string" || !SERVICE_NAME.test(cluster)) failures.push({ property: "cluster", reason: `\`cluster\` must be lower-case letters, digits and '-', but ${JSON.stringify(news.cluster)} was provided` });
  const nodes = (news.nodes ?? {}) as Record<string, N>;
  if (!Object.keys(nodes).length) failures.push({ property: "nodes", reason: "the cluster has no node: add hosts with cluster.addHost(host)" });
  for (const [n, node] of Object.entries(nodes)) checkConnection(node.connection, failures, `nodes.${n}.connection`);
  if (!isUnknown(news.image) && (typeof news.image !== "string" || !/^[a-z0-9][a-z0-9._\-/:@]*$/.test(news.image))) {
    failures.push({ property: "image", reason: `\`image\` must be an image reference like registry:5000/web@sha256:..., but ${JSON.stringify(news.image)} was provided` });
  }
  const ports = ((news.ports ?? []) as Partial<ServicePort>[]).map((p) => ({ port: Number(p.port), targetPort: Number(p.targetPort), protocol: "tcp" as const }));
  if (!ports.length) failures.push({ property: "ports", reason: "a service needs at least one port: ports: [{ port: 80, targetPort: 8080 }]" });
  const health = (news.health ?? {}) as Partial<HealthTiming>;
  const rollout = (news.rollout ?? {}) as Partial<ServiceSpec<N>["rollout"]>;
  const restart = (news.restart ?? "always") as RestartPolicy;
  if (!RESTART_POLICIES.includes(restart)) failures.push({ property: "restart", reason: `\`restart\` must be one of ${RESTART_POLICIES.join(", ")}, but ${JSON.stringify(news.restart)} was provided` });
  return {
    cluster,
    name,
    nodes,
    image: news.image as string,
    ...(news.command !== undefined ? { command: news.command as string[] } : {}),
    env: (news.env ?? {}) as Record<string, string>,
    secrets: (news.secrets ?? {}) as Record<string, string>,
    ports,
    ...(news.healthCheck !== undefined ? { healthCheck: news.healthCheck as HealthCheck } : {}),
    health: { interval: num(health.interval, 2), timeout: num(health.timeout, 2), retries: num(health.retries, 3) },
    restart,
    rollout: { maxSurge: num(rollout.maxSurge, 1), maxUnavailable: num(rollout.maxUnavailable, 1) },
    vip: news.vip as string,
    portBlock: Number(news.portBlock),
  };
}
