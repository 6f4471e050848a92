import { isDeepStrictEqual } from "node:util";
import type { ResourceKind } from "../kind";
import { checkConnection, connectionIdentity, isUnknown, pool, runChecked, withHost, type Failures } from "../common";
import { HostError } from "../../src/errors";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import { healthCommand, osFactsCommand, parseHealth, parseOsFacts, ROLLBACK_PATH, UPDATER_PATH, type OsFacts } from "./facts";
import { healthVerdict, markGoodCommand, rebootCommand, rollPlan, stageCommand, type DesiredImage } from "./operations";

export interface OsImageInputs extends DesiredImage {
  readonly connection: SshTarget;
  /** The Host's name, for messages. */
  readonly host: string;
}

export interface OsImageOutputs extends OsImageInputs {
  /** When the boot running the image started (epoch ms). */
  readonly bootedAt: number;
  /** The image the host ran before this one ("" for none). */
  readonly previous: string;
}

/** How long a machine may take to go down and answer SSH again, beyond the image's own deadline. */
const REBOOT_MARGIN_MS = 120_000;

async function probe(conn: SshConnection): Promise<OsFacts> {
  return parseOsFacts(await runChecked(conn, "read the OS image", { command: osFactsCommand() }));
}

/** The facts of a machine that may be rebooting: undefined while it does not answer. */
async function tryProbe(target: SshTarget): Promise<OsFacts | undefined> {
  try {
    const conn = await pool.get({ ...target, connectTimeoutMs: 5_000 });
    return await probe(conn);
  } catch {
    return undefined;
  }
}

