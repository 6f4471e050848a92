import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, runChecked, withHost, type Failures } from "../common";
import { sh } from "../../src/quote";
import type { SshTarget } from "../../src/ssh";
import type { Step } from "../file/operations";
import type { Engine } from "./facts";
import { NAMESPACE } from "./containerd";

export const ENGINES: readonly Engine[] = ["docker", "podman", "systemd", "containerd"];

export interface RuntimeInputs {
  readonly connection: SshTarget;
  readonly engine: Engine;
}

export interface RuntimeOutputs extends RuntimeInputs {
  readonly version: string;
  /**
   * What the version was read from: the engine daemon's process (pid and
   * start time) or, for an engine without a daemon, its binary (size,
   * modification time, inode). The version is asked again only when it changes.
   */
  readonly versionStamp?: string;
  /** The engine's service was already enabled and running before drove: destroy leaves it so. */
  readonly adopted: boolean;
  readonly active: boolean;
}

/** The systemd units that make an engine serve (Podman has no daemon). */
export function engineUnits(engine: Engine): string[] {
  if (engine === "docker") return ["docker.socket", "docker.service"];
  if (engine === "containerd") return ["containerd.service"];
  return [];
}

export interface RuntimeFact {
  readonly installed: boolean;
  readonly active: boolean;
  readonly version: string;
  readonly versionStamp?: string;
}

/** The programs an engine needs on the host. */
export function engineTools(engine: Engine): string[] {
  if (engine === "systemd") return ["runc", "skopeo", "umoci"];
  if (engine === "containerd") return ["containerd", "ctr"];
  return [engine];
}

/** The Debian packages that bring an engine's tools. */
function enginePackages(engine: Engine): string[] {
  if (engine === "docker") return ["docker.io"];
  if (engine === "containerd") return ["containerd"];
  return engineTools(engine);
}

/** A stamp as `runtimeFactCommand` prints it: digits and dots, never one of a stopped daemon (pid 0). */
const STAMP = /^(?!0\.)\d+\.\d+(\.\d+)?$/;

/**
 * One probe: installed, active, version, and what the version was read from.
 * Asking an engine its version starts a Go binary (and, for Docker, a call to
 * its daemon): the largest part of a no-change run's work on a machine. So
 * with `known` (the last read) the version is asked again only when the
 * daemon restarted or the binary changed.
 */
export function runtimeFactCommand(engine: Engine, known?: Pick<RuntimeFact, "version" | "versionStamp">) {
  const units = engineUnits(engine);
  const reuse = known?.versionStamp && STAMP.test(known.versionStamp) && known.version && known.version !== "unknown" ? known : undefined;
  const versioned = (stamp: ReturnType<typeof sh>, ask: ReturnType<typeof sh>) =>
    sh`${stamp}; case "$s" in ${reuse ? sh`${reuse.versionStamp!}) echo ${reuse.version};;` : sh``} *) ${ask};; esac; echo "$s"`;
  const binaryStamp = (tool: string) => sh`s=$(p=$(command -v ${tool}) && stat -L -c %s.%Y.%i "$p" 2>/dev/null)`;
  // One systemctl call for the unit's state and its process: "active" (as `is-active` says it), then the stamp in $s.
  const daemon = (unit: string) =>
    sh`a=inactive; pid=0; t=0; for kv in $(systemctl show -p ActiveState -p MainPID -p ExecMainStartTimestampMonotonic ${unit} 2>/dev/null); do case "$kv" in ActiveState=*) a=\${kv#*=};; MainPID=*) pid=\${kv#*=};; ExecMainStartTimestampMonotonic=*) t=\${kv#*=};; esac; done; echo "$a"; s="$pid.$t"`;
  if (engine === "systemd") {
    return sh`if command -v runc >/dev/null && command -v skopeo >/dev/null && command -v umoci >/dev/null && [ -d /run/systemd/system ]; then echo installed; else echo missing; fi; echo active; ${versioned(
      binaryStamp("runc"),
      sh`runc --version 2>/dev/null | head -n1 | grep -oE '[0-9]+[.][0-9]+([.][0-9]+)?' || echo unknown`,
    )}`;
  }
  if (engine === "containerd") {
    // `containerd --version` prints "containerd github.com/containerd/containerd 1.6.20~ds1 <commit>".
    return sh`if command -v containerd >/dev/null && command -v ctr >/dev/null; then echo installed; else echo missing; fi; ${versioned(
      daemon(units[0]),
      sh`containerd --version 2>/dev/null | awk '{ print $3 }' | grep . || echo unknown`,
    )}`;
  }
  return sh`if command -v ${engine} >/dev/null; then echo installed; else echo missing; fi; ${versioned(
    units.length ? daemon(units[units.length - 1]) : sh`echo active; ${binaryStamp(engine)}`,
    sh`timeout 20 ${engine} version --format '{{.Server.Version}}' 2>/dev/null || timeout 20 ${engine} version --format '{{.Version}}' 2>/dev/null || echo unknown`,
  )}`;
}

