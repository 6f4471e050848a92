import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { appOf, freeId } from "../src/app";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import type { ContainerRuntime } from "./container-runtime";
import { labelErrors, runtimeScope } from "./network";

export interface VolumeProps {
  /** The volume's name on the host. @default - the construct id */
  readonly name?: string;
  /** Labels on the volume (keys starting with `drove.` are drove's own). @default {} */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A bind mount of a host path, for `ContainerProps.volumes`. */
export interface HostPathMount {
  /** Absolute path on the host. */
  readonly source: string;
}

const VOLUME = Symbol.for("drove.volume");
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}$/;

/**
 * A named volume: data that outlives the containers mounting it (a new image
 * replaces the container, not the volume). Docker's and Podman's own volumes;
 * for the systemd runtime, a directory `/var/lib/drove/volumes/<name>/_data`
 * bind-mounted into the container. Destroy deletes it with its data, and is
 * refused while a container still mounts it. Changing its name or labels makes
 * a new, empty volume.
 *
 * @example
 * const data = runtime.addVolume("data");
 * runtime.addContainer("db", { image, volumes: [{ volume: data, target: "/var/lib/db" }] });
 */
export class Volume extends Construct implements IResourceConstruct {
  static isVolume(x: unknown): x is Volume {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[VOLUME] === true;
  }

  /** A host directory to bind-mount, for `ContainerProps.volumes`: `{ ...Volume.fromHostPath("/srv/www"), target: "/www" }`. */
  static fromHostPath(path: string): HostPathMount {
    return { source: path };
  }

  readonly runtime: ContainerRuntime;
  /** The volume's name on the host. */
  readonly volumeName: string;
  private readonly _labels: Record<string, string>;

  constructor(scope: Construct, id: string, props: VolumeProps = {}) {
    super(scope, freeId(scope, id));
    Object.defineProperty(this, VOLUME, { value: true });
    markResource(this);
    const where = this.node.path;
    const runtime = runtimeScope(scope, where, "Volume");
    const errors: string[] = [];
    if (!["docker", "podman", "systemd"].includes(runtime.engine)) errors.push(`${where}: volumes are made by the docker, podman and systemd runtimes, not by ${runtime.engine}`);
    const name = props.name ?? id;
    if (!NAME.test(name)) errors.push(`${where}: \`name\` must be 2 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit, but ${JSON.stringify(name)} was provided`);
    errors.push(...labelErrors(where, props.labels));
    if (errors.length) throw new ValidationError(errors);
    this.runtime = runtime;
    this.volumeName = name;
    this._labels = { ...(props.labels ?? {}) };
    this.node.addValidation({
      validate: () => {
        const same = this.runtime.node.findAll().filter((o): o is Volume => Volume.isVolume(o) && o !== this && o.volumeName === this.volumeName);
        const all = this.runtime.node.findAll();
        const earlier = same.filter((o) => all.indexOf(o) < all.indexOf(this));
        return earlier.length ? [`volume name ${this.volumeName} is also used by ${earlier.map((o) => o.node.path).join(", ")} on the same runtime; give one of them another \`name\``] : [];
      },
    });
  }

  /** A copy of the volume's labels. */
  get labels(): Record<string, string> {
    return { ...this._labels };
  }

  private resolveRegistered!: (r: pulumi.CustomResource) => void;
  private readonly registered = new Promise<pulumi.CustomResource>((res) => (this.resolveRegistered = res));

  /** @internal Called by App.synth once the resource is registered. */
  _registered(r: pulumi.CustomResource): void {
    this.resolveRegistered(r);
  }

  /** @internal The name as an input that depends on this volume's resource (a container mounting it follows its replacement). */
  _nameInput(): pulumi.Input<string> {
    if (appOf(this).synthOut !== undefined) return this.volumeName;
    return pulumi.output(this.registered.then((r) => (r as unknown as { name: pulumi.Output<string> }).name));
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:Volume",
      parent: this.runtime.host,
      dependsOn: [this.runtime, ...this.node.dependencies],
      props: { connection: this.runtime.host.connection, engine: this.runtime.engine, name: this.volumeName, labels: this.labels },
    };
  }
}
