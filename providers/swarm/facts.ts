/**
 * Read-only probes of Docker Swarm, each next to its parser: a node's place in
 * a swarm (`docker info`), the swarm's nodes (`docker node ls`), its join tokens,
 * a service (`docker service inspect`), its tasks (`docker service ps`) and its
 * secrets (`docker secret ls`), all through the Engine API on the node's socket.
 */
import type { ShellCommand } from "../../src/quote";
import { dockerApi, filtersQuery, parseApiAnswer, parseInfo, parseNodes, parseService, parseTasks, SERVICE_LABEL, swarmServiceName, type NodeSwarmFact, type SwarmNodeEntry, type SwarmServiceLive, type TaskFact } from "./operations";

export type { NodeSwarmFact, SwarmNodeEntry, SwarmServiceLive, TaskFact };

/** An answer with an error status: the daemon's message (`docker` not running, not a manager, ...). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function ok(stdout: string, what: string): unknown {
  const a = parseApiAnswer(stdout);
  if (a.status >= 400) throw new ApiError(a.status, `${what}: ${a.message}`);
  return a.body;
}

export const infoProbe = (): ShellCommand => dockerApi("GET", "/info");
export function parseInfoProbe(stdout: string): NodeSwarmFact {
  return parseInfo(ok(stdout, "GET /info"));
}

/** Only a manager answers. */
export const nodesProbe = (): ShellCommand => dockerApi("GET", "/nodes");
export function parseNodesProbe(stdout: string): SwarmNodeEntry[] {
  return parseNodes(ok(stdout, "GET /nodes"));
}

/** The swarm's id and join tokens (secrets: kept as such in state). Only a manager answers. */
export const swarmProbe = (): ShellCommand => dockerApi("GET", "/swarm");
export function parseSwarmProbe(stdout: string): { id: string; workerToken: string; managerToken: string } {
  const b = ok(stdout, "GET /swarm") as { ID?: string; JoinTokens?: { Worker?: string; Manager?: string } };
  return { id: String(b.ID ?? ""), workerToken: String(b.JoinTokens?.Worker ?? ""), managerToken: String(b.JoinTokens?.Manager ?? "") };
}

export const serviceProbe = (cluster: string, service: string): ShellCommand => dockerApi("GET", `/services/${swarmServiceName(cluster, service)}`);
/** Undefined when swarm has no such service. */
export function parseServiceProbe(stdout: string): SwarmServiceLive | undefined {
  const a = parseApiAnswer(stdout);
  if (a.status === 404) return undefined;
  if (a.status >= 400) throw new ApiError(a.status, `GET /services: ${a.message}`);
  return parseService(a.body);
}

export const tasksProbe = (cluster: string, service: string): ShellCommand => dockerApi("GET", `/tasks?${filtersQuery({ service: [swarmServiceName(cluster, service)] })}`);
export function parseTasksProbe(stdout: string): TaskFact[] {
  return parseTasks(ok(stdout, "GET /tasks"));
}

export const secretsProbe = (cluster: string, service: string): ShellCommand => dockerApi("GET", `/secrets?${filtersQuery({ label: [`${SERVICE_LABEL}=${cluster}/${service}`] })}`);
/** The service's secrets: name -> id. */
export function parseSecretsProbe(stdout: string): Record<string, string> {
  const b = ok(stdout, "GET /secrets");
  if (!Array.isArray(b)) throw new Error("unexpected answer from GET /secrets: not a list");
  return Object.fromEntries(b.map((s: { ID?: string; Spec?: { Name?: string } }) => [String(s.Spec?.Name ?? ""), String(s.ID ?? "")]));
}
