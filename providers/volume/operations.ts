import { createHash } from "node:crypto";
import { sh } from "../../src/quote";
import type { Step } from "../file/operations";
import { InUseError, SPEC_LABEL } from "../network/operations";
import { volumeDir, type VolumeEngine, type VolumeFact, type VolumeRecord } from "./facts";

/** A named volume as the program wants it. */
export interface VolumeDesired {
  readonly engine: VolumeEngine;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Thrown when a volume of that name holds data drove did not make for this spec: drove never drops data to take its place. */
export class VolumeConflictError extends Error {}

export function volumeDigest(d: VolumeDesired): string {
  return createHash("sha256").update(JSON.stringify(["local", Object.entries(d.labels).sort()])).digest("hex").slice(0, 32);
}

export function volumeRecord(d: VolumeDesired): VolumeRecord {
  return { digest: volumeDigest(d), labels: d.labels };
}

function createStep(d: VolumeDesired): Step {
  if (d.engine === "systemd") {
    const dir = volumeDir(d.name);
    return {
      description: `create volume ${d.name}`,
      command: sh`umask 022 && mkdir -p ${`${dir}/_data`} && cat > ${`${dir}/drove.json`}`,
      stdin: JSON.stringify(volumeRecord(d)),
    };
  }
  const args: string[] = ["--label", `${SPEC_LABEL}=${volumeDigest(d)}`];
  for (const [k, v] of Object.entries(d.labels)) args.push("--label", `${k}=${v}`);
  return { description: `create volume ${d.name}`, command: sh`${d.engine} volume create ${args} ${d.name} >/dev/null` };
}

/**
 * Desired + facts -> steps. A missing volume is created; one drove made for
 * this spec is kept with its data; one of the same name with another spec
 * (made by hand, or by another program) is refused rather than emptied.
 */
export function planVolume(d: VolumeDesired, fact: VolumeFact): Step[] {
  if (fact.state === "absent") return [createStep(d)];
  if (fact.labels[SPEC_LABEL] === volumeDigest(d)) return [];
  throw new VolumeConflictError(
    `a volume named ${d.name} already exists with other labels (${JSON.stringify(Object.fromEntries(Object.entries(fact.labels).filter(([k]) => k !== SPEC_LABEL)))}), and drove does not empty a volume to take its place`,
  );
}

/** Removes the volume and its data; refused while containers mount it. */
export function planVolumeRemoval(engine: VolumeEngine, name: string, fact: VolumeFact): Step[] {
  if (fact.state === "absent") return [];
  if (fact.users.length) throw new InUseError(`volume ${name}`, fact.users);
  if (engine === "systemd") return [{ description: `remove volume ${name}`, command: sh`rm -rf ${volumeDir(name)}` }];
  return [{ description: `remove volume ${name}`, command: sh`${engine} volume rm ${name} >/dev/null` }];
}
