/**
 * containerd on its own, without Docker: images pulled and containers run
 * with `ctr` (Debian bookworm ships containerd 1.6 and ctr; nerdctl is not
 * packaged), everything in drove's own containerd namespace `drove`.
 *
 * Decisions, each checked on the lab's containerd 1.6.20:
 *
 * - Images: `ctr images pull --hosts-dir /etc/containerd/certs.d`, so the
 *   registry trust and mirrors written there (by the Registry construct, or
 *   by hand) apply. `--plain-http` is passed only for a registry whose
 *   `certs.d/<host>/hosts.toml` names an `http://` server or host: a fact
 *   read from the machine, never a global switch.
 * - Network: the host's (`--net-host`). containerd maps no ports without CNI,
 *   and the CNI plugins (containernetworking-plugins) are not on the
 *   machines; so, as with the systemd engine, a published host port must
 *   equal the container's port (checked at construction and in `check`).
 *   drove records the published ports in the `drove.ports` label so that
 *   `read` can show them.
 * - Env values (secrets among them) reach `ctr run --env-file /dev/stdin`
 *   on stdin: never a command line, never a file on disk.
 * - Output: `--log-uri file://...` (one append-only file per container under
 *   /var/log/drove/containerd). Without it, `ctr run -d` wires the task to
 *   FIFOs of a ctr that has exited. The crash report reads its last lines.
 * - `--cpu-shares 0`: ctr's default of 1024 makes runc write `cpu.weight`,
 *   which a host that delegates no cpu controller (the lab's machines) does
 *   not have; 0 sets no weight, as Docker and Podman do by default.
 * - Restart: containerd's own restart monitor (the `restart` plugin), driven
 *   by the container labels `containerd.io/restart.status` (kept `running`)
 *   and `containerd.io/restart.loguri`. In 1.6 it ignores
 *   `containerd.io/restart.policy`: it restarts every task whose status label
 *   says `running`, whatever its exit status (seen in the lab: policies
 *   `no` and `on-failure` with `exit 0` were restarted too). So `always` and
 *   `unless-stopped` arm the monitor, `no` leaves it out, and `on-failure` is
 *   refused for this engine. The monitor polls every 10 s; drove arms it
 *   only after it has seen the new task running, so a container that exits
 *   at once is reported with its exit status rather than restarted behind
 *   drove's back.
 */
import { parse as parseToml } from "smol-toml";
import { and, sh, type ShellCommand } from "../../src/quote";
import type { Step } from "../file/operations";
import type { ContainerFact, PortMapping, VolumeMount } from "./facts";
import { belongsToAnother, envFile, INSTANCE_LABEL, SPEC_LABEL, specDigest, type ContainerDesired } from "./operations";

/** drove's own containerd namespace: every container and image it makes lives there. */
export const NAMESPACE = "drove";
export const CERTS_DIR = "/etc/containerd/certs.d";
export const LOG_DIR = "/var/log/drove/containerd";
export const STATUS_LABEL = "containerd.io/restart.status";
export const POLICY_LABEL = "containerd.io/restart.policy";
export const LOGURI_LABEL = "containerd.io/restart.loguri";
/** The published ports (host network: nothing else on the machine records them). */
export const PORTS_LABEL = "drove.ports";

/** Labels a program may not set on a containerd container: drove's and the restart monitor's. */
export function reservedLabel(key: string): boolean {
  return key === SPEC_LABEL || key === INSTANCE_LABEL || key === PORTS_LABEL || key.startsWith("containerd.io/restart.");
}

const ctr = sh`ctr -n ${NAMESPACE}`;

export function logPath(name: string): string {
  return `${LOG_DIR}/${name}.log`;
}
const logUri = (name: string) => `file://${logPath(name)}`;

