import { posix } from "node:path";
import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import { warn } from "../../src/engine-log";
import { directoryFactCommand, parseDirectoryFact, type DirectoryFact } from "./facts";
import { planDirectory, planDirectoryRemoval, type DirectoryDesired } from "./operations";

export interface DirectoryInputs {
  readonly connection: SshTarget;
  readonly path: string;
  readonly mode: string;
  readonly owner?: string;
  readonly group?: string;
  readonly createParents: boolean;
  readonly recursive: boolean;
}

export interface DirectoryOutputs extends DirectoryInputs {
  /** drove made the directory (it was absent at create); only then does delete remove it. */
  readonly created: boolean;
}

const MODE = /^(0?[0-7]{3}|[0-7]{4})$/;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;

function desired(i: DirectoryInputs): DirectoryDesired {
  return { path: i.path, mode: i.mode, owner: i.owner, group: i.group, createParents: i.createParents };
}

async function fact(conn: SshConnection, path: string): Promise<DirectoryFact> {
  return parseDirectoryFact(await runChecked(conn, `inspect ${path}`, { command: directoryFactCommand(path), probe: true }));
}

/** A directory on a machine: mode, owner, group; removed on delete only if drove made it. */
export const directoryKind: ResourceKind<DirectoryInputs, DirectoryOutputs> = {
  token: "drove:index:Directory",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["created"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const path = news.path;
    if (!isUnknown(path)) {
      if (typeof path !== "string" || !posix.isAbsolute(path) || posix.normalize(path) !== path || path.endsWith("/") || path.includes("\0")) {
        failures.push({ property: "path", reason: `\`path\` must be an absolute, normalised directory path like /srv/app, but ${JSON.stringify(path)} was provided` });
      }
    }
    let mode = news.mode ?? "0755";
    if (typeof mode === "number") mode = mode.toString(8);
    if (!isUnknown(mode)) {
      if (typeof mode !== "string" || !MODE.test(mode)) failures.push({ property: "mode", reason: `\`mode\` must be octal like "0755" or "2775", but ${JSON.stringify(news.mode)} was provided` });
      else mode = mode.padStart(4, "0");
    }
    for (const p of ["owner", "group"] as const) {
      const v = news[p];
      if (v !== undefined && !isUnknown(v) && (typeof v !== "string" || !NAME.test(v))) {
        failures.push({ property: p, reason: `\`${p}\` must be a user or group name like "www-data", but ${JSON.stringify(v)} was provided` });
      }
    }
    for (const p of ["createParents", "recursive"] as const) {
      const v = news[p];
      if (v !== undefined && !isUnknown(v) && typeof v !== "boolean") failures.push({ property: p, reason: `\`${p}\` must be true or false, but ${JSON.stringify(v)} was provided` });
    }
    const inputs: DirectoryInputs = {
      connection,
      path: path as string,
      mode: mode as string,
      ...(news.owner !== undefined ? { owner: news.owner as string } : {}),
      ...(news.group !== undefined ? { group: news.group as string } : {}),
      createParents: news.createParents === undefined ? true : (news.createParents as boolean),
      recursive: news.recursive === undefined ? false : (news.recursive as boolean),
    };
    return { inputs, failures };
  },

  diff(olds, news) {
    return diffInputs(olds as never, news as never, ["path"], this.outputOnly);
  },

  async create(inputs) {
    const created = await withHost(inputs.connection, async (conn) => {
      const f = await fact(conn, inputs.path);
      await applySteps(conn, `make directory ${inputs.path}`, planDirectory(desired(inputs), f));
      return f.state === "absent";
    });
    return { id: inputs.path, outs: { ...inputs, created } };
  },

  async read(id, props) {
    return withHost(props.connection, async (conn) => {
      const f = await fact(conn, props.path ?? id);
      if (f.state !== "directory") return undefined;
      // What is on the machine, in the program's terms, so drift shows per property.
      const inputs: DirectoryInputs = {
        connection: props.connection,
        path: props.path,
        mode: f.mode,
        ...(props.owner !== undefined ? { owner: f.owner } : {}),
        ...(props.group !== undefined ? { group: f.group } : {}),
        createParents: props.createParents,
        recursive: props.recursive,
      };
      return { outs: { ...inputs, created: props.created }, inputs };
    });
  },

  async update(_id, olds, news) {
    const remade = await withHost(news.connection, async (conn) => {
      const f = await fact(conn, news.path);
      await applySteps(conn, `update directory ${news.path}`, planDirectory(desired(news), f));
      return f.state === "absent";
    });
    // Whether drove made it does not change with its mode or owner, only when it has to make it again.
    return { ...news, created: remade || (olds.created ?? false) };
  },

  async delete(id, props) {
    await withHost(props.connection, async (conn) => {
      const path = props.path ?? id;
      const plan = planDirectoryRemoval({ path, created: props.created ?? false, recursive: props.recursive ?? false }, await fact(conn, path));
      if (plan.reason) await warn(`drove left directory ${path} on ${describeTarget(conn.target)} in place: ${plan.reason}.`);
      await applySteps(conn, `remove directory ${path}`, plan.steps);
    });
  },
};
