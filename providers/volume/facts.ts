import { sh, type ShellCommand } from "../../src/quote";
import type { CliEngine } from "../container/facts";

/** The engines that keep named volumes. */
export type VolumeEngine = CliEngine | "systemd";
export const VOLUME_ENGINES: readonly VolumeEngine[] = ["docker", "podman", "systemd"];
import { ROOT as CONTAINERS_ROOT } from "../container/systemd";
import { splitUsers, USERS_MARK } from "../network/facts";

/** Where the systemd engine keeps named volumes: `<name>/_data` is mounted, `<name>/drove.json` records its spec. */
export const VOLUMES_ROOT = "/var/lib/drove/volumes";

export function volumeDir(name: string): string {
  return `${VOLUMES_ROOT}/${name}`;
}

/** The directory a systemd-run container mounts for the named volume. */
export function volumeDataDir(name: string): string {
  return `${volumeDir(name)}/_data`;
}

/** A named volume as its engine reports it, with the containers that mount it. */
export type VolumeFact =
  | { readonly state: "absent" }
  | {
      readonly state: "present";
      readonly driver: string;
      readonly labels: Readonly<Record<string, string>>;
      /** Names of the containers (running or not) that mount it. */
      readonly users: readonly string[];
    };

export function volumeFactCommand(engine: VolumeEngine, name: string): ShellCommand {
  if (engine === "systemd") {
    const dir = volumeDir(name);
    // A container recorded by the systemd engine mounts the volume when its spec names it as a source.
    return sh`if [ -d ${`${dir}/_data`} ] && [ -f ${`${dir}/drove.json`} ]; then cat ${`${dir}/drove.json`}; echo; echo ${USERS_MARK}; for f in $(grep -lF -- ${`"source":"${name}"`} ${CONTAINERS_ROOT}/*/drove.spec 2>/dev/null); do basename "$(dirname "$f")"; done; else echo absent; fi`;
  }
  const cli: CliEngine = engine;
  return sh`if out=$(${cli} volume inspect ${name} 2>/dev/null); then printf '%s\n' "$out"; echo ${USERS_MARK}; ${cli} ps -a --filter ${`volume=${name}`} --format '{{.Names}}'; else echo absent; fi`;
}

/** What the systemd engine records beside a volume's data. */
export interface VolumeRecord {
  readonly digest: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Parses `docker|podman volume inspect`, or the systemd engine's record. */
export function parseVolumeFact(engine: VolumeEngine, stdout: string): VolumeFact {
  const { doc, users } = splitUsers(stdout);
  if (doc === "absent" || doc === "[]" || doc.endsWith("\nabsent")) return { state: "absent" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(doc);
  } catch {
    throw new Error(`unexpected answer from the volume probe: ${JSON.stringify(doc.slice(0, 200))}`);
  }
  if (engine === "systemd") {
    const rec = parsed as VolumeRecord;
    return { state: "present", driver: "local", labels: { ...rec.labels, "drove.spec": rec.digest }, users };
  }
  const v = (parsed as { Driver?: string; Labels?: Record<string, string> | null }[])[0];
  if (!v) return { state: "absent" };
  return { state: "present", driver: v.Driver ?? "local", labels: { ...(v.Labels ?? {}) }, users };
}
