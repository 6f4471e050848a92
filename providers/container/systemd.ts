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
  return sh`if [ -f ${`${dir(name)}/drove.spec`} ]; then cat ${`${dir(name)}/drove.spec`}; echo; systemctl is-active ${unit} || true; systemctl show -p Restart --value ${unit}; systemctl show -p NRestarts --value ${unit}; else echo absent; fi`;
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

/** The exit (undefined while a new main process runs) and the container's last lines. */
export function parseSystemdCrash(stdout: string): { status?: string; lines: string[] } {
  const [head, log = ""] = stdout.split("--- log\n");
  const field = (k: string) => new RegExp(`^${k}=(.*)$`, "m").exec(head)?.[1]?.trim();
  const code = Number(field("ExecMainCode") ?? "0");
  const value = Number(field("ExecMainStatus") ?? "0");
  const status = code === 1 ? `status ${value}` : code === 2 || code === 3 ? `signal ${SIGNALS.get(value) ?? value}` : undefined;
  return { ...(status ? { status } : {}), lines: log.trim() ? log.trim().split("\n").slice(-5) : [] };
}

const RESTART_FROM_SYSTEMD: Record<string, string> = { always: "always", "on-failure": "on-failure", no: "no" };

export function parseSystemdFact(stdout: string): ContainerFact {
  const lines = stdout.trim().split("\n");
  if (lines[0] === "absent") return { state: "absent" };
  let rec: RecordedSpec;
  try {
    rec = JSON.parse(lines[0]);
  } catch {
    throw new Error(`unexpected answer from the container probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const active = (lines[1] ?? "").trim();
  return {
    state: "present",
    image: rec.image,
    running: active === "active" || active === "activating",
    env: Object.fromEntries(rec.envKeys.map((k) => [k, ""])),
    command: rec.command ? [...rec.command] : [],
    ports: rec.ports,
    volumes: rec.volumes,
    restart: RESTART_FROM_SYSTEMD[(lines[2] ?? "").trim()] ?? "no",
    labels: { ...rec.labels, [SPEC_LABEL]: rec.digest, ...(rec.instance ? { [INSTANCE_LABEL]: rec.instance } : {}) },
    // (the probe does not read it: a crash report asks the unit itself, systemdCrashCommand)
    exitCode: 0,
    restarts: Number((lines[3] ?? "0").trim()) || 0,
    restarting: active === "activating",
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

export function unitFile(d: ContainerDesired): string {
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

export function systemdStateSteps(d: ContainerDesired, fact: Extract<ContainerFact, { state: "present" }>): Step[] {
  const unit = unitName(d.name);
  const steps: Step[] = [];
  if (fact.restart !== (d.restart === "unless-stopped" ? "always" : d.restart)) {
    steps.push({ description: `set ${d.name}'s restart policy to ${d.restart}`, command: sh`cat > ${`/etc/systemd/system/${unit}`} && systemctl daemon-reload`, stdin: unitFile(d) });
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
