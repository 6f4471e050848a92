import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { HostError } from "../../src/errors";
import { sh } from "../../src/quote";
import { wrapSecret } from "../../src/secrets";
import { describeTarget, type ExecResult, type SshConnection, type SshTarget } from "../../src/ssh";
import { sha256 } from "../file/operations";
import { parseUnitFact, unitFactCommand, unitPath, type UnitFact } from "./facts";
import { planUnit, planUnitRemoval, SETTLE_SECONDS, isActive, isEnabled, type UnitDesired, type UnitStep } from "./operations";
import { unitNameProblem, unitTextProblems } from "./unit-file";

export interface UnitInputs {
  readonly connection: SshTarget;
  readonly name: string;
  readonly content: string;
  readonly enabled: boolean;
  readonly active: boolean;
  /**
   * Set only by `read`, when systemd has not loaded the unit's current file
   * (it changed, and no daemon-reload followed): the program never has it,
   * so the difference shows as drift and `up` reloads and restarts the unit.
   */
  readonly needsDaemonReload?: boolean;
}

export interface UnitOutputs extends UnitInputs {
  /** Where the unit file is: /etc/systemd/system/<name>. */
  readonly path: string;
  readonly sha256: string;
}

const SECRET_PATHS = ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"] as const;

/** A start that failed: the unit file is in place, the unit is not running. */
class UnitStartError extends HostError {}

function desired(i: UnitInputs): UnitDesired {
  return { name: i.name, content: i.content, enabled: i.enabled, active: i.active };
}

function outputs(i: UnitInputs): UnitOutputs {
  const { needsDaemonReload: _n, ...inputs } = i;
  return { ...inputs, path: unitPath(i.name), sha256: sha256(i.content) };
}

async function fact(conn: SshConnection, name: string): Promise<UnitFact> {
  return parseUnitFact(await runChecked(conn, `inspect unit ${name}`, { command: unitFactCommand(name), probe: true }));
}

/** Explains a failed start with the unit's last log lines and what to do. */
async function startFailure(conn: SshConnection, name: string, verb: string, r: ExecResult): Promise<UnitStartError> {
  const probe = await conn.exec(sh`journalctl -u ${name} -n 5 --no-pager 2>&1; echo "@state=$(systemctl is-active ${name} 2>/dev/null)"`);
  const lines = probe.stdout.split("\n");
  const at = lines.findIndex((l) => l.startsWith("@state="));
  const state = at >= 0 ? lines[at].slice(7).trim() : "";
  const log = (at >= 0 ? lines.slice(0, at) : lines).filter((l) => l.trim() !== "");
  const job = r.stderr.trim().split("\n")[0]?.trim().replace(/[.]$/, "");
  const why = job || `it was ${state || "not active"} ${SETTLE_SECONDS} s after \`systemctl ${verb}\` returned`;
  const reason =
    `${why}. Either check ExecStart= in ${name} (the program must exist, be executable and keep running: try the command by hand on the machine), ` +
    `or set \`active: false\` to install the unit without starting it. ` +
    `Its last log lines (journalctl -u ${name} -n 5 --no-pager):\n${(log.length ? log : ["(none)"]).map((l) => `    ${l}`).join("\n")}\n`;
  return new UnitStartError(describeTarget(conn.target), `${verb} unit ${name}`, reason);
}

/** Configures the unit in one round trip, then starts it in another, so a failed start can be told apart and explained. */
async function applyUnit(conn: SshConnection, d: UnitDesired, f: UnitFact): Promise<void> {
  const steps: UnitStep[] = planUnit(d, f);
  const at = steps.findIndex((s) => s.starts);
  await applySteps(conn, `set up unit ${d.name}`, at < 0 ? steps : steps.slice(0, at));
  for (const s of at < 0 ? [] : steps.slice(at)) {
    const r = await conn.exec(s.command);
    if (r.code !== 0) throw s.starts ? await startFailure(conn, d.name, s.starts, r) : new HostError(describeTarget(conn.target), s.description, r.stderr.trim() || `exit status ${r.code}`);
  }
}

