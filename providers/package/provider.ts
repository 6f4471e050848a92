import pLimit from "p-limit";
import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { SshPool, type SshConnection, type SshTarget } from "../../src/ssh";
import { packageFactsCommand, parsePackageFacts, type PackageFact } from "./facts";
import { aptUpdateStep, planPackage, planPackageRemoval } from "./operations";

export interface PackageInputs {
  readonly connection: SshTarget;
  readonly name: string;
  readonly version?: string;
}

export interface PackageOutputs extends PackageInputs {
  /** The version installed. */
  readonly installed: string;
  /** It was on the machine before drove managed it: destroy leaves it there. */
  readonly adopted: boolean;
}

// Debian policy: lower-case letters, digits, + - . ; at least two characters, starting alphanumeric.
const NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const VERSION = /^[A-Za-z0-9.+~:-]+$/;

/** dpkg takes one writer at a time per machine: package changes queue per host. */
const hostLocks = new Map<string, ReturnType<typeof pLimit>>();
/** Package lists are refreshed at most once per host per run, and only when something must be installed. */
const updated = new Map<string, Promise<void>>();

function lockFor(c: SshTarget) {
  const key = SshPool.key(c);
  let l = hostLocks.get(key);
  if (!l) hostLocks.set(key, (l = pLimit(1)));
  return l;
}

async function fact(conn: SshConnection, name: string): Promise<PackageFact> {
  const facts = parsePackageFacts(await runChecked(conn, `inspect package ${name}`, { command: packageFactsCommand([name]), probe: true }));
  return facts.get(name) ?? { state: "absent" };
}

async function ensureUpdated(conn: SshConnection): Promise<void> {
  const key = SshPool.key(conn.target);
  let p = updated.get(key);
  if (!p) {
    p = applySteps(conn, "refresh the package lists", [aptUpdateStep()]);
    updated.set(key, p);
    p.catch(() => updated.delete(key));
  }
  return p;
}

async function converge(i: PackageInputs): Promise<{ installed: string; before: PackageFact }> {
  return withHost(i.connection, (conn) =>
    lockFor(i.connection)(async () => {
      const before = await fact(conn, i.name);
      const steps = planPackage(i, before);
      if (steps.length) {
        await ensureUpdated(conn);
        await applySteps(conn, `install package ${i.name}`, steps);
      }
      const after = await fact(conn, i.name);
      if (after.state !== "installed") throw new Error(`apt-get reported success, but ${i.name} is not installed`);
      return { installed: after.version, before };
    }),
  );
}

/** A Debian package (apt): installed, optionally at an exact version. */
export const packageKind: ResourceKind<PackageInputs, PackageOutputs> = {
  token: "drove:index:Package",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["installed", "adopted"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    if (!isUnknown(news.name) && (typeof news.name !== "string" || !NAME.test(news.name))) {
      failures.push({ property: "name", reason: `\`name\` must be a Debian package name like "curl" (lower-case letters, digits, + - .), but ${JSON.stringify(news.name)} was provided` });
    }
    if (news.version !== undefined && !isUnknown(news.version) && (typeof news.version !== "string" || !VERSION.test(news.version))) {
      failures.push({ property: "version", reason: `\`version\` must be a Debian version like "7.88.1-10+deb12u5", but ${JSON.stringify(news.version)} was provided` });
    }
    return {
      inputs: { connection, name: news.name as string, ...(news.version !== undefined ? { version: news.version as string } : {}) },
      failures,
    };
  },

  diff(olds, news) {
    return diffInputs(olds as never, news as never, ["name"], this.outputOnly);
  },

  async create(inputs) {
    const { installed, before } = await converge(inputs);
    return { id: inputs.name, outs: { ...inputs, installed, adopted: before.state === "installed" } };
  },

  async read(id, props) {
    return withHost(props.connection, async (conn) => {
      const f = await fact(conn, props.name ?? id);
      if (f.state !== "installed") return undefined;
      const { installed: _i, adopted: _a, ...inputs } = props;
      // A pinned version shows drift when another version is installed.
      const live: PackageInputs = props.version !== undefined ? { ...inputs, version: f.version } : inputs;
      return { outs: { ...props, ...live, installed: f.version }, inputs: live };
    });
  },

  async update(_id, olds, news) {
    const { installed } = await converge(news);
    return { ...news, installed, adopted: olds.adopted };
  },

  async delete(id, props) {
    await withHost(props.connection, (conn) =>
      lockFor(props.connection)(async () => {
        const name = props.name ?? id;
        await applySteps(conn, `remove package ${name}`, planPackageRemoval(name, await fact(conn, name), props.adopted));
      }),
    );
  },
};
