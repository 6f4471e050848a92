import type * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { ContainerRuntime } from "./container-runtime";
import { imageOf } from "./image";
import { Network } from "./network";
import { Volume } from "./volume";
import { freeId } from "../src/app";

export interface PortMappingProps {
  /** Port on the host. */
  readonly host: number;
  /** Port inside the container. */
  readonly container: number;
  /** @default "tcp" */
  readonly protocol?: "tcp" | "udp";
}

/** A mount: a host path (`source`) or a named Volume of the same runtime (`volume`), one of the two. */
export interface VolumeMountProps {
  /** Absolute path on the host (a bind mount). */
  readonly source?: string;
  /** A named Volume of this container's runtime (`runtime.addVolume(...)`): its data outlives the container. */
  readonly volume?: Volume;
  /** Absolute path in the container. */
  readonly target: string;
  /** @default false */
  readonly readOnly?: boolean;
}

export interface ContainerProps {
  /** Image reference; pin by digest (`registry/name@sha256:...`) so hosts run exactly what was built. */
  readonly image: pulumi.Input<string>;
  /** The container's name on the host. @default - the construct id */
  readonly name?: string;
  /** Command and arguments, replacing the image's. @default - the image's */
  readonly command?: readonly string[];
  /** Environment variables; values may be Pulumi secrets (they never reach a command line). @default {} */
  readonly env?: Readonly<Record<string, pulumi.Input<string>>>;
  /** Published ports. @default [] */
  readonly ports?: readonly PortMappingProps[];
  /** Host paths and named Volumes mounted into the container. @default [] */
  readonly volumes?: readonly VolumeMountProps[];
  /** User-defined Networks of the same runtime the container joins (and on which others reach it by its name). @default - the engine's default network */
  readonly networks?: readonly Network[];
  /** @default "always" */
  readonly restart?: "no" | "always" | "on-failure" | "unless-stopped";
  /** Labels on the container. @default {} */
  readonly labels?: Readonly<Record<string, string>>;
  /** @default true */
  readonly running?: boolean;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const IMAGE = /^[a-z0-9][a-z0-9._\-/:@]*$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A container run by a host's ContainerRuntime. Containers are immutable:
 * changing the image, command, env, ports, volumes or labels replaces it
 * (the old one is removed first); `running` and `restart` change in place.
 */
export class Container extends Construct implements IResourceConstruct {
  readonly runtime: ContainerRuntime;
  readonly containerName: string;
  private readonly props: ContainerProps;

