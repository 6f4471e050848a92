import { sh } from "../../src/quote";
import type { Step } from "../file/operations";
import type { PackageFact } from "./facts";

export interface PackageDesired {
  readonly name: string;
  /** An exact Debian version; undefined means "any version". */
  readonly version?: string;
}

/** apt-get, non-interactive, waiting for another dpkg run instead of failing. */
const APT = sh`DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold`;

export function aptUpdateStep(): Step {
  return { description: "refresh the package lists", command: sh`${APT} update` };
}

/** Desired + fact -> the install step, or [] when the machine already matches. */
export function planPackage(d: PackageDesired, fact: PackageFact): Step[] {
  if (fact.state === "installed" && (d.version === undefined || fact.version === d.version)) return [];
  const spec = d.version === undefined ? d.name : `${d.name}=${d.version}`;
  const what = fact.state === "installed" ? `change ${d.name} ${fact.version} -> ${d.version}` : `install ${spec}`;
  return [{ description: what, command: sh`${APT} install --no-install-recommends --allow-downgrades ${spec}` }];
}

/**
 * Removes (purges) a package drove installed; [] when it is gone already, or
 * when it was on the machine before drove managed it (drove leaves it).
 */
export function planPackageRemoval(name: string, fact: PackageFact, adopted: boolean): Step[] {
  if (fact.state !== "installed" || adopted) return [];
  return [{ description: `remove ${name}`, command: sh`${APT} purge ${name}` }];
}