export function parseRuntimeFact(stdout: string): RuntimeFact {
  const [installed, active, version, stamp] = stdout.trim().split("\n");
  const versionStamp = stamp?.trim();
  return {
    installed: installed === "installed",
    active: active === "active",
    version: (version ?? "unknown").trim(),
    ...(versionStamp && STAMP.test(versionStamp) ? { versionStamp } : {}),
  };
}

export function planRuntime(engine: Engine, fact: RuntimeFact): Step[] {
  const units = engineUnits(engine);
  if (!fact.installed) {
    const pkgs = enginePackages(engine);
    throw new Error(
      `${engineTools(engine).join(", ")} ${engine === "systemd" ? "(and systemd as init) are" : engineTools(engine).length > 1 ? "are" : "is"} not installed; add ${pkgs.map((p) => `host.addPackage(${JSON.stringify(p)})`).join(", ")} or use an image that has ${pkgs.length > 1 ? "them" : "it"}`,
    );
  }
  if (fact.active || units.length === 0) return [];
  return [{ description: `enable and start ${units.join(", ")}`, command: sh`systemctl enable --now ${units}` }];
}

export function planRuntimeRemoval(engine: Engine, adopted: boolean): Step[] {
  const units = engineUnits(engine);
  // containerd keeps drove's namespace until it is removed; it is removable only once empty.
  const steps: Step[] =
    engine === "containerd" ? [{ description: `remove containerd's ${NAMESPACE} namespace`, command: sh`{ ctr namespaces remove ${NAMESPACE} >/dev/null 2>&1 || true; }` }] : [];
  if (adopted || units.length === 0) return steps;
  return [...steps, { description: `stop and disable ${units.join(", ")}`, command: sh`systemctl disable --now ${units}` }];
}

async function fact(conn: Parameters<Parameters<typeof withHost>[1]>[0], engine: Engine, known?: Pick<RuntimeFact, "version" | "versionStamp">): Promise<RuntimeFact> {
  return parseRuntimeFact(await runChecked(conn, `inspect the ${engine} engine`, { command: runtimeFactCommand(engine, known), probe: true }));
}

/** The outputs' view of a fact (its stamp only when it has one). */
function versionOf(f: RuntimeFact): Pick<RuntimeOutputs, "version" | "versionStamp"> {
  return { version: f.version, ...(f.versionStamp ? { versionStamp: f.versionStamp } : {}) };
}

/** A container engine on a host, ready to run containers. */
export const runtimeKind: ResourceKind<RuntimeInputs, RuntimeOutputs> = {
  token: "drove:index:ContainerRuntime",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: ["version", "versionStamp", "adopted"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    if (!ENGINES.includes(news.engine as Engine)) {
      failures.push({ property: "engine", reason: `\`engine\` must be one of ${ENGINES.join(", ")}, but ${JSON.stringify(news.engine)} was provided` });
    }
    return { inputs: { connection, engine: news.engine as Engine }, failures };
  },

  diff(olds, news) {
    const d = diffInputs(olds as never, news as never, ["engine"], [...this.outputOnly, "active"]);
    return olds.active === false ? { ...d, changes: true } : d;
  },

  async create(inputs) {
    return withHost(inputs.connection, async (conn) => {
      const before = await fact(conn, inputs.engine);
      await applySteps(conn, `start the ${inputs.engine} engine`, planRuntime(inputs.engine, before));
      const after = await fact(conn, inputs.engine);
      return { id: inputs.engine, outs: { ...inputs, ...versionOf(after), adopted: before.active && engineUnits(inputs.engine).length > 0, active: after.active } };
    });
  },

  async read(_id, props) {
    return withHost(props.connection, async (conn) => {
      const f = await fact(conn, props.engine, props);
      if (!f.installed) return undefined;
      const { version: _v, versionStamp: _s, adopted: _a, active: _x, ...inputs } = props;
      const { versionStamp: _old, ...rest } = props;
      return { outs: { ...rest, ...versionOf(f), active: f.active }, inputs: inputs as RuntimeInputs };
    });
  },

  async update(_id, olds, news) {
    return withHost(news.connection, async (conn) => {
      await applySteps(conn, `start the ${news.engine} engine`, planRuntime(news.engine, await fact(conn, news.engine)));
      const after = await fact(conn, news.engine);
      return { ...news, ...versionOf(after), adopted: olds.adopted, active: after.active };
    });
  },

  async delete(_id, props) {
    await withHost(props.connection, (conn) => applySteps(conn, `stop the ${props.engine} engine`, planRuntimeRemoval(props.engine, props.adopted)));
  },
};