  constructor(scope: Construct, id: string, props: ContainerProps) {
    super(scope, freeId(scope, id));
    markResource(this);
    const where = this.node.path;
    let runtime: ContainerRuntime | undefined;
    for (let s: Construct | undefined = scope; s; s = s.node.scope as Construct | undefined) {
      if (ContainerRuntime.isContainerRuntime(s)) {
        runtime = s;
        break;
      }
    }
    if (!runtime) throw new ValidationError([`${where}: a Container must be created inside a ContainerRuntime (ContainerRuntime.docker(host).addContainer(...))`]);
    const errors: string[] = [];
    const name = props.name ?? id;
    if (!NAME.test(name)) errors.push(`${where}: \`name\` must be letters, digits, '_', '.' or '-', starting with a letter or digit, but ${JSON.stringify(name)} was provided`);
    if (props.image === undefined || props.image === "") errors.push(`${where}: \`image\` is required`);
    // The provider's own rules, checked here too, so a bad value fails at construction and not at preview.
    else if (typeof props.image === "string" && !IMAGE.test(props.image)) errors.push(`${where}: \`image\` must be an image reference like registry:5000/web@sha256:..., but ${JSON.stringify(props.image)} was provided`);
    for (const [k, v] of Object.entries(props.env ?? {})) {
      if (!ENV_KEY.test(k)) errors.push(`${where}: environment variable name ${JSON.stringify(k)} must be letters, digits and '_', not starting with a digit`);
      // Values travel as KEY=value lines of an env file: a line break would start another variable, a CR at a line's end is dropped.
      else if (typeof v === "string" && /[\n\r\0]/.test(v)) errors.push(`${where}: environment variable ${k} must be a single line, without CR, LF or NUL characters, but ${JSON.stringify(v)} was provided`);
    }
    for (const [k, v] of Object.entries(props.labels ?? {})) {
      // `--label key=value`: the engine splits at the first '=', Docker refuses whitespace in a key, and no NUL byte passes a command line.
      if (!/^[^=\s\0]+$/.test(k)) errors.push(`${where}: label key ${JSON.stringify(k)} must be non-empty, without whitespace, '=' or NUL characters`);
      else if (typeof v !== "string" || v.includes("\0")) errors.push(`${where}: label ${k} must be a string without NUL characters, but ${JSON.stringify(v)} was provided`);
    }
    for (const a of props.command ?? []) {
      if (typeof a !== "string" || a.includes("\0")) errors.push(`${where}: \`command\` must list strings without NUL characters (no command line can carry one), but ${JSON.stringify(a)} was provided`);
    }
    for (const p of props.ports ?? []) {
      for (const n of [p.host, p.container]) {
        if (!Number.isInteger(n) || n < 1 || n > 65535) errors.push(`${where}: ports must be between 1 and 65535, but ${n} was provided`);
      }
    }
    if (runtime.engine === "systemd" || runtime.engine === "containerd") {
      for (const p of props.ports ?? []) {
        if (p.host !== p.container) errors.push(`${where}: the ${runtime.engine} runtime runs containers on the host's network, so port ${p.host} must equal the container's port ${p.container}`);
      }
    }
    if (runtime.engine === "containerd") {
      // containerd 1.6's restart monitor restarts a stopped task whatever its exit status: it cannot honour on-failure.
      if (props.restart === "on-failure") errors.push(`${where}: the containerd runtime restarts a stopped container whatever its exit status, so \`restart\` must be "always", "unless-stopped" or "no", but "on-failure" was provided`);
      for (const k of Object.keys(props.labels ?? {})) {
        if (["drove.spec", "drove.instance", "drove.ports"].includes(k) || k.startsWith("containerd.io/restart.")) errors.push(`${where}: the label ${k} is drove's or containerd's restart monitor's own; use another key`);
      }
    }
    for (const v of props.volumes ?? []) {
      if ((v.source === undefined) === (v.volume === undefined)) errors.push(`${where}: the mount at ${v.target} must give either \`source\` (a host path) or \`volume\` (a Volume), not ${v.source === undefined ? "neither" : "both"}`);
      else if (v.volume !== undefined && !Volume.isVolume(v.volume)) errors.push(`${where}: the mount at ${v.target} must name a Volume (runtime.addVolume(...)) as \`volume\``);
      else if (v.volume !== undefined && v.volume.runtime !== runtime) errors.push(`${where}: volume ${v.volume.node.path} belongs to another runtime (${v.volume.runtime.node.path}); a container mounts only volumes of its own runtime (${runtime.node.path})`);
      if ((v.source !== undefined && !v.source.startsWith("/")) || !v.target.startsWith("/")) errors.push(`${where}: volume ${v.source ?? v.volume?.volumeName} -> ${v.target} must use absolute paths`);
    }
    if (props.networks?.length && runtime.engine === "systemd") {
      errors.push(`${where}: the systemd runtime runs containers on the host's network, so it cannot join networks; remove \`networks\`, or run this container with ContainerRuntime.docker(host) or ContainerRuntime.podman(host)`);
    }
    for (const n of props.networks ?? []) {
      if (!Network.isNetwork(n)) errors.push(`${where}: \`networks\` must list Networks (runtime.addNetwork(...))`);
      else if (n.runtime !== runtime) errors.push(`${where}: network ${n.node.path} belongs to another runtime (${n.runtime.node.path}); a container joins only networks of its own runtime (${runtime.node.path})`);
    }
    // Docker refuses a one-character name (its pattern is [a-zA-Z0-9][a-zA-Z0-9_.-]+).
    if (runtime.engine === "docker" && NAME.test(name) && name.length < 2) errors.push(`${where}: \`name\` must be at least 2 characters for Docker, but ${JSON.stringify(name)} was provided; give a longer \`name\``);
    if (errors.length) throw new ValidationError(errors);
    this.runtime = runtime;
    this.containerName = name;
    this.props = props;
    // Two containers cannot share a name or a host port on one host.
    this.node.addValidation({
      validate: () => {
        const others = this.runtime.host.node.findAll().filter((c): c is Container => c instanceof Container && c !== this);
        const msgs: string[] = [];
        const sameName = others.filter((o) => o.containerName === this.containerName && o.runtime.engine === this.runtime.engine);
        if (sameName.length) msgs.push(`container name ${this.containerName} is also used by ${sameName.map((o) => o.node.path).join(", ")}`);
        for (const p of this.props.ports ?? []) {
          const clash = others.filter((o) => (o.props.ports ?? []).some((q) => q.host === p.host && (q.protocol ?? "tcp") === (p.protocol ?? "tcp")));
          if (clash.length) msgs.push(`host port ${p.host}/${p.protocol ?? "tcp"} is also published by ${clash.map((o) => o.node.path).join(", ")}`);
        }
        return msgs;
      },
    });
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    const p = this.props;
    return {
      type: "drove:index:Container",
      parent: this.runtime.host,
      // `container.node.addDependency(file)` counts too (e.g. a registry's trust settings written before the pull).
      dependsOn: [this.runtime, ...(imageOf(p.image) ? [imageOf(p.image)!] : []), ...(p.networks ?? []), ...(p.volumes ?? []).flatMap((v) => (v.volume ? [v.volume] : [])), ...this.node.dependencies],
      props: {
        connection: this.runtime.host.connection,
        engine: this.runtime.engine,
        name: this.containerName,
        image: p.image,
        ...(p.command !== undefined ? { command: [...p.command] } : {}),
        env: { ...(p.env ?? {}) },
        ports: (p.ports ?? []).map((x) => ({ host: x.host, container: x.container, protocol: x.protocol ?? "tcp" })),
        // A named volume's source is its name (the engines' own convention), as an input that follows the Volume's resource.
        volumes: (p.volumes ?? []).map((v) => ({ source: v.volume ? v.volume._nameInput() : v.source, target: v.target, readOnly: v.readOnly ?? false })),
        ...(p.networks?.length ? { networks: p.networks.map((n) => n._nameInput()) } : {}),
        restart: p.restart ?? "always",
        labels: { ...(p.labels ?? {}) },
        running: p.running ?? true,
      },
    };
  }
}