/** Wraps the connection's secrets as the plugin does for every answer. */
function wire(outs: UnitOutputs): Record<string, unknown> {
  const out = structuredClone(outs) as unknown as Record<string, unknown>;
  for (const path of SECRET_PATHS) {
    const [head, last] = path.split(".");
    const node = out[head] as Record<string, unknown> | undefined;
    if (node && node[last] !== undefined) node[last] = wrapSecret(node[last]);
  }
  return out;
}

/**
 * A unit that failed to start is still there (its file written, enabled):
 * Pulumi records it as created but not initialised, so the next `up` tries
 * again and `destroy` removes it, instead of forgetting it on the machine.
 */
function rethrow(err: unknown, id: string, outs: UnitOutputs): never {
  if (err instanceof UnitStartError) Object.assign(err, { id, properties: wire(outs), reasons: [err.message] });
  throw err;
}

/** A systemd unit: its file in /etc/systemd/system, enabled or not, running or not. */
export const unitKind: ResourceKind<UnitInputs, UnitOutputs> = {
  token: "drove:index:SystemdUnit",
  secretPaths: SECRET_PATHS,
  outputOnly: ["path", "sha256"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const { name, content } = news;
    if (!isUnknown(name)) {
      const problem = unitNameProblem(name);
      if (problem) failures.push({ property: "name", reason: problem });
    }
    if (content === undefined || (!isUnknown(content) && typeof content !== "string")) {
      failures.push({ property: "content", reason: "`content` must be the unit file's text" });
    }
    for (const p of ["enabled", "active"] as const) {
      const v = news[p];
      if (v !== undefined && !isUnknown(v) && typeof v !== "boolean") failures.push({ property: p, reason: `\`${p}\` must be true or false, but ${JSON.stringify(v)} was provided` });
    }
    const inputs: UnitInputs = {
      connection,
      name: name as string,
      content: content as string,
      enabled: news.enabled === undefined ? true : (news.enabled as boolean),
      active: news.active === undefined ? true : (news.active as boolean),
    };
    const known = [inputs.name, inputs.content, inputs.enabled, inputs.active].every((v) => !isUnknown(v));
    if (known && failures.length === 0) {
      for (const reason of unitTextProblems(inputs.name, inputs.content, inputs.enabled, inputs.active)) failures.push({ property: "content", reason });
    }
    return { inputs, failures };
  },

  diff(olds, news) {
    return diffInputs(olds as never, news as never, ["name"], this.outputOnly);
  },

  async create(inputs) {
    const outs = outputs(inputs);
    try {
      await withHost(inputs.connection, async (conn) => applyUnit(conn, desired(inputs), await fact(conn, inputs.name)));
    } catch (err) {
      rethrow(err, inputs.name, outs);
    }
    return { id: inputs.name, outs };
  },

  async read(id, props) {
    return withHost(props.connection, async (conn) => {
      const name = props.name ?? id;
      const f = await fact(conn, name);
      if (f.file.state !== "file") return undefined;
      // What is on the machine, in the program's terms, so drift shows per property.
      const inputs: UnitInputs = {
        connection: props.connection,
        name,
        content: f.file.content ?? (f.file.sha256 === props.sha256 ? props.content : `<${f.file.size} bytes, sha256 ${f.file.sha256}>`),
        enabled: isEnabled(f.enablement),
        active: isActive(f.activity),
        ...(f.needDaemonReload ? { needsDaemonReload: true } : {}),
      };
      return { outs: { ...inputs, path: unitPath(name), sha256: f.file.sha256 }, inputs };
    });
  },

  async update(_id, _olds, news) {
    const outs = outputs(news);
    try {
      await withHost(news.connection, async (conn) => applyUnit(conn, desired(news), await fact(conn, news.name)));
    } catch (err) {
      rethrow(err, news.name, outs);
    }
    return outs;
  },

  async delete(id, props) {
    await withHost(props.connection, async (conn) => {
      const name = props.name ?? id;
      await applySteps(conn, `remove unit ${name}`, planUnitRemoval(name, await fact(conn, name)));
    });
  },
};
