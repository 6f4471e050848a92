import type * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { ContainerRuntime } from "./container-runtime";
import { imageOf } from "./image";

export interface PortMappingProps {
  /** Port on the host. */
  readonly host: number;
  /** Port inside the container. */
  readonly container: number;
  /** @default "tcp" */
  readonly protocol?: "tcp" | "udp";
}

export interface VolumeProps {
  /** Absolute path on the host. */
  readonly source: string;
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
  /** Host paths mounted into the container. @default [] */
  readonly volumes?: readonly VolumeProps[];
  /** @default "always" */
  readonly restart?: "no" | "always" | "on-failure" | "unless-stopped";
  /** Labels on the container. @default {} */
  readonly labels?: Readonly<Record<string, string>>;
  /** @default true */
  readonly running?: boolean;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
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
    super(scope, id);
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
    for (const k of Object.keys(props.env ?? {})) {
      if (!ENV_KEY.test(k)) errors.push(`${where}: environment variable name ${JSON.stringify(k)} must be letters, digits and '_', not starting with a digit`);
    }
    for (const p of props.ports ?? []) {
      for (const n of [p.host, p.container]) {
        if (!Number.isInteger(n) || n < 1 || n > 65535) errors.push(`${where}: ports must be between 1 and 65535, but ${n} was provided`);
      }
    }
    if (runtime.engine === "systemd") {
      for (const p of props.ports ?? []) {
        if (p.host !== p.container) errors.push(`${where}: the systemd runtime runs containers on the host's network, so port ${p.host} must equal the container's port ${p.container}`);
      }
    }
    for (const v of props.volumes ?? []) {
      if (!v.source.startsWith("/") || !v.target.startsWith("/")) errors.push(`${where}: volume ${v.source} -> ${v.target} must use absolute paths`);
    }
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
      dependsOn: [this.runtime, ...(imageOf(p.image) ? [imageOf(p.image)!] : [])],
      props: {
        connection: this.runtime.host.connection,
        engine: this.runtime.engine,
        name: this.containerName,
        image: p.image,
        ...(p.command !== undefined ? { command: [...p.command] } : {}),
        env: { ...(p.env ?? {}) },
        ports: (p.ports ?? []).map((x) => ({ host: x.host, container: x.container, protocol: x.protocol ?? "tcp" })),
        volumes: (p.volumes ?? []).map((v) => ({ source: v.source, target: v.target, readOnly: v.readOnly ?? false })),
        restart: p.restart ?? "always",
        labels: { ...(p.labels ?? {}) },
        running: p.running ?? true,
      },
    };
  }
}
