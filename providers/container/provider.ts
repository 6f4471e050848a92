import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, UNKNOWN, withHost, type Failures } from "../common";
import { HostError } from "../../src/errors";
import { sh } from "../../src/quote";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import { containerFactCommand, parseContainerFact, type CliEngine, type ContainerFact, type Engine, type PortMapping, type VolumeMount } from "./facts";
import {
  installSteps,
  parseSystemdCrash,
  parseSystemdFact,
  prepareCommand,
  runtimeSpec,
  systemdCrashCommand,
  systemdFactCommand,
  systemdRemovalSteps,
  systemdStateSteps,
  unitFile,
  unitName,
  type SystemdContainerFact,
} from "./systemd";
import { randomUUID } from "node:crypto";
import { belongsToAnother, planContainer, planContainerRemoval, SPEC_LABEL, specDigest, type ContainerDesired, type RestartPolicy } from "./operations";
import { ENGINES } from "./runtime";
import {
  CONTAINERD_RESTART,
  containerdCrashCommand,
  containerdFactCommand,
  logPath,
  parseContainerdCrash,
  parseContainerdFact,
  parseRegistryTrust,
  planContainerd,
  planContainerdRemoval,
  registryTrustCommand,
  reservedLabel,
} from "./containerd";
import type { Step } from "../file/operations";

export interface ContainerInputs {
  readonly connection: SshTarget;
  readonly engine: Engine;
  readonly name: string;
  readonly image: string;
  readonly command?: string[];
  readonly env: Record<string, string>;
  readonly ports: PortMapping[];
  readonly volumes: VolumeMount[];
  /** User-defined networks the container joins (docker, podman); absent: the engine's default. */
  readonly networks?: string[];
  readonly restart: RestartPolicy;
  readonly labels: Record<string, string>;
  readonly running: boolean;
  /**
   * systemd + runc only: the unit file drove writes for the container, set by `check`, so that a
   * unit edited on the machine (or written by an earlier drove) shows in a diff and is rewritten.
   */
  readonly unitFile?: string;
}

export interface ContainerOutputs extends ContainerInputs {
  /** Which container on the machine this resource made (see `belongsToAnother`). */
  readonly instance: string;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/** A named volume's name, where a mount's source is not a host path. */
const NAMED_VOLUME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}$/;
const RESTART: readonly RestartPolicy[] = ["no", "always", "on-failure", "unless-stopped"];
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function desired(i: ContainerInputs): ContainerDesired {
  const { instance: _i, unitFile: _u, ...rest } = i as ContainerInputs & { instance?: string };
  return rest;
}

async function fact(conn: SshConnection, engine: "systemd", name: string): Promise<SystemdContainerFact>;
async function fact(conn: SshConnection, engine: Engine, name: string): Promise<ContainerFact>;
async function fact(conn: SshConnection, engine: Engine, name: string): Promise<ContainerFact> {
  if (engine === "systemd") return parseSystemdFact(await runChecked(conn, `inspect container ${name}`, { command: systemdFactCommand(name), probe: true }));
  if (engine === "containerd") return parseContainerdFact(await runChecked(conn, `inspect container ${name}`, { command: containerdFactCommand(name), probe: true }));
  return parseContainerFact(await runChecked(conn, `inspect container ${name}`, { command: containerFactCommand(engine, name), probe: true }));
}

/**
 * Brings the machine to the container's desired state; returns whether it made it anew,
 * and the steps to run once it is seen running (containerd's restart monitor is armed then).
 */
