import { posix } from "node:path";
import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import type { SshTarget } from "../../src/ssh";
import { fileFactCommand, parseFileFact, type FileFact } from "./facts";
import { planFile, planFileRemoval, sha256, type FileDesired } from "./operations";

export interface FileInputs {
  readonly connection: SshTarget;
  readonly path: string;
  readonly content: string;
  readonly mode: string;
  readonly owner?: string;
  readonly group?: string;
  readonly createParents: boolean;
}

export interface FileOutputs extends FileInputs {
  readonly sha256: string;
  readonly size: number;
}

const MODE = /^0?[0-7]{3}$/;

function desired(i: FileInputs): FileDesired {
  return { path: i.path, content: i.content, mode: i.mode, owner: i.owner, group: i.group, createParents: i.createParents };
}

async function fact(conn: Parameters<Parameters<typeof withHost>[1]>[0], path: string): Promise<FileFact> {
  return parseFileFact(await runChecked(conn, `inspect ${path}`, { command: fileFactCommand(path), probe: true }));
}

function outputs(i: FileInputs): FileOutputs {
  return { ...i, sha256: sha256(i.content), size: Buffer.byteLength(i.content, "utf8") };
}

/** A regular file on a machine: content, mode, owner, group. */
export const fileKind: ResourceKind<FileInputs, FileOutputs> = {
  token: "drove:index:File",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["sha256", "size"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const path = news.path;
    if (!isUnknown(path)) {
      if (typeof path !== "string" || !posix.isAbsolute(path) || posix.normalize(path) !== path || path.endsWith("/")) {
        failures.push({ property: "path", reason: `\`path\` must be an absolute, normalised file path like /etc/motd, but ${JSON.stringify(path)} was provided` });
      } else if (path.includes("\0")) failures.push({ property: "path", reason: "`path` must not contain a NUL byte" });
    }
    const content = news.content ?? "";
    if (!isUnknown(content) && typeof content !== "string") failures.push({ property: "content", reason: "`content` must be a string" });
    let mode = news.mode ?? "0644";
    if (typeof mode === "number") mode = mode.toString(8);
    if (!isUnknown(mode)) {
      if (typeof mode !== "string" || !MODE.test(mode)) failures.push({ property: "mode", reason: `\`mode\` must be octal like "0644", but ${JSON.stringify(news.mode)} was provided` });
      else mode = mode.padStart(4, "0");
    }
    for (const p of ["owner", "group"] as const) {
      const v = news[p];
      if (v !== undefined && !isUnknown(v) && (typeof v !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(v))) {
        failures.push({ property: p, reason: `\`${p}\` must be a user or group name like "www-data", but ${JSON.stringify(v)} was provided` });
      }
    }
    const inputs: FileInputs = {
      connection,
      path: path as string,
      content: content as string,
      mode: mode as string,
      ...(news.owner !== undefined ? { owner: news.owner as string } : {}),
      ...(news.group !== undefined ? { group: news.group as string } : {}),
      createParents: news.createParents === undefined ? true : Boolean(news.createParents),
    };
    return { inputs, failures };
  },

  diff(olds, news) {
    return diffInputs(olds as never, news as never, ["path"], this.outputOnly);
  },

  async create(inputs) {
    await withHost(inputs.connection, async (conn) => {
      await applySteps(conn, `write ${inputs.path}`, planFile(desired(inputs), await fact(conn, inputs.path)));
    });
    return { id: inputs.path, outs: outputs(inputs) };
  },

  async read(id, props) {
    return withHost(props.connection, async (conn) => {
      const f = await fact(conn, props.path ?? id);
      if (f.state !== "file") return undefined;
      // What is on the machine, in the program's terms, so drift shows per property.
      const live: FileInputs = {
        ...props,
        content: f.content ?? (f.sha256 === props.sha256 ? props.content : `<${f.size} bytes, sha256 ${f.sha256}>`),
        mode: f.mode,
        ...(props.owner !== undefined ? { owner: f.owner } : {}),
        ...(props.group !== undefined ? { group: f.group } : {}),
      };
      const { sha256: _s, size: _z, ...inputs } = { ...live, sha256: "", size: 0 };
      return { outs: { ...live, sha256: f.sha256, size: f.size }, inputs: inputs as FileInputs };
    });
  },

  async update(_id, olds, news) {
    await withHost(news.connection, async (conn) => {
      await applySteps(conn, `update ${news.path}`, planFile(desired(news), await fact(conn, news.path)));
    });
    void olds;
    return outputs(news);
  },

  async delete(id, props) {
    await withHost(props.connection, async (conn) => {
      const path = props.path ?? id;
      await applySteps(conn, `remove ${path}`, planFileRemoval(path, await fact(conn, path)));
    });
  },
};
