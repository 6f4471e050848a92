/**
 * An image built on a host from a local Dockerfile and context, pushed to a
 * registry, and pinned by digest: hosts run exactly what was built, and an
 * unchanged context does not rebuild.
 */
import { createHash } from "node:crypto";
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, posix, relative } from "node:path";
import type * as Tar from "tar";
import type { ResourceKind } from "../kind";
import { checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { HostError } from "../../src/errors";
import { sh, type ShellCommand } from "../../src/quote";
import { describeTarget, type SshTarget } from "../../src/ssh";
import type { CliEngine } from "./facts";

export interface ImageInputs {
  readonly connection: SshTarget;
  readonly engine: CliEngine;
  /** `registry/name`, without a tag. */
  readonly repository: string;
  /** Absolute path of the build context on the machine running drove. */
  readonly context: string;
  /** Relative to the context. */
  readonly dockerfile: string;
  /** Extra files for the context: path in the context -> local path. */
  readonly files: Record<string, string>;
  /** A digest of the context and files: a change rebuilds. */
  readonly contextHash: string;
}

export interface ImageOutputs extends ImageInputs {
  /** `repository:<hash>` */
  readonly tag: string;
  /** `sha256:...` as the registry serves it. */
  readonly digest: string;
  /** `repository@sha256:...`: what containers should run. */
  readonly digestRef: string;
}

const REPOSITORY = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/;

function walk(dir: string, out: string[] = [], root = dir): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) walk(p, out, root);
    else out.push(relative(root, p));
  }
  return out;
}

/** sha256 over every file's path, mode and bytes, in a stable order. */
export function contextDigest(context: string, files: Record<string, string>): string {
  const h = createHash("sha256");
  for (const rel of walk(context)) {
    const p = join(context, rel);
    h.update(`${rel}\0${statSync(p).mode & 0o777}\0`).update(lstatSync(p).isSymbolicLink() ? "symlink" : readFileSync(p));
  }
  for (const [rel, src] of Object.entries(files).sort()) h.update(`extra:${rel}\0${statSync(src).mode & 0o777}\0`).update(readFileSync(src));
  return h.digest("hex");
}