function noUpdater(inputs: OsImageInputs, f: OsFacts): string {
  return `${inputs.host} (${describeTarget(inputs.connection)}) runs ${f.osImage || "no OS image"} and has no OS updater (nothing announces itself at ${UPDATER_PATH}), so drove cannot stage ${inputs.osImage} there and boot it with a rollback. Either run it in drove's lab, whose supervisor is its updater, or install an A/B /usr updater that follows drove's staging protocol (providers/os-image/facts.ts)`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Rolls one host onto the image: stage, reboot, wait for the new boot, its
 * health, then mark it good. A boot that fails is rolled back by the updater
 * (drove reboots an unhealthy one at once; one that never answers is rolled
 * back at its deadline), and the roll fails naming the host.
 */
async function roll(inputs: OsImageInputs): Promise<{ bootedAt: number; previous: string }> {
  const target = inputs.connection;
  const name = `${inputs.host} (${describeTarget(target)})`;
  const before = await withHost(target, probe);
  const plan = rollPlan(inputs, before);
  if (!plan.roll) return { bootedAt: before.bootedAt, previous: before.osImage };
  if (!before.updater) throw new HostError(name, `roll ${inputs.osImage}`, noUpdater(inputs, before));
  await withHost(target, async (conn) => runChecked(conn, `stage ${inputs.osImage}`, { command: stageCommand(inputs) }));
  await withHost(target, async (conn) => {
    // The session may end with the machine before the command reports.
    await conn.exec(rebootCommand(), { timeoutMs: 30_000 }).catch(() => undefined);
  });
  const deadline = Date.now() + inputs.health.deadlineSeconds * 1000 + REBOOT_MARGIN_MS;
  const newBoot = await waitForBoot(target, before.bootedAt, deadline);
  if (!newBoot) {
    throw new HostError(name, `roll ${inputs.osImage}`, `the machine did not answer SSH again within ${Math.round((deadline - Date.now()) / 1000 + inputs.health.deadlineSeconds + REBOOT_MARGIN_MS / 1000)} s of its reboot`, {
      fixes: ["look at its console", `run \`pulumi up\` again once it answers: it still runs ${before.osImage || "its previous image"} or ${inputs.osImage}, and drove reads which`],
    });
  }
  if (newBoot.osImage !== inputs.osImage) return rolledBack(inputs, name, newBoot, "");
  // Healthy within the deadline, or rolled back.
  let last = "";
  while (Date.now() < deadline) {
    const h = await withHost(target, async (conn) => parseHealth(await runChecked(conn, "check the image's health", { command: healthCommand(inputs.health.units, inputs.packages, inputs.health.command) }))).catch(() => undefined);
    if (!h) {
      // It went away (rolled back by its updater, or rebooted): see what it runs now.
      const again = await waitForBoot(target, newBoot.bootedAt, deadline);
      if (again) return rolledBack(inputs, name, again, last);
      break;
    }
    const v = healthVerdict(h);
    last = v.reason;
    if (v.state === "good") {
      await withHost(target, async (conn) => runChecked(conn, `mark the boot of ${inputs.osImage} good`, { command: markGoodCommand(newBoot.bootedAt) }));
      return { bootedAt: newBoot.bootedAt, previous: before.osImage };
    }
    if (v.state === "bad") break;
    await sleep(1_000);
  }
  // Not healthy: reboot without marking it good; the updater boots the previous image.
  await withHost(target, async (conn) => conn.exec(rebootCommand(), { timeoutMs: 30_000 })).catch(() => undefined);
  const back = await waitForBoot(target, newBoot.bootedAt, Date.now() + REBOOT_MARGIN_MS);
  return rolledBack(inputs, name, back, last || "it did not become healthy in time");
}

async function waitForBoot(target: SshTarget, bootedAt: number, deadline: number): Promise<OsFacts | undefined> {
  while (Date.now() < deadline) {
    const f = await tryProbe(target);
    if (f && f.bootedAt !== bootedAt) return f;
    await sleep(1_000);
  }
  return undefined;
}

function rolledBack(inputs: OsImageInputs, name: string, now: OsFacts | undefined, health: string): never {
  const why = [health && `its health: ${health}`, now?.rollback && `its updater: ${now.rollback}`].filter(Boolean).join("; ");
  throw new HostError(
    name,
    `roll ${inputs.osImage}`,
    `the new boot was not marked good${why ? ` (${why})` : ""}, so it was rolled back${now ? ` and runs ${now.osImage || "no OS image"} again` : " (and it has not answered since)"}. The roll stops here: the hosts after it keep their image`,
    { fixes: [`fix the image and give it a new version`, `read its journal (\`journalctl -b -1\` on ${inputs.host}) and ${ROLLBACK_PATH}`] },
  );
}

export const osImageKind: ResourceKind<OsImageInputs, OsImageOutputs> = {
  token: "drove:index:OsImage",
  secretPaths: ["connection.privateKey", "connection.password", "connection.privateKeyPassphrase", "connection.jump.privateKey", "connection.jump.password"],
  outputOnly: ["bootedAt", "previous"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const osImage = news.osImage as string;
    if (!isUnknown(osImage) && (typeof osImage !== "string" || !/^[a-z0-9][a-z0-9._-]* [0-9][A-Za-z0-9.+~-]*$/.test(osImage))) {
      failures.push({ property: "osImage", reason: `\`osImage\` must be "<name> <version>", like "web-os 1.1", but ${JSON.stringify(osImage)} was provided` });
    }
    const health = news.health as DesiredImage["health"] | undefined;
    if (!health || !Array.isArray(health.units) || !Number.isInteger(health.deadlineSeconds)) {
      failures.push({ property: "health", reason: "`health` must give `units` and `deadlineSeconds` (made by the OsImage construct)" });
    }
    if (!Array.isArray(news.layer)) failures.push({ property: "layer", reason: "`layer` must be the image's entries (made by the OsImage construct)" });
    return {
      inputs: {
        connection,
        host: String(news.host ?? ""),
        osImage,
        digest: String(news.digest ?? ""),
        layer: (news.layer ?? []) as DesiredImage["layer"],
        packages: (news.packages ?? []) as string[],
        health: health as DesiredImage["health"],
      },
      failures,
    };
  },

  async plan(news) {
    // A host that must roll but has no updater stops the plan here, before any host changes.
    const { inputs, failures } = this.check(news);
    if (failures.length || isUnknown(inputs.connection) || isUnknown(inputs.osImage) || isUnknown(inputs.connection.host)) return { inputs, failures };
    const f = await tryProbe(inputs.connection);
    if (f && rollPlan(inputs, f).roll && !f.updater) {
      failures.push({ property: "osImage", reason: noUpdater(inputs, f) });
    }
    return { inputs, failures };
  },

  diff(olds, news) {
    // What the preview shows per host: `osImage: "web-os 1.0" => "web-os 1.1"`; the digest covers the contents.
    const changed = ["osImage", "digest"].filter((k) => !isDeepStrictEqual((olds as unknown as Record<string, unknown>)[k], (news as unknown as Record<string, unknown>)[k]));
    const replaces: string[] = [];
    if (connectionIdentity(olds.connection) !== connectionIdentity(news.connection) || isUnknown(news.connection)) {
      changed.push("connection");
      replaces.push("connection");
    }
    return { changes: changed.length > 0, replaces, diffs: changed };
  },

  async create(inputs) {
    const r = await roll(inputs);
    return { id: `${inputs.host}/os-image`, outs: { ...inputs, ...r } };
  },

  async read(_id, props) {
    const f = await withHost(props.connection, probe);
    // What the machine runs, in the program's terms: another image shows as an `osImage` diff.
    const runs = f.osImage === props.osImage && f.digest === props.digest;
    const outs: OsImageOutputs = { ...props, osImage: f.osImage || "none", digest: runs ? props.digest : f.digest || "none", bootedAt: f.bootedAt };
    const { bootedAt: _b, previous: _p, ...inputs } = outs;
    return { outs, inputs };
  },

  async update(_id, olds, news) {
    const r = await roll(news);
    return { ...news, ...r, previous: r.previous || olds.osImage };
  },

  async delete() {
    // The host keeps the image it runs; drove stops managing it.
  },
};
