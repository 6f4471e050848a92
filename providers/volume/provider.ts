import type { ResourceKind } from "../kind";
import { checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { HostError } from "../../src/errors";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import { SPEC_LABEL, userLabels } from "../network/operations";
import { applyOrRefuse, NAME } from "../network/provider";
import { parseVolumeFact, VOLUME_ENGINES, volumeFactCommand, type VolumeEngine, type VolumeFact } from "./facts";
import { planVolume, planVolumeRemoval, VolumeConflictError, volumeDigest } from "./operations";

export interface VolumeInputs {
  readonly connection: SshTarget;
  readonly engine: VolumeEngine;
  readonly name: string;
  readonly labels: Record<string, string>;
}

export type VolumeOutputs = VolumeInputs;

async function fact(conn: SshConnection, engine: VolumeEngine, name: string): Promise<VolumeFact> {
  return parseVolumeFact(engine, await runChecked(conn, `inspect volume ${name}`, { command: volumeFactCommand(engine, name), probe: true }));
}

async function converge(conn: SshConnection, i: VolumeInputs): Promise<void> {
  const before = await fact(conn, i.engine, i.name);
  const action = `create volume ${i.name}`;
  await applyOrRefuse(
    conn,
    action,
    () => {
      try {
        return planVolume(i, before);
      } catch (err) {
        if (!(err instanceof VolumeConflictError)) throw err;
        throw new HostError(describeTarget(conn.target), action, err.message, {
          fixes: [
            `remove it on the machine (${i.engine === "systemd" ? `rm -r /var/lib/drove/volumes/${i.name}` : `${i.engine} volume rm ${i.name}`}) if its data can go`,
            "give the Volume another name",
          ],
        });
      }
    },
    "volume",
  );
}

/** A named volume: Docker's or Podman's, or a directory under /var/lib/drove/volumes for the systemd engine. Its data outlives the containers that mount it. */
export const volumeKind: ResourceKind<VolumeInputs, VolumeOutputs> = {
  token: "drove:index:Volume",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: [],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const engine = news.engine as VolumeEngine;
    if (!isUnknown(engine) && !VOLUME_ENGINES.includes(engine)) failures.push({ property: "engine", reason: `\`engine\` must be one of ${VOLUME_ENGINES.join(", ")}, but ${JSON.stringify(news.engine)} was provided` });
    if (!isUnknown(news.name) && (typeof news.name !== "string" || !NAME.test(news.name) || news.name.length < 2)) {
      failures.push({ property: "name", reason: `\`name\` must be 2 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit, but ${JSON.stringify(news.name)} was provided` });
    }
    const labels = (news.labels ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(labels)) {
      if (k.startsWith("drove.")) failures.push({ property: "labels", reason: `the label ${k} is drove's own (labels starting with "drove." are reserved)` });
      if (!isUnknown(v) && typeof v !== "string") failures.push({ property: "labels", reason: `label ${k} must be a string` });
    }
    return { inputs: { connection, engine, name: news.name as string, labels: labels as Record<string, string> }, failures };
  },

  diff(olds, news) {
    const d = diffInputs(olds as never, news as never, ["engine", "name", "labels"], this.outputOnly);
    return { ...d, deleteBeforeReplace: (d.replaces ?? []).length > 0 };
  },

  async create(inputs) {
    await withHost(inputs.connection, (conn) => converge(conn, inputs));
    return { id: inputs.name, outs: inputs };
  },

  async read(id, props) {
    return withHost(props.connection, async (conn) => {
      const f = await fact(conn, props.engine, props.name ?? id);
      if (f.state === "absent") return undefined;
      const live: VolumeInputs = f.labels[SPEC_LABEL] === volumeDigest(props) ? props : { ...props, labels: userLabels(f.labels) };
      return { outs: live, inputs: live };
    });
  },

  async update(_id, _olds, news) {
    // Only the connection changes in place; a volume gone from the machine is made again.
    await withHost(news.connection, (conn) => converge(conn, news));
    return news;
  },

  async delete(id, props) {
    await withHost(props.connection, async (conn) => {
      const name = props.name ?? id;
      const f = await fact(conn, props.engine, name);
      await applyOrRefuse(conn, `remove volume ${name}`, () => planVolumeRemoval(props.engine, name, f), "volume");
    });
  },
};
