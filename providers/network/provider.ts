import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { HostError } from "../../src/errors";
import { isCidr, parseCidr } from "../../src/cidr";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import type { CliEngine } from "../container/facts";
import type { Step } from "../file/operations";
import { networkFactCommand, parseNetworkFact, type NetworkFact } from "./facts";
import { InUseError, networkDigest, planNetwork, planNetworkRemoval, SPEC_LABEL, userLabels, type NetworkDesired } from "./operations";

export interface NetworkInputs {
  readonly connection: SshTarget;
  readonly engine: CliEngine;
  readonly name: string;
  readonly driver: "bridge";
  readonly subnet?: string;
  readonly internal: boolean;
  readonly labels: Record<string, string>;
}

export interface NetworkOutputs extends NetworkInputs {
  /** The subnets the engine gave the network (its own pick when `subnet` was not set). */
  readonly subnets: string[];
}

export const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/** Names the engines keep for their own networks. */
export const RESERVED_NETWORKS = ["bridge", "host", "none", "default", "podman"];
export const CLI_ENGINES: readonly CliEngine[] = ["docker", "podman"];

function desired(i: NetworkInputs): NetworkDesired {
  return { engine: i.engine, name: i.name, driver: i.driver, ...(i.subnet ? { subnet: i.subnet } : {}), internal: i.internal, labels: i.labels };
}

async function fact(conn: SshConnection, engine: CliEngine, name: string): Promise<NetworkFact> {
  return parseNetworkFact(await runChecked(conn, `inspect network ${name}`, { command: networkFactCommand(engine, name), probe: true }));
}

/** Runs a plan; a network still in use becomes an error naming the containers and what to do. */
export async function applyOrRefuse(conn: SshConnection, action: string, plan: () => Step[], kind: "network" | "volume"): Promise<void> {
  let steps: Step[];
  try {
    steps = plan();
  } catch (err) {
    if (!(err instanceof InUseError)) throw err;
    throw new HostError(describeTarget(conn.target), action, err.message, {
      fixes: [
        `remove ${err.users.length === 1 ? "that container" : "those containers"} first`,
        kind === "network" ? `take ${err.users.length === 1 ? "it" : "them"} off the network` : `stop mounting the volume in ${err.users.length === 1 ? "it" : "them"}`,
      ],
    });
  }
  await applySteps(conn, action, steps);
}

/** A user-defined bridge network of a host's Docker or Podman, on which containers find each other by name. */
export const networkKind: ResourceKind<NetworkInputs, NetworkOutputs> = {
  token: "drove:index:Network",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["subnets"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const engine = news.engine as CliEngine;
    if (!isUnknown(engine) && !CLI_ENGINES.includes(engine)) {
      failures.push({
        property: "engine",
        reason:
          engine === ("systemd" as string)
            ? "the systemd engine runs containers on the host's network, so it has no networks: use a docker or podman runtime for this network"
            : `\`engine\` must be one of ${CLI_ENGINES.join(", ")}, but ${JSON.stringify(news.engine)} was provided`,
      });
    }
    const name = news.name as string;
    if (!isUnknown(name) && (typeof name !== "string" || !NAME.test(name))) {
      failures.push({ property: "name", reason: `\`name\` must be letters, digits, '_', '.' or '-' (up to 128), starting with a letter or digit, but ${JSON.stringify(name)} was provided` });
    } else if (RESERVED_NETWORKS.includes(name)) {
      failures.push({ property: "name", reason: `the network name ${name} is the engine's own; choose another name` });
    }
    const labels = (news.labels ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(labels)) {
      if (k.startsWith("drove.")) failures.push({ property: "labels", reason: `the label ${k} is drove's own (labels starting with "drove." are reserved)` });
      if (!isUnknown(v) && typeof v !== "string") failures.push({ property: "labels", reason: `label ${k} must be a string` });
    }
    const driver = (news.driver ?? "bridge") as "bridge";
    if (driver !== "bridge") failures.push({ property: "driver", reason: `\`driver\` must be "bridge", but ${JSON.stringify(news.driver)} was provided` });
    const subnet = news.subnet as string | undefined;
    if (subnet !== undefined && !isUnknown(subnet)) {
      const c = parseCidr(subnet);
      if (!isCidr(c)) failures.push({ property: "subnet", reason: `\`subnet\` ${c.error}` });
    }
    return {
      inputs: { connection, engine, name, labels: labels as Record<string, string>, driver, ...(subnet !== undefined ? { subnet } : {}), internal: Boolean(news.internal ?? false) },
      failures,
    };
  },

  diff(olds, news) {
    const d = diffInputs(olds as never, news as never, ["engine", "name", "driver", "subnet", "internal", "labels"], this.outputOnly);
    // The name is reused: the old network (and the containers on it) must go first.
    return { ...d, deleteBeforeReplace: (d.replaces ?? []).length > 0 };
  },

  async create(inputs) {
    return withHost(inputs.connection, async (conn) => {
      const action = `create network ${inputs.name}`;
      const before = await fact(conn, inputs.engine, inputs.name);
      await applyOrRefuse(conn, action, () => planNetwork(desired(inputs), before), "network");
      const after = await fact(conn, inputs.engine, inputs.name);
      return { id: inputs.name, outs: { ...inputs, subnets: after.state === "present" ? [...after.subnets] : [] } };
    });
  },

  async read(id, props) {
    return withHost(props.connection, async (conn) => {
      const f = await fact(conn, props.engine, props.name ?? id);
      if (f.state === "absent") return undefined;
      const { subnets: _s, ...wanted } = props;
      // Made by drove and unchanged: its recorded spec matches. Otherwise show what it is.
      const live: NetworkInputs =
        f.labels[SPEC_LABEL] === networkDigest(desired(wanted))
          ? wanted
          : {
              ...wanted,
              driver: f.driver as "bridge",
              ...(wanted.subnet !== undefined ? { subnet: f.subnets[0] ?? "" } : {}),
              internal: f.internal,
              labels: userLabels(f.labels),
            };
      return { outs: { ...live, subnets: [...f.subnets] }, inputs: live };
    });
  },

  async update(_id, _olds, news) {
    // Every property but the connection replaces the network: here only credentials change, and a missing network is made.
    return withHost(news.connection, async (conn) => {
      const before = await fact(conn, news.engine, news.name);
      await applyOrRefuse(conn, `create network ${news.name}`, () => planNetwork(desired(news), before), "network");
      const after = await fact(conn, news.engine, news.name);
      return { ...news, subnets: after.state === "present" ? [...after.subnets] : [] };
    });
  },

  async delete(id, props) {
    await withHost(props.connection, async (conn) => {
      const name = props.name ?? id;
      const f = await fact(conn, props.engine, name);
      await applyOrRefuse(conn, `remove network ${name}`, () => planNetworkRemoval(props.engine, name, f), "network");
    });
  },
};
