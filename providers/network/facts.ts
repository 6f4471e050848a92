import { sh, type ShellCommand } from "../../src/quote";
import type { CliEngine } from "../container/facts";

/** A user-defined network as its engine reports it, with the containers attached to it. */
export type NetworkFact =
  | { readonly state: "absent" }
  | {
      readonly state: "present";
      readonly driver: string;
      /** CIDRs, as the engine lists them (it picks one when none was asked for). */
      readonly subnets: readonly string[];
      readonly internal: boolean;
      readonly labels: Readonly<Record<string, string>>;
      /** Names of the containers (running or not) on this network. */
      readonly users: readonly string[];
    };

/** The line that separates the inspect document from the list of containers using the thing. */
export const USERS_MARK = "#drove-users";

export function networkFactCommand(engine: CliEngine, name: string): ShellCommand {
  // Docker and Podman both fail for a missing network: "absent". `ps --filter network=` lists stopped containers too.
  return sh`if out=$(${engine} network inspect ${name} 2>/dev/null); then printf '%s\n' "$out"; echo ${USERS_MARK}; ${engine} ps -a --filter ${`network=${name}`} --format '{{.Names}}'; else echo absent; fi`;
}

/** Splits a probe's answer into the inspect document and the names listed after USERS_MARK. */
export function splitUsers(stdout: string): { doc: string; users: string[] } {
  const text = stdout.trim();
  const i = text.lastIndexOf(USERS_MARK);
  if (i < 0) return { doc: text, users: [] };
  const users = text
    .slice(i + USERS_MARK.length)
    .split("\n")
    .map((s) => s.trim())
    .filter(Boolean);
  return { doc: text.slice(0, i).trim(), users: [...new Set(users)].sort() };
}

interface DockerNetworkJson {
  Driver?: string;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
  IPAM?: { Config?: { Subnet?: string }[] | null };
}

interface PodmanNetworkJson {
  driver?: string;
  internal?: boolean;
  labels?: Record<string, string> | null;
  subnets?: { subnet?: string }[] | null;
}

/** Parses `docker network inspect` (capitalised keys) or `podman network inspect` (lower case). */
export function parseNetworkFact(stdout: string): NetworkFact {
  const { doc, users } = splitUsers(stdout);
  if (doc === "absent" || doc === "[]" || doc.endsWith("\nabsent")) return { state: "absent" };
  let parsed: (DockerNetworkJson & PodmanNetworkJson)[];
  try {
    parsed = JSON.parse(doc);
  } catch {
    throw new Error(`unexpected answer from the network probe: ${JSON.stringify(doc.slice(0, 200))}`);
  }
  const n = parsed[0];
  if (!n) return { state: "absent" };
  const subnets = [...(n.IPAM?.Config ?? []).map((c) => c.Subnet), ...(n.subnets ?? []).map((s) => s.subnet)].filter((s): s is string => !!s);
  return {
    state: "present",
    driver: n.Driver ?? n.driver ?? "",
    subnets,
    internal: (n.Internal ?? n.internal) === true,
    labels: { ...(n.Labels ?? n.labels ?? {}) },
    users,
  };
}
