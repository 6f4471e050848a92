/**
 * The daemonless model (rkt + systemd, as CoreOS ran it): each container is a
 * systemd unit running `runc` on an OCI bundle; images are fetched with skopeo
 * and unpacked with umoci. No engine daemon runs on the host.
 */
import { constants as osConstants } from "node:os";
import { sh, type ShellCommand } from "../../src/quote";
import type { Step } from "../file/operations";
import type { ContainerFact } from "./facts";
import { volumeDataDir } from "../volume/facts";
import { belongsToAnother, INSTANCE_LABEL, SPEC_LABEL, specDigest, type ContainerDesired } from "./operations";

export const ROOT = "/var/lib/drove/containers";

export function unitName(name: string): string {
  return `drove-container-${name}.service`;
}

const dir = (name: string) => `${ROOT}/${name}`;

/** What drove records next to the bundle: the spec digest and the spec, env values left out. */
export interface RecordedSpec {
  readonly digest: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly envKeys: readonly string[];
  readonly ports: ContainerDesired["ports"];
  readonly volumes: ContainerDesired["volumes"];
  readonly labels: ContainerDesired["labels"];
  readonly instance?: string;
}

export function recordSpec(d: ContainerDesired): RecordedSpec {
  return { digest: specDigest(d), image: d.image, command: d.command, envKeys: Object.keys(d.env).sort(), ports: d.ports, volumes: d.volumes, labels: d.labels, ...(d.instance ? { instance: d.instance } : {}) };
}

export function systemdFactCommand(name: string): ShellCommand {
  const unit = unitName(name);
  // One systemctl for the unit's state, restarts and last exit; the record (one line) by the shell
  // itself, the unit file by cat: 2 processes.
  return sh`if IFS= read -r rec < ${`${dir(name)}/drove.spec`} || [ -n "$rec" ]; then printf '%s\\n' "$rec"; systemctl show -p ActiveState -p Restart -p NRestarts -p ExecMainCode -p ExecMainStatus ${unit}; echo '--- unit'; cat ${`/etc/systemd/system/${unit}`} 2>/dev/null || true; else echo absent; fi 2>/dev/null`;
}

/**
 * What a failing unit's main process last exited with, as systemd holds it
 * (`ExecMainCode`: 1 exited, 2 killed, 3 dumped; 0 while a new one runs, as
 * after a restart), then the last lines the container itself wrote, from the
 * journal (systemd's messages about the unit left out). systemd's exit
 * records in the journal are not used: journald may not have them yet when
 * the container's own lines are there.
 */
export function systemdCrashCommand(name: string): ShellCommand {
  const unit = unitName(name);
  // Only lines since the unit file was written (drove writes it as it installs a container), not an
  // earlier container's of the same name.
  const since = sh`--since "@$(stat -c %Y ${`/etc/systemd/system/${unit}`} 2>/dev/null || echo 0)"`;
  return sh`systemctl show -p ExecMainCode -p ExecMainStatus ${unit}; echo '--- log'; journalctl ${`_SYSTEMD_UNIT=${unit}`} ${since} -n 5 -o cat --no-pager 2>&1 || true`;
}

const SIGNALS = new Map(Object.entries(osConstants.signals).map(([k, v]) => [v as number, k]));

/** `Key=value` lines of `systemctl show`, as a lookup. */
function shown(text: string): (key: string) => string | undefined {
  return (k) => new RegExp(`^${k}=(.*)$`, "m").exec(text)?.[1]?.trim();
}

/**
 * The main process's last exit from `ExecMainCode`/`ExecMainStatus` (1 exited, 2 killed, 3 dumped;
 * 0 while a new one runs): in words (undefined while a new one runs), and as a shell tells it
 * (128 + the signal when killed; 0 while a new one runs).
 */
function mainExit(field: (key: string) => string | undefined): { status?: string; exitCode: number } {
  const code = Number(field("ExecMainCode") ?? "0");
  const value = Number(field("ExecMainStatus") ?? "0");
  if (code === 1) return { status: `status ${value}`, exitCode: value };
  if (code === 2 || code === 3) return { status: `signal ${SIGNALS.get(value) ?? value}`, exitCode: 128 + value };
  return { exitCode: 0 };
}

