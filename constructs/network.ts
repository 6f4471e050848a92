import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { appOf, freeId } from "../src/app";
import { isCidr, overlaps, parseCidr, type Cidr } from "../src/cidr";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { ContainerRuntime } from "./container-runtime";

export interface NetworkProps {
  /** The network's name on the host; containers on it find each other by container name. @default - the construct id */
  readonly name?: string;
  /**
   * Its address block in CIDR notation (`10.10.0.0/24`, `fd00:10::/64`), host bits clear;
   * it must not overlap another network of the same host.
   * @default - the engine picks a free one
   */
  readonly subnet?: string;
  /** No route out of the network: containers on it reach only each other. @default false */
  readonly internal?: boolean;
  /** Labels on the network (keys starting with `drove.` are drove's own). @default {} */
  readonly labels?: Readonly<Record<string, string>>;
}

const NETWORK = Symbol.for("drove.network");
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const RESERVED = ["bridge", "host", "none", "default", "podman"];
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._\/-]{0,254}$/;

/** Label errors shared by Network and Volume. */
export function labelErrors(where: string, labels: Readonly<Record<string, string>> | undefined): string[] {
  const errors: string[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (!LABEL_KEY.test(k)) errors.push(`${where}: label key ${JSON.stringify(k)} must be letters, digits, '.', '_', '/' or '-', starting with a letter or digit`);
    else if (k.startsWith("drove.")) errors.push(`${where}: the label ${k} is drove's own; labels starting with "drove." are reserved`);
    if (typeof v !== "string" || /[\n\0]/.test(v)) errors.push(`${where}: label ${k} must be a single-line string, but ${JSON.stringify(v)} was provided`);
  }
  return errors;
}

/** The runtime a Network or Volume is created in (its scope), or a construction error. */
export function runtimeScope(scope: Construct, where: string, what: string): ContainerRuntime {
  if (!ContainerRuntime.isContainerRuntime(scope)) {
    throw new ValidationError([`${where}: a ${what} must be created in a ContainerRuntime (ContainerRuntime.docker(host).add${what}(...))`]);
  }
  return scope;
}

/**
 * A user-defined bridge network of a host's Docker or Podman. Containers on it
 * reach each other by container name (Podman with CNI needs Debian's
 * `golang-github-containernetworking-plugin-dnsname` for that). Engines cannot
 * change a network in place: a new subnet, `internal` or labels replace it,
 * and the containers on it with it. The systemd runtime has no networks (its
 * containers use the host's).
 *
 * @example
 * const docker = ContainerRuntime.docker(host);
 * const backend = docker.addNetwork("backend", { subnet: "10.10.0.0/24" });
 * docker.addContainer("api", { image, networks: [backend] });
 */
export class Network extends Construct implements IResourceConstruct {
  static isNetwork(x: unknown): x is Network {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[NETWORK] === true;
  }

  readonly runtime: ContainerRuntime;
  /** The network's name on the host. */
  readonly networkName: string;
  readonly subnet: string | undefined;
  readonly internal: boolean;
  private readonly _labels: Record<string, string>;
  private readonly cidr: Cidr | undefined;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, freeId(scope, id));
    Object.defineProperty(this, NETWORK, { value: true });
    markResource(this);
    const where = this.node.path;
    const runtime = runtimeScope(scope, where, "Network");
    const errors: string[] = [];
    if (runtime.engine === "systemd") {
      errors.push(`${where}: the systemd runtime runs containers on the host's network, so it has no networks; run the containers that talk over a network with ContainerRuntime.docker(host) or ContainerRuntime.podman(host)`);
    } else if (runtime.engine !== "docker" && runtime.engine !== "podman") {
      errors.push(`${where}: networks are made by the docker and podman runtimes, not by ${runtime.engine}`);
    }
    const name = props.name ?? id;
    if (!NAME.test(name)) errors.push(`${where}: \`name\` must be 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit, but ${JSON.stringify(name)} was provided`);
    else if (RESERVED.includes(name)) errors.push(`${where}: \`name\` ${JSON.stringify(name)} is the engine's own network; choose another name`);
    let cidr: Cidr | undefined;
    if (props.subnet !== undefined) {
      const c = parseCidr(props.subnet);
      if (isCidr(c)) cidr = c;
      else errors.push(`${where}: \`subnet\` ${c.error}`);
    }
    errors.push(...labelErrors(where, props.labels));
    if (errors.length) throw new ValidationError(errors);
    this.runtime = runtime;
    this.networkName = name;
    this.subnet = props.subnet;
    this.internal = props.internal ?? false;
    this._labels = { ...(props.labels ?? {}) };
    this.cidr = cidr;
    // One name per runtime, and no two overlapping subnets on one host (whichever engine made them).
    this.node.addValidation({
      validate: () => {
        const all = this.runtime.host.node.findAll().filter(Network.isNetwork);
        const earlier = all.slice(0, all.indexOf(this));
        const msgs: string[] = [];
        const same = earlier.filter((o) => o.runtime === this.runtime && o.networkName === this.networkName);
        if (same.length) msgs.push(`network name ${this.networkName} is also used by ${same.map((o) => o.node.path).join(", ")} on the same runtime; give one of them another \`name\``);
        if (this.cidr) {
          for (const o of earlier) {
            if (o.cidr && overlaps(o.cidr, this.cidr)) msgs.push(`subnet ${this.subnet} overlaps ${o.node.path}'s subnet ${o.subnet} on the same host; give one of them a block that does not overlap`);
          }
        }
        return msgs;
      },
    });
  }

  /** A copy of the network's labels. */
  get labels(): Record<string, string> {
    return { ...this._labels };
  }

  private resolveRegistered!: (r: pulumi.CustomResource) => void;
  private readonly registered = new Promise<pulumi.CustomResource>((res) => (this.resolveRegistered = res));

  /** @internal Called by App.synth once the resource is registered. */
  _registered(r: pulumi.CustomResource): void {
    this.resolveRegistered(r);
  }

  /**
   * @internal The name as an input that depends on this network's resource: a
   * container given it is replaced along with the network.
   */
  _nameInput(): pulumi.Input<string> {
    if (appOf(this).synthOut !== undefined) return this.networkName;
    return pulumi.output(this.registered.then((r) => (r as unknown as { name: pulumi.Output<string> }).name));
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:Network",
      parent: this.runtime.host,
      dependsOn: [this.runtime, ...this.node.dependencies],
      props: {
        connection: this.runtime.host.connection,
        engine: this.runtime.engine,
        name: this.networkName,
        driver: "bridge",
        ...(this.subnet !== undefined ? { subnet: this.subnet } : {}),
        internal: this.internal,
        labels: this.labels,
      },
      outputs: ["subnets"],
    };
  }
}
