import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { Container, type ContainerProps } from "./container";
import { Image, type ImageProps } from "./image";
import { Network, type NetworkProps } from "./network";
import { Volume, type VolumeProps } from "./volume";
import { Host } from "./host";
import { freeId } from "../src/app";

/** The container engines drove drives. */
export type ContainerEngine = "docker" | "podman" | "systemd" | "containerd";

export interface ContainerRuntimeProps {
  /** Which engine runs this host's containers. */
  readonly engine: ContainerEngine;
}

const RUNTIME = Symbol.for("drove.container-runtime");

/**
 * A container engine on a host, made ready to run containers (Docker's
 * socket and service, or containerd's service, enabled and started; Podman
 * needs no daemon). Choose one per host: `ContainerRuntime.docker(host)`,
 * `ContainerRuntime.podman(host)`, `ContainerRuntime.systemd(host)`,
 * `ContainerRuntime.containerd(host)`.
 * An engine already running before drove is adopted: destroy leaves it running.
 */
export class ContainerRuntime extends Construct implements IResourceConstruct {
  static isContainerRuntime(x: unknown): x is ContainerRuntime {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[RUNTIME] === true;
  }

  /** Docker (dockerd + containerd) on the host. */
  static docker(host: Host, id = "docker"): ContainerRuntime {
    return new ContainerRuntime(host, id, { engine: "docker" });
  }

  /**
   * No engine at all, as CoreOS ran rkt: each container is a systemd unit
   * running runc on an OCI bundle (images fetched by skopeo, unpacked by
   * umoci). Containers use the host's network.
   */
  static systemd(host: Host, id = "systemd"): ContainerRuntime {
    return new ContainerRuntime(host, id, { engine: "systemd" });
  }

  /**
   * containerd on its own (no Docker), driven by `ctr` in drove's own
   * containerd namespace `drove`. Containers use the host's network (no CNI),
   * so a published port must equal the container's port; containerd's
   * restart monitor keeps them running (`restart` is "always",
   * "unless-stopped" or "no"); images are pulled with the registry settings
   * in /etc/containerd/certs.d.
   */
  static containerd(host: Host, id = "containerd"): ContainerRuntime {
    return new ContainerRuntime(host, id, { engine: "containerd" });
  }

  /** Podman: daemonless, one process tree per container. */
  static podman(host: Host, id = "podman"): ContainerRuntime {
    return new ContainerRuntime(host, id, { engine: "podman" });
  }

  readonly host: Host;
  readonly engine: ContainerEngine;

  constructor(scope: Construct, id: string, props: ContainerRuntimeProps) {
    super(scope, freeId(scope, id));
    Object.defineProperty(this, RUNTIME, { value: true });
    markResource(this);
    const host = Host.of(scope);
    if (!host) throw new ValidationError([`${this.node.path}: a ContainerRuntime must be created inside a Host`]);
    if (!["docker", "podman", "systemd", "containerd"].includes(props.engine)) {
      throw new ValidationError([`${this.node.path}: \`engine\` must be "docker", "podman", "systemd" or "containerd", but ${JSON.stringify(props.engine)} was provided`]);
    }
    this.host = host;
    this.engine = props.engine;
  }

  /** Builds an image on this host and pushes it (docker and podman runtimes). */
  buildImage(id: string, props: ImageProps): Image {
    return new Image(this, id, props);
  }

  /** A user-defined bridge network of this runtime (docker and podman; the systemd runtime has none). */
  addNetwork(id: string, props: NetworkProps = {}): Network {
    return new Network(this, id, props);
  }

  /** A named volume of this runtime, whose data outlives the containers that mount it. */
  addVolume(id: string, props: VolumeProps = {}): Volume {
    return new Volume(this, id, props);
  }

  /** Runs a container on this runtime. */
  addContainer(id: string, props: ContainerProps): Container {
    return new Container(this, id, props);
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:ContainerRuntime",
      parent: this.host,
      props: { connection: this.host.connection, engine: this.engine },
      outputs: ["version", "adopted", "active"],
    };
  }
}