async function apply(conn: SshConnection, i: ContainerInputs, instance: string): Promise<{ changed: boolean; made: boolean; arm?: Step[] }> {
  const d = { ...desired(i), instance };
  if (i.engine === "systemd") {
    const before = await fact(conn, "systemd", i.name);
    if (before.state === "absent" || before.labels[SPEC_LABEL] !== specDigest(d)) {
      const base = JSON.parse(await runChecked(conn, `fetch image ${i.image} for container ${i.name}`, { command: prepareCommand(d) }));
      for (const step of installSteps(d, runtimeSpec(base, d))) await runChecked(conn, step.description, step);
      return { changed: true, made: true };
    }
    const steps = systemdStateSteps(d, before);
    for (const step of steps) await runChecked(conn, step.description, step);
    return { changed: steps.length > 0, made: false };
  }
  const before = await fact(conn, i.engine, i.name);
  if (i.engine === "containerd") {
    const trust = parseRegistryTrust(await runChecked(conn, `read the registry settings for ${i.image}`, { command: registryTrustCommand(i.image), probe: true }), i.image);
    const plan = planContainerd(d, before, trust);
    for (const step of plan.steps) await runChecked(conn, step.description, step);
    return { changed: plan.steps.length > 0, made: plan.steps.some((s) => s.stdin !== undefined), arm: plan.arm };
  }
  const steps = planContainer(d as ContainerDesired & { engine: CliEngine }, before);
  await applySteps(conn, `run container ${i.name}`, steps);
  return { changed: steps.length > 0, made: steps.some((s) => s.stdin !== undefined) };
}

/**
 * Probes until `told` holds (at most 6 more times, 400 ms apart: a crash loop's back-off between
 * runs); returns the last answer. `first` is an answer already in hand.
 */
async function lookAgain<T>(probe: () => Promise<T>, told: (t: T) => boolean, first?: T): Promise<T> {
  let seen = first ?? (await probe());
  for (let n = 0; n < 6 && !told(seen); n++) {
    await new Promise((r) => setTimeout(r, 400));
    seen = await probe();
  }
  return seen;
}

async function converge(i: ContainerInputs, instance: string): Promise<void> {
  await withHost(i.connection, async (conn) => {
    const { changed, made, arm = [] } = await apply(conn, i, instance);
    if (!i.running || !changed) return;
    // A container that exits at once, or loops restarting, is a failure to report, with what it said.
    await new Promise((r) => setTimeout(r, 1500));
    const after = await fact(conn, i.engine, i.name);
    if (i.engine === "containerd" && after.state === "present" && !after.running) {
      const crash = parseContainerdCrash((await conn.exec(containerdCrashCommand(i.name))).stdout);
      throw new HostError(describeTarget(conn.target), `run container ${i.name}`, `it exited with status ${crash.exitCode}: ${crash.lines.join(" | ")}`, {
        fixes: ["check its command and image", `read ${logPath(i.name)} on the machine`],
      });
    }
    if (after.state === "present" && (!after.running || after.restarting || (made && after.restarts > 0))) {
      const fixes = ["check its command and image", `read \`${i.engine === "systemd" ? `journalctl -u ${unitName(i.name)}` : `${i.engine} logs ${i.name}`}\` on the machine`];
      if (i.engine === "systemd") {
        // Seen running again after a restart, the unit holds no exit; look again, as it waits RestartSec between
        // runs. Look again too while the journal shows none of its lines: journald may lag behind.
        const crash = await lookAgain(
          async () => parseSystemdCrash((await conn.exec(systemdCrashCommand(i.name))).stdout),
          (c) => c.status !== undefined && c.lines.length > 0,
        );
        const status = crash.status ?? `status unknown (restarted ${after.restarts} times)`;
        throw new HostError(describeTarget(conn.target), `run container ${i.name}`, `it exited with ${status}: ${crash.lines.join(" | ")}`, { fixes });
      }
      // Seen running again after a restart, the engine shows no exit status (it resets it on start);
      // look again briefly, as a crash loop spends its back-off between runs.
      const seen = await lookAgain(
        () => fact(conn, i.engine, i.name),
        (f) => f.state !== "present" || !f.running || f.restarting || f.exitCode !== 0,
        after,
      );
      const exitCode = seen.state === "present" ? seen.exitCode : after.exitCode;
      const logs = await conn.exec(sh`${i.engine} logs --tail 5 ${i.name} 2>&1`);
      const status = exitCode !== 0 || after.restarts === 0 ? `status ${exitCode}` : `status unknown (restarted ${after.restarts} times)`;
      throw new HostError(describeTarget(conn.target), `run container ${i.name}`, `it exited with ${status}: ${logs.stdout.trim().split("\n").slice(-5).join(" | ")}`, { fixes });
    }
    for (const step of arm) await runChecked(conn, step.description, step);
  });
}