/** The registry host of an image reference, as certs.d names its folders (`docker.io` when none is given). */
export function registryHost(image: string): string {
  const first = image.split("/")[0];
  if (image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return first;
  return "docker.io";
}

// ---- facts --------------------------------------------------------------

/** What certs.d says about the image's registry. */
export interface RegistryTrust {
  /** The registry speaks plain HTTP (its hosts.toml names an http:// server or host). */
  readonly plainHttp: boolean;
}

export function registryTrustCommand(image: string): ShellCommand {
  return sh`cat ${`${CERTS_DIR}/${registryHost(image)}/hosts.toml`} 2>/dev/null || true`;
}

export function parseRegistryTrust(text: string, image: string): RegistryTrust {
  if (text.trim() === "") return { plainHttp: false };
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${CERTS_DIR}/${registryHost(image)}/hosts.toml is not valid TOML (${(err as Error).message.split("\n")[0]})`);
  }
  const urls = [typeof doc.server === "string" ? doc.server : "", ...Object.keys((doc.host ?? {}) as Record<string, unknown>)];
  return { plainHttp: urls.some((u) => u.startsWith("http://")) };
}

/**
 * The container's record (`ctr containers info`, JSON) and its task's
 * `PID STATUS` line; "absent" when containerd knows no such container. A
 * containerd that does not answer is an error, not an absent container.
 */
export function containerdFactCommand(name: string): ShellCommand {
  return sh`if out=$(${ctr} containers info ${name} 2>&1); then printf '%s\n' "$out"; echo '--- task'; ${ctr} tasks ls | awk -v n=${name} '$1 == n { print $2, $3 }'; elif printf '%s' "$out" | grep -q 'not found'; then echo absent; else printf '%s\n' "$out" >&2; exit 1; fi`;
}

interface CtrInfo {
  Labels?: Record<string, string> | null;
  Image?: string;
  Spec?: {
    process?: { args?: string[] | null; env?: string[] | null };
    mounts?: { destination: string; type?: string; source?: string; options?: string[] }[] | null;
  };
}

/** Bind mounts ctr adds itself for a host-network container: not the program's volumes. */
const HOST_NET_MOUNTS = new Set(["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]);

export function parsePorts(label: string | undefined): PortMapping[] {
  if (!label) return [];
  return label
    .split(",")
    .filter(Boolean)
    .map((p) => {
      const [port, proto] = p.split("/");
      return { host: Number(port), container: Number(port), protocol: proto === "udp" ? "udp" : "tcp" } as PortMapping;
    });
}

export function formatPorts(ports: readonly PortMapping[]): string {
  return ports.map((p) => `${p.container}/${p.protocol}`).join(",");
}

export function parseContainerdFact(stdout: string): ContainerFact {
  const text = stdout.trim();
  if (text === "absent") return { state: "absent" };
  const cut = text.lastIndexOf("\n--- task");
  const json = cut >= 0 ? text.slice(0, cut) : text;
  const task = cut >= 0 ? text.slice(cut + "\n--- task".length).trim() : "";
  let info: CtrInfo;
  try {
    info = JSON.parse(json);
  } catch {
    throw new Error(`unexpected answer from the container probe: ${JSON.stringify(text.slice(0, 200))}`);
  }
  const labels = info.Labels ?? {};
  const env: Record<string, string> = {};
  for (const e of info.Spec?.process?.env ?? []) {
    const i = e.indexOf("=");
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  const volumes: VolumeMount[] = (info.Spec?.mounts ?? [])
    .filter((m) => m.type === "bind" && !HOST_NET_MOUNTS.has(m.destination))
    .map((m) => ({ source: m.source ?? "", target: m.destination, readOnly: (m.options ?? []).includes("ro") }));
  const status = task.split(/\s+/)[1] ?? "";
  return {
    state: "present",
    image: info.Image ?? "",
    running: status === "RUNNING",
    env,
    command: info.Spec?.process?.args ?? [],
    ports: parsePorts(labels[PORTS_LABEL]),
    volumes,
    // Armed (a status label) means the monitor restarts it; its policy label says which policy drove set.
    restart: labels[STATUS_LABEL] ? (labels[POLICY_LABEL] ?? "always") : "no",
    labels,
    exitCode: 0,
    restarts: 0,
    restarting: false,
  };
}

/** A stopped task's exit status (ctr prints it when deleting the task) and the container's last log lines. */
export function containerdCrashCommand(name: string): ShellCommand {
  return sh`${ctr} tasks delete ${name} 2>&1 >/dev/null | grep -o 'exit code [0-9]*' || true; echo '--- log'; tail -n 5 ${logPath(name)} 2>/dev/null || true`;
}

export function parseContainerdCrash(stdout: string): { exitCode: number; lines: string[] } {
  const [status, log = ""] = stdout.split("--- log\n");
  const m = /exit code (\d+)/.exec(status);
  return { exitCode: m ? Number(m[1]) : 0, lines: log.trim() ? log.trim().split("\n").slice(-5) : [] };
}

// ---- operations ---------------------------------------------------------

/** Steps to run now, and the steps that arm the restart monitor once the task was seen running. */
export interface ContainerdPlan {
  readonly steps: Step[];
  readonly arm: Step[];
}

/** Restart policies containerd 1.6's monitor can honour (see the top of this file). */
export const CONTAINERD_RESTART = ["no", "always", "unless-stopped"] as const;

function armStep(d: ContainerDesired): Step[] {
  if (d.restart === "no" || !d.running) return [];
  return [{ description: `let containerd restart ${d.name}`, command: sh`${ctr} containers label ${d.name} ${`${STATUS_LABEL}=running`} >/dev/null` }];
}

/** Takes the container off the monitor (so it does not restart what drove stops), then removes its task. */
function disarmAndDeleteTask(name: string): ShellCommand {
  return sh`${ctr} containers label ${name} ${`${STATUS_LABEL}=`} >/dev/null && { ${ctr} tasks delete --force ${name} >/dev/null 2>&1 || true; }`;
}

/**
 * Takes the container off the monitor and deletes it with its task. A
 * monitor pass already under way when the label changed may still start a
 * task once, so the delete is retried a few times before it is an error.
 */
function deleteContainer(name: string): ShellCommand {
  return and(
    sh`${ctr} containers label ${name} ${`${STATUS_LABEL}=`} >/dev/null`,
    sh`{ i=0; until { ${ctr} tasks delete --force ${name} >/dev/null 2>&1; ${ctr} containers delete ${name} >/dev/null 2>&1; }; do i=$((i + 1)); [ $i -lt 5 ] || break; sleep 2; done; }`,
    sh`if ${ctr} containers info ${name} >/dev/null 2>&1; then ${ctr} containers delete ${name}; fi`,
  );
}

function startStep(d: ContainerDesired): Step {
  // A monitor pass under way may start the task too: if ours loses that race, a running task is what was wanted.
  return {
    description: `start container ${d.name}`,
    command: and(
      disarmAndDeleteTask(d.name),
      sh`{ ${ctr} tasks start --detach --log-uri ${logUri(d.name)} ${d.name} || ${ctr} tasks ls | awk -v n=${d.name} '$1 == n && $3 == "RUNNING" { f = 1 } END { exit !f }'; }`,
    ),
  };
}

function stopStep(d: ContainerDesired): Step {
  // SIGTERM (the image's stop signal), up to 10 s to exit, then SIGKILL, as `docker stop` does.
  const label = d.restart === "no" ? sh`${ctr} containers label ${d.name} ${`${STATUS_LABEL}=`} >/dev/null` : sh`${ctr} containers label ${d.name} ${`${STATUS_LABEL}=stopped`} >/dev/null`;
  return {
    description: `stop container ${d.name}`,
    command: and(
      label,
      sh`{ ${ctr} tasks kill ${d.name} >/dev/null 2>&1 || true; }`,
      sh`{ i=0; while [ $i -lt 10 ] && ${ctr} tasks ls | awk -v n=${d.name} '$1 == n && $3 == "RUNNING" { f = 1 } END { exit !f }'; do sleep 1; i=$((i + 1)); done; }`,
      sh`{ ${ctr} tasks delete --force ${d.name} >/dev/null 2>&1 || true; }`,
    ),
  };
}

function restartLabelsStep(d: ContainerDesired): Step {
  const labels = d.restart === "no" ? [`${STATUS_LABEL}=`, `${POLICY_LABEL}=`, `${LOGURI_LABEL}=`] : [`${POLICY_LABEL}=${d.restart}`, `${LOGURI_LABEL}=${logUri(d.name)}`, ...(d.running ? [] : [`${STATUS_LABEL}=stopped`])];
  return { description: `set ${d.name}'s restart policy to ${d.restart}`, command: sh`${ctr} containers label ${d.name} ${labels} >/dev/null` };
}

export function runCommand(d: ContainerDesired): ShellCommand {
  const args: string[] = ["--detach", "--net-host", "--cpu-shares", "0", "--log-uri", logUri(d.name), "--env-file", "/dev/stdin"];
  const labels: Record<string, string> = { ...d.labels, [SPEC_LABEL]: specDigest(d), ...(d.instance ? { [INSTANCE_LABEL]: d.instance } : {}) };
  if (d.ports.length) labels[PORTS_LABEL] = formatPorts(d.ports);
  // The policy and log labels are inert until the status label arms the monitor.
  if (d.restart !== "no") Object.assign(labels, { [POLICY_LABEL]: d.restart, [LOGURI_LABEL]: logUri(d.name) });
  for (const [k, v] of Object.entries(labels)) args.push("--label", `${k}=${v}`);
  for (const v of d.volumes) args.push("--mount", `type=bind,src=${v.source},dst=${v.target},options=rbind:${v.readOnly ? "ro" : "rw"}`);
  const command = d.command?.length ? sh` ${[...d.command]}` : sh``;
  return sh`mkdir -p ${LOG_DIR} && ${ctr} run ${args} ${d.image} ${d.name}${command} >/dev/null`;
}

export function pullCommand(image: string, trust: RegistryTrust): ShellCommand {
  return sh`${ctr} images pull --hosts-dir ${CERTS_DIR}${trust.plainHttp ? sh` --plain-http` : sh``} ${image} >/dev/null`;
}

/**
 * Desired + facts -> steps. A new or changed spec pulls the image and makes
 * the container anew (containerd cannot change a container's spec in
 * place); a stopped task is started; the restart policy changes in place.
 */
export function planContainerd(d: ContainerDesired, fact: ContainerFact, trust: RegistryTrust): ContainerdPlan {
  if (fact.state === "absent" || fact.labels[SPEC_LABEL] !== specDigest(d)) {
    const parts = [pullCommand(d.image, trust)];
    if (fact.state === "present") parts.push(deleteContainer(d.name));
    parts.push(runCommand(d));
    const fresh: Step = {
      description: fact.state === "absent" ? `run container ${d.name} from ${d.image}` : `replace container ${d.name} (its spec changed)`,
      command: and(...parts),
      stdin: envFile(d.env),
    };
    return { steps: d.running ? [fresh] : [fresh, stopStep(d)], arm: armStep(d) };
  }
  const steps: Step[] = [];
  if (fact.restart !== d.restart) steps.push(restartLabelsStep(d));
  if (fact.running !== d.running) steps.push(d.running ? startStep(d) : stopStep(d));
  // Armed already and running: nothing to arm. Started, or its policy changed: arm once it runs.
  const arm = steps.length > 0 ? armStep(d) : [];
  return { steps, arm };
}

/** Removes the container and its task, its log, and its image when no other container uses it. */
export function planContainerdRemoval(name: string, image: string, fact: ContainerFact, instance?: string): Step[] {
  if (fact.state === "absent" || belongsToAnother(fact, instance)) return [];
  return [
    {
      description: `remove container ${name}`,
      command: and(
        deleteContainer(name),
        sh`{ if ${ctr} containers ls | awk 'NR > 1 { print $2 }' | grep -qxF ${image}; then :; else ${ctr} images remove --sync ${image} >/dev/null 2>&1 || true; fi; }`,
        sh`rm -f ${logPath(name)}`,
        sh`{ rmdir ${LOG_DIR} /var/log/drove 2>/dev/null || true; }`,
      ),
    },
  ];
}
