/** Read-only probes of a service's share of one node, each next to its parser. */
import { sh, type ShellCommand } from "../../src/quote";
import type { CliEngine } from "../container/facts";
import { haproxyFile, hostsMarker, type HealthCheck } from "./operations";

export const SERVICE_LABEL = "drove.service";
export const SLOT_LABEL = "drove.slot";
export const VERSION_LABEL = "drove.version";

/** A replica container as its engine reports it. */
export interface ReplicaFact {
  readonly name: string;
  readonly slot: number;
  readonly version: string;
  readonly running: boolean;
  readonly image: string;
  /** The container resource instance (see providers/container), for its removal. */
  readonly instance: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface NodeServiceFact {
  readonly replicas: readonly ReplicaFact[];
  /** The virtual IP is on `lo`. */
  readonly vip: boolean;
  /** The HAProxy file's content, or undefined when absent. */
  readonly proxyConfig: string | undefined;
  /** The /etc/hosts block's lines, or undefined when absent. */
  readonly hostsBlock: string | undefined;
  readonly haproxyActive: boolean;
}

const SEP = "----drove-service-fact----";

export function nodeServiceFactCommand(p: { engine: CliEngine; cluster: string; service: string; vip: string }): ShellCommand {
  const m = hostsMarker(p.cluster, p.service);
  const file = haproxyFile(p.cluster, p.service);
  return sh`ids=$(${p.engine} ps -aq --filter ${`label=${SERVICE_LABEL}=${p.cluster}/${p.service}`} 2>/dev/null); if [ -n "$ids" ]; then ${p.engine} container inspect $ids; else echo '[]'; fi; echo ${SEP}; ip -o addr show dev lo | grep -cF ${` ${p.vip}/32 `} || true; echo ${SEP}; if [ -f ${file} ]; then cat ${file}; else echo absent; fi; echo ${SEP}; awk -v b=${`# BEGIN ${m}`} -v e=${`# END ${m}`} '$0==b{s=1;f=1;next} $0==e{s=0;next} s{print} END{if(!f)print "absent"}' /etc/hosts; echo ${SEP}; systemctl is-active haproxy 2>/dev/null || true`;
}

interface InspectJson {
  Name?: string;
  Config?: { Image?: string; Labels?: Record<string, string> | null };
  ImageName?: string;
  State?: { Running?: boolean; Restarting?: boolean };
}

export function parseNodeServiceFact(stdout: string): NodeServiceFact {
  const parts = stdout.split(`${SEP}\n`);
  if (parts.length < 5) throw new Error(`unexpected answer from the service probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  const [inspect, vip, cfg, hosts, active] = parts;
  let doc: InspectJson[];
  try {
    doc = JSON.parse(inspect.trim() || "[]");
  } catch {
    throw new Error(`unexpected answer from the container probe: ${JSON.stringify(inspect.slice(0, 200))}`);
  }
  const replicas: ReplicaFact[] = (doc ?? []).map((c) => {
    const labels = c.Config?.Labels ?? {};
    return {
      name: (c.Name ?? "").replace(/^\//, ""),
      slot: Number(labels[SLOT_LABEL] ?? -1),
      version: labels[VERSION_LABEL] ?? "",
      running: c.State?.Running === true && c.State?.Restarting !== true,
      image: c.Config?.Image ?? c.ImageName ?? "",
      instance: labels["drove.instance"] ?? "",
      labels,
    };
  });
  replicas.sort((a, b) => a.slot - b.slot);
  return {
    replicas,
    vip: Number(vip.trim() || "0") > 0,
    proxyConfig: cfg === "absent\n" ? undefined : cfg,
    hostsBlock: hosts === "absent\n" ? undefined : hosts,
    haproxyActive: active.trim() === "active",
  };
}

/**
 * A health probe run on the replica's node: HTTP and TCP against its host port,
 * a command inside the container. Prints what it saw; exits non-zero when unhealthy.
 */
export function healthProbeCommand(p: { engine: CliEngine; name: string; check: HealthCheck | undefined; hostPortOf: (containerPort: number) => number | undefined; timeout: number }): ShellCommand {
  const c = p.check;
  if (!c) return sh`[ "$(${p.engine} container inspect --format '{{.State.Running}}' ${p.name} 2>&1)" = true ] || { echo "container ${p.name} is not running"; exit 1; }`;
  if ("http" in c) {
    const port = p.hostPortOf(c.http.port);
    return sh`curl -fsS -o /dev/null -m ${p.timeout} ${`http://127.0.0.1:${port}${c.http.path}`} 2>&1`;
  }
  if ("tcp" in c) {
    const port = p.hostPortOf(c.tcp.port);
    return sh`timeout ${p.timeout} bash -c ${`exec 3<>/dev/tcp/127.0.0.1/${port}`} 2>&1 && echo open`;
  }
  return sh`timeout ${p.timeout} ${p.engine} exec ${p.name} ${[...c.command]} 2>&1`;
}