/** A container on a host, run by Docker, Podman, or systemd + runc (no daemon). */
export const containerKind: ResourceKind<ContainerInputs, ContainerOutputs> = {
  token: "drove:index:Container",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["instance"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const engine = news.engine as Engine;
    if (!ENGINES.includes(engine)) failures.push({ property: "engine", reason: `\`engine\` must be one of ${ENGINES.join(", ")}, but ${JSON.stringify(news.engine)} was provided` });
    if (!isUnknown(news.name) && (typeof news.name !== "string" || !NAME.test(news.name))) {
      failures.push({ property: "name", reason: `\`name\` must be letters, digits, '_', '.' or '-' (up to 128), starting with a letter or digit, but ${JSON.stringify(news.name)} was provided` });
    }
    if (!isUnknown(news.image) && (typeof news.image !== "string" || !/^[a-z0-9][a-z0-9._\-/:@]*$/.test(news.image))) {
      failures.push({ property: "image", reason: `\`image\` must be an image reference like registry:5000/web@sha256:..., but ${JSON.stringify(news.image)} was provided` });
    }
    const env = (news.env ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(env)) {
      if (!ENV_KEY.test(k)) failures.push({ property: "env", reason: `environment variable name ${JSON.stringify(k)} must be letters, digits and '_', not starting with a digit` });
      if (!isUnknown(v) && (typeof v !== "string" || /[\r\n\0]/.test(v))) failures.push({ property: "env", reason: `environment variable ${k} must be a single line, without CR, LF or NUL characters (an env file line drops a CR at its end)` });
    }
    const restart = (news.restart ?? "always") as RestartPolicy;
    if (!RESTART.includes(restart)) failures.push({ property: "restart", reason: `\`restart\` must be one of ${RESTART.join(", ")}, but ${JSON.stringify(news.restart)} was provided` });
    const ports = ((news.ports ?? []) as Partial<PortMapping>[]).map((p) => ({ host: Number(p.host), container: Number(p.container), protocol: p.protocol ?? "tcp" })) as PortMapping[];
    for (const p of ports) {
      if (![p.host, p.container].every((n) => Number.isInteger(n) && n > 0 && n < 65536)) failures.push({ property: "ports", reason: `ports must be between 1 and 65535, but ${JSON.stringify(p)} was provided` });
    }
    ports.sort((a, b) => a.host - b.host || a.container - b.container);
    if ((engine === "systemd" || engine === "containerd") && ports.some((p) => p.host !== p.container)) {
      failures.push({ property: "ports", reason: `the ${engine} engine runs containers on the host's network: a published port must equal the container's port (host: 8080, container: 8080)` });
    }
    if (engine === "containerd" && !(CONTAINERD_RESTART as readonly string[]).includes(restart)) {
      failures.push({
        property: "restart",
        reason: `containerd's restart monitor restarts every stopped task whatever its exit status, so \`restart\` must be one of ${CONTAINERD_RESTART.join(", ")} on the containerd engine, but ${JSON.stringify(restart)} was provided`,
      });
    }
    const volumes = ((news.volumes ?? []) as Partial<VolumeMount>[]).map((v) => ({ source: String(v.source), target: String(v.target), readOnly: Boolean(v.readOnly) }));
    for (const v of volumes) {
      // A source is a host path, or a named volume's name (not known yet while that volume is being replaced).
      const named = NAMED_VOLUME.test(v.source) || isUnknown(v.source);
      if ((!v.source.startsWith("/") && !named) || !v.target.startsWith("/") || v.source.includes(":") || v.target.includes(":")) {
        failures.push({ property: "volumes", reason: `volume ${JSON.stringify(v)} must map an absolute host path (or a named volume) to an absolute container path, without ':'` });
      } else if (named && !isUnknown(v.source) && !["docker", "podman", "systemd"].includes(engine)) {
        failures.push({ property: "volumes", reason: `named volumes (${v.source}) are kept by the docker, podman and systemd engines, not by ${engine}: mount a host path instead` });
      }
    }
    const networks = ((news.networks ?? []) as unknown[]).map((n) => n as string);
    for (const n of networks) {
      if (!isUnknown(n) && (typeof n !== "string" || !NAME.test(n))) failures.push({ property: "networks", reason: `network name ${JSON.stringify(n)} must be letters, digits, '_', '.' or '-'` });
    }
    if (networks.length && engine !== "docker" && engine !== "podman") {
      failures.push({ property: "networks", reason: `the ${engine} engine runs containers on the host's network, so a container cannot join networks there: use a docker or podman runtime` });
    }
    const labels = (news.labels ?? {}) as Record<string, string>;
    if (SPEC_LABEL in labels) failures.push({ property: "labels", reason: `the label ${SPEC_LABEL} is drove's own` });
    if (engine === "containerd") {
      for (const k of Object.keys(labels).filter((k) => k !== SPEC_LABEL && reservedLabel(k))) {
        failures.push({ property: "labels", reason: `the label ${k} is drove's or containerd's restart monitor's own: use another key` });
      }
    }
    // The unit names the image and the restart policy: unknown while either is.
    const unit = engine !== "systemd" ? undefined : [news.name, news.image, news.restart].some(isUnknown) ? UNKNOWN : unitFile({ name: news.name as string, image: news.image as string, restart });
    return {
      inputs: {
        connection,
        engine,
        name: news.name as string,
        image: news.image as string,
        ...(news.command !== undefined ? { command: news.command as string[] } : {}),
        env: env as Record<string, string>,
        ports,
        volumes,
        ...(networks.length ? { networks } : {}),
        restart,
        labels,
        running: news.running === undefined ? true : Boolean(news.running),
        ...(unit !== undefined ? { unitFile: unit } : {}),
      },
      failures,
    };
  },

  diff(olds, news) {
    const d = diffInputs(olds as never, news as never, ["engine", "name", "image", "command", "env", "ports", "volumes", "networks", "labels"], this.outputOnly);
    // The name and host ports are reused: the old container must go first.
    return { ...d, deleteBeforeReplace: (d.replaces ?? []).length > 0 };
  },

  async create(inputs) {
    const instance = randomUUID();
    await converge(inputs, instance);
    return { id: inputs.name, outs: { ...inputs, instance } };
  },

  async read(id, props) {
    return withHost(props.connection, async (conn) => {
      const f = await fact(conn, props.engine, props.name ?? id);
      if (f.state === "absent" || belongsToAnother(f, props.instance)) return undefined;
      const { instance, ...wanted } = props;
      // Unchanged since drove made it: only its state can drift. Otherwise show what it is.
      const same = f.labels[SPEC_LABEL] === specDigest(desired(wanted));
      const live: ContainerInputs = same
        ? { ...wanted, restart: f.restart as RestartPolicy, running: f.running }
        : {
            ...wanted,
            image: f.image,
            env: Object.fromEntries(Object.keys(props.env).map((k) => [k, f.env[k] ?? ""])),
            ports: [...f.ports],
            volumes: [...f.volumes],
            ...(wanted.networks ? { networks: [...(f.networks ?? [])] } : {}),
            restart: f.restart as RestartPolicy,
            labels: Object.fromEntries(Object.entries(f.labels).filter(([k]) => k in props.labels)),
            running: f.running,
          };
      const seen: ContainerInputs = props.engine === "systemd" ? { ...live, unitFile: (f as SystemdContainerFact & { state: "present" }).unit } : live;
      return { outs: { ...seen, instance }, inputs: seen };
    });
  },

  async update(_id, olds, news) {
    const instance = olds.instance ?? randomUUID();
    await converge(news, instance);
    return { ...news, instance };
  },

  async delete(id, props) {
    await withHost(props.connection, async (conn) => {
      const name = props.name ?? id;
      const f = await fact(conn, props.engine, name);
      // Only this resource's own container: a replacement may already run under the same name.
      const steps =
        props.engine === "systemd"
          ? systemdRemovalSteps(name, f, props.instance)
          : props.engine === "containerd"
            ? planContainerdRemoval(name, props.image, f, props.instance)
            : planContainerRemoval(props.engine, name, props.image, f, props.instance);
      await applySteps(conn, `remove container ${name}`, steps);
    });
  },
};