async function contextTar(i: ImageInputs): Promise<Buffer> {
  const stage = mkdtempSync(join(tmpdir(), "drove-build-"));
  try {
    cpSync(i.context, stage, { recursive: true });
    for (const [rel, src] of Object.entries(i.files)) cpSync(src, join(stage, rel));
    const chunks: Buffer[] = [];
    // (loaded here: only a build needs it, and it costs every provider start otherwise)
    const tar = require("tar") as typeof Tar;
    const stream = tar.create({ cwd: stage, portable: true }, readdirSync(stage));
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

const buildDir = (i: ImageInputs) => `/var/lib/drove/build/${createHash("sha256").update(i.repository).digest("hex").slice(0, 16)}`;
const tagOf = (i: ImageInputs) => `${i.repository}:${i.contextHash.slice(0, 16)}`;

export function buildCommand(i: ImageInputs): ShellCommand {
  const d = buildDir(i);
  const tag = tagOf(i);
  return sh`${i.engine} build --quiet --tag ${tag} --file ${`${d}/${i.dockerfile}`} ${d} >/dev/null && ${i.engine} push ${tag} >/dev/null 2>&1 && skopeo inspect --format '{{.Digest}}' ${`docker://${tag}`} && rm -rf ${d}`;
}

function digestCommand(tag: string): ShellCommand {
  return sh`skopeo inspect --format '{{.Digest}}' ${`docker://${tag}`} 2>/dev/null || echo absent`;
}

async function build(i: ImageInputs): Promise<ImageOutputs> {
  const archive = await contextTar(i);
  return withHost(i.connection, async (conn) => {
    const d = buildDir(i);
    await runChecked(conn, `upload the build context of ${i.repository}`, { command: sh`rm -rf ${d} && mkdir -p ${d} && tar -x -C ${d}`, stdin: archive });
    const r = await conn.exec(buildCommand(i), { timeoutMs: 30 * 60_000 });
    if (r.code !== 0) {
      throw new HostError(describeTarget(conn.target), `build image ${i.repository}`, r.stderr.trim().split("\n").slice(-4).join(" | ") || `exit status ${r.code}`, {
        fixes: ["check the Dockerfile and that every file it copies is in the context", `check that ${i.repository.split("/")[0]} accepts pushes`],
      });
    }
    const digest = r.stdout.trim().split("\n").pop()!;
    return { ...i, tag: tagOf(i), digest, digestRef: `${i.repository}@${digest}` };
  });
}

export const imageKind: ResourceKind<ImageInputs, ImageOutputs> = {
  token: "drove:index:Image",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["tag", "digest", "digestRef"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    if (!["docker", "podman"].includes(news.engine as string)) failures.push({ property: "engine", reason: "images are built by a docker or podman runtime" });
    if (!isUnknown(news.repository) && (typeof news.repository !== "string" || !REPOSITORY.test(news.repository))) {
      failures.push({ property: "repository", reason: `\`repository\` must be like registry.example:5000/team/app (no tag), but ${JSON.stringify(news.repository)} was provided` });
    }
    const context = news.context as string;
    const files = (news.files ?? {}) as Record<string, string>;
    const dockerfile = (news.dockerfile ?? "Dockerfile") as string;
    let contextHash = "";
    if (typeof context !== "string" || !isAbsolute(context) || !existsSync(context) || !statSync(context).isDirectory()) {
      failures.push({ property: "context", reason: `\`context\` must be a directory on this machine, but ${JSON.stringify(context)} is not one` });
    } else if (!existsSync(join(context, dockerfile))) {
      failures.push({ property: "dockerfile", reason: `there is no ${dockerfile} in ${context}` });
    } else if (posix.normalize(dockerfile).startsWith("..")) {
      failures.push({ property: "dockerfile", reason: "`dockerfile` must be inside the context" });
    } else {
      const missing = Object.entries(files).filter(([rel, src]) => rel.includes("..") || !existsSync(src));
      if (missing.length) failures.push({ property: "files", reason: `extra files must exist and stay inside the context: ${missing.map(([r, s]) => `${r} <- ${s}`).join(", ")}` });
      else contextHash = contextDigest(context, files);
    }
    return { inputs: { connection, engine: news.engine as CliEngine, repository: news.repository as string, context, dockerfile, files, contextHash }, failures };
  },

  diff(olds, news) {
    // A new build is a new image: Pulumi builds it, moves what runs the old one,
    // then deletes the old one (its pushed manifest with it).
    return diffInputs(olds as never, news as never, ["engine", "repository", "context", "dockerfile", "files", "contextHash"], this.outputOnly);
  },

  async create(inputs) {
    const outs = await build(inputs);
    return { id: outs.digestRef, outs };
  },

  async read(_id, props) {
    return withHost(props.connection, async (conn) => {
      const digest = (await runChecked(conn, `look up ${props.tag}`, { command: digestCommand(props.tag), probe: true })).trim();
      if (digest === "absent") return undefined;
      const { tag: _t, digest: _d, digestRef: _r, ...inputs } = props;
      return { outs: { ...props, digest, digestRef: `${props.repository}@${digest}` }, inputs: inputs as ImageInputs };
    });
  },

  async update(_id, olds, news) {
    // Only the connection changes in place; the image stays as built.
    return { ...news, tag: olds.tag, digest: olds.digest, digestRef: olds.digestRef };
  },

  async delete(_id, props) {
    await withHost(props.connection, async (conn) => {
      await conn.exec(sh`skopeo delete ${`docker://${props.digestRef}`} >/dev/null 2>&1; ${props.engine} image rm ${props.tag} >/dev/null 2>&1; true`);
    });
  },
};
