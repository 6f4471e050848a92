import { createHash } from "node:crypto";
import { sh, type ShellCommand } from "../../src/quote";
import type { CliEngine } from "../container/facts";
import type { Step } from "../file/operations";
import type { NetworkFact } from "./facts";

/** The label in which drove records the digest of what it created. */
export const SPEC_LABEL = "drove.spec";

/** A user-defined network as the program wants it. */
export interface NetworkDesired {
  readonly engine: CliEngine;
  readonly name: string;
  readonly driver: "bridge";
  /** A CIDR; the engine picks one when undefined. */
  readonly subnet?: string;
  /** No route out of the network (containers on it reach only each other). */
  readonly internal: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

/** Thrown when a network or volume cannot go because containers still use it. */
export class InUseError extends Error {
  constructor(
    readonly what: string,
    readonly users: readonly string[],
  ) {
    super(`${users.length === 1 ? "container" : "containers"} ${users.join(", ")} ${users.length === 1 ? "uses" : "use"} it`);
    this.name = "InUseError";
  }
}

/** A digest of everything that needs a new network when it changes. */
export function networkDigest(d: NetworkDesired): string {
  const canon = JSON.stringify([d.driver, d.subnet ?? null, d.internal, Object.entries(d.labels).sort()]);
  return createHash("sha256").update(canon).digest("hex").slice(0, 32);
}

function createCommand(d: NetworkDesired): ShellCommand {
  const args: string[] = ["--driver", d.driver];
  if (d.subnet) args.push("--subnet", d.subnet);
  if (d.internal) args.push("--internal");
  args.push("--label", `${SPEC_LABEL}=${networkDigest(d)}`);
  for (const [k, v] of Object.entries(d.labels)) args.push("--label", `${k}=${v}`);
  return sh`${d.engine} network create ${args} ${d.name} >/dev/null`;
}

/**
 * Desired + facts -> steps. Engines cannot change a network in place: one
 * whose driver, subnet, internal flag or labels differ is made anew, unless
 * containers are on it (then it is refused, naming them).
 */
export function planNetwork(d: NetworkDesired, fact: NetworkFact): Step[] {
  if (fact.state === "absent") return [{ description: `create network ${d.name}`, command: createCommand(d) }];
  if (fact.labels[SPEC_LABEL] === networkDigest(d)) return [];
  if (fact.users.length) throw new InUseError(`network ${d.name}`, fact.users);
  return [{ description: `replace network ${d.name} (its spec changed)`, command: sh`${d.engine} network rm ${d.name} >/dev/null && ${createCommand(d)}` }];
}

/** Removes the network; refused while containers are on it. */
export function planNetworkRemoval(engine: CliEngine, name: string, fact: NetworkFact): Step[] {
  if (fact.state === "absent") return [];
  if (fact.users.length) throw new InUseError(`network ${name}`, fact.users);
  return [{ description: `remove network ${name}`, command: sh`${engine} network rm ${name} >/dev/null` }];
}

/** The user's own labels of what is on the machine: drove's bookkeeping left out. */
export function userLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith("drove.")));
}