/** The exit (undefined while a new main process runs) and the container's last lines. */
export function parseSystemdCrash(stdout: string): { status?: string; lines: string[] } {
  const [head, log = ""] = stdout.split("--- log\n");
  const { status } = mainExit(shown(head));
  return { ...(status ? { status } : {}), lines: log.trim() ? log.trim().split("\n").slice(-5) : [] };
}

const RESTART_FROM_SYSTEMD: Record<string, string> = { always: "always", "on-failure": "on-failure", no: "no" };

/** A systemd + runc container as its probe finds it: the common fact, and the unit file's text. */
export type SystemdContainerFact = { readonly state: "absent" } | (Extract<ContainerFact, { state: "present" }> & { readonly unit: string });

export function parseSystemdFact(stdout: string): SystemdContainerFact {
  if (stdout.trim() === "absent") return { state: "absent" };
  // The unit's text as it is on the machine, byte for byte: it is compared with what drove writes.
  const cut = stdout.indexOf("\n--- unit\n");
  const unit = cut < 0 ? "" : stdout.slice(cut + "\n--- unit\n".length);
  const [line, ...rest] = (cut < 0 ? stdout : stdout.slice(0, cut)).split("\n");
  const head = rest.join("\n");
  let rec: RecordedSpec;
  try {
    rec = JSON.parse(line);
  } catch {
    throw new Error(`unexpected answer from the container probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const field = shown(head);
  const active = field("ActiveState") ?? "inactive";
  return {
    state: "present",
    image: rec.image,
    running: active === "active" || active === "activating",
    env: Object.fromEntries(rec.envKeys.map((k) => [k, ""])),
    command: rec.command ? [...rec.command] : [],
    ports: rec.ports,
    volumes: rec.volumes,
    restart: RESTART_FROM_SYSTEMD[field("Restart") ?? ""] ?? "no",
    labels: { ...rec.labels, [SPEC_LABEL]: rec.digest, ...(rec.instance ? { [INSTANCE_LABEL]: rec.instance } : {}) },
    exitCode: mainExit(field).exitCode,
    restarts: Number(field("NRestarts") ?? "0") || 0,
    restarting: active === "activating",
    unit,
  };
}

interface OciSpec {
  process: { terminal?: boolean; args?: string[]; env?: string[] };
  hostname?: string;
  mounts?: { destination: string; type?: string; source: string; options?: string[] }[];
  linux?: { namespaces?: { type: string }[] };
  annotations?: Record<string, string>;
}

/**
 * The runtime spec for the container, from the one umoci derived from the image:
 * no terminal, the host's network (ports are the container's own), the
 * program's env, command, volumes and labels.
 */
export function runtimeSpec(base: OciSpec, d: ContainerDesired): OciSpec {
  const spec: OciSpec = structuredClone(base);
  spec.process.terminal = false;
  const env = new Map((spec.process.env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e]));
  for (const [k, v] of Object.entries(d.env)) env.set(k, `${k}=${v}`);
  spec.process.env = [...env.values()];
  if (d.command?.length) spec.process.args = [...d.command];
  spec.hostname = d.name;
  spec.mounts = [
    ...(spec.mounts ?? []),
    ...d.volumes.map((v) => ({ destination: v.target, type: "bind", source: v.source.startsWith("/") ? v.source : volumeDataDir(v.source), options: ["rbind", v.readOnly ? "ro" : "rw"] })),
  ];
  if (spec.linux?.namespaces) spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== "network");
  spec.annotations = { ...(spec.annotations ?? {}), ...d.labels };
  return spec;
}

/** The unit drove writes: it depends on the container's name, image and restart policy only. */
export function unitFile(d: Pick<ContainerDesired, "name" | "image" | "restart">): string {
  const restart = d.restart === "unless-stopped" ? "always" : d.restart;
  return [
    "# Written by drove: a container run by runc, without a daemon.",
    "[Unit]",
    `Description=drove container ${d.name} (${d.image})`,
    "After=network-online.target",
    "",
    "[Service]",
    `ExecStartPre=-runc delete --force drove-${d.name}`,
    `ExecStart=runc run --bundle ${dir(d.name)}/bundle drove-${d.name}`,
    `ExecStopPost=-runc delete --force drove-${d.name}`,
    `Restart=${restart}`,
    "RestartSec=1",
    "KillMode=mixed",
    // Docker's and Podman's grace before SIGKILL, not systemd's 90 s: a program
    // that runs as PID 1 in its container ignores SIGTERM unless it handles it.
    "TimeoutStopSec=10",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Fetches the image and unpacks a fresh bundle; prints the bundle's base runtime spec. */
export function prepareCommand(d: ContainerDesired): ShellCommand {
  const base = dir(d.name);
  return sh`umask 077 && mkdir -p ${base} && skopeo copy --quiet ${`docker://${d.image}`} ${`oci:${base}/image:app`} && rm -rf ${`${base}/bundle`} && umoci unpack --image ${`${base}/image:app`} ${`${base}/bundle`} >/dev/null && cat ${`${base}/bundle/config.json`}`;
}

/** Writes the runtime spec (stdin: it holds env values), the record and the unit, then (re)starts it. */
export function installSteps(d: ContainerDesired, spec: OciSpec): Step[] {
  const base = dir(d.name);
  const unit = unitName(d.name);
  return [
    { description: `write ${d.name}'s runtime spec`, command: sh`umask 077 && cat > ${`${base}/bundle/config.json`}`, stdin: JSON.stringify(spec) },
    { description: `record ${d.name}'s spec`, command: sh`umask 077 && cat > ${`${base}/drove.spec`}`, stdin: JSON.stringify(recordSpec(d)) },
    {
      description: `install and start ${unit}`,
      command: sh`cat > ${`/etc/systemd/system/${unit}`} && systemctl daemon-reload && ${d.running ? sh`systemctl enable ${unit} >/dev/null 2>&1 && systemctl restart ${unit}` : sh`systemctl disable --now ${unit} >/dev/null 2>&1 || true`}`,
      stdin: unitFile(d),
    },
  ];
}

/** The lines that say what runs: a change to them takes a restart, the rest of a unit a reload. */
const execLines = (unit: string) => unit.split("\n").filter((l) => l.startsWith("Exec")).join("\n");

export function systemdStateSteps(d: ContainerDesired, fact: Extract<SystemdContainerFact, { state: "present" }>): Step[] {
  const unit = unitName(d.name);
  const text = unitFile(d);
  const steps: Step[] = [];
  const policy = fact.restart !== (d.restart === "unless-stopped" ? "always" : d.restart);
  if (policy || fact.unit !== text) {
    // A unit edited on the machine, or written by an earlier drove (before its 10 s stop grace, say).
    const restart = d.running && fact.running && fact.unit !== "" && execLines(fact.unit) !== execLines(text);
    steps.push({
      description: `${policy ? `set ${d.name}'s restart policy to ${d.restart}` : `rewrite ${unit} as drove writes it`}${restart ? " and restart it" : ""}`,
      command: restart ? sh`cat > ${`/etc/systemd/system/${unit}`} && systemctl daemon-reload && systemctl restart ${unit}` : sh`cat > ${`/etc/systemd/system/${unit}`} && systemctl daemon-reload`,
      stdin: text,
    });
  }
  if (fact.running !== d.running) {
    steps.push(d.running ? { description: `start ${unit}`, command: sh`systemctl enable --now ${unit}` } : { description: `stop ${unit}`, command: sh`systemctl disable --now ${unit}` });
  }
  return steps;
}

export function systemdRemovalSteps(name: string, fact: ContainerFact, instance?: string): Step[] {
  if (fact.state === "absent" || belongsToAnother(fact, instance)) return [];
  const unit = unitName(name);
  return [
    {
      description: `remove container ${name}`,
      command: sh`{ systemctl disable --now ${unit} >/dev/null 2>&1 || true; } && rm -f ${`/etc/systemd/system/${unit}`} && systemctl daemon-reload && { runc delete --force ${`drove-${name}`} >/dev/null 2>&1 || true; } && rm -rf ${dir(name)}`,
    },
  ];
}
