import { isAbsolute, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { appOf, freeId } from "../src/app";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { ContainerRuntime } from "./container-runtime";

const IMAGE_OF = Symbol.for("drove.image-of");

/** The Image an Output came from (a Container that runs it depends on it). */
export function imageOf(x: unknown): Image | undefined {
  return typeof x === "object" && x !== null ? ((x as Record<symbol, unknown>)[IMAGE_OF] as Image | undefined) : undefined;
}

export interface ImageProps {
  /** Where to push, without a tag: `registry.example:5000/team/app`. */
  readonly repository: string;
  /** The build context, a folder on the machine running drove (relative paths: to the working directory). */
  readonly context: string;
  /** @default "Dockerfile" (in the context) */
  readonly dockerfile?: string;
  /** Extra local files placed in the context: path in the context -> local path. @default {} */
  readonly files?: Readonly<Record<string, string>>;
}

/**
 * An image built by a host's Docker or Podman from a local Dockerfile and
 * context, pushed, and pinned by digest. `image.digestRef` is what containers
 * should run; an unchanged context does not rebuild.
 */
export class Image extends Construct implements IResourceConstruct {
  readonly runtime: ContainerRuntime;
  readonly repository: string;
  private readonly props: ImageProps;

  constructor(scope: Construct, id: string, props: ImageProps) {
    super(scope, freeId(scope, id));
    markResource(this);
    const runtime = ContainerRuntime.isContainerRuntime(scope) ? scope : undefined;
    if (!runtime || runtime.engine === "systemd" || runtime.engine === "containerd") {
      throw new ValidationError([`${this.node.path}: an Image is built by a docker or podman ContainerRuntime (ContainerRuntime.docker(host).buildImage(...))`]);
    }
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/.test(props.repository)) {
      throw new ValidationError([`${this.node.path}: \`repository\` must be like registry.example:5000/team/app (no tag), but ${JSON.stringify(props.repository)} was provided`]);
    }
    this.runtime = runtime;
    this.repository = props.repository;
    this.props = props;
  }

  /**
   * `repository@sha256:...`, known after the build. It may be read before
   * `app.synth()` (rendering is lazy): it resolves once the image's resource exists.
   */
  get digestRef(): pulumi.Output<string> {
    const app = appOf(this);
    const out =
      app.synthOut !== undefined
        ? pulumi.output(`${this.repository}@(known after build)`)
        : pulumi.output(this.registered.then((r) => (r as unknown as { digestRef: pulumi.Output<string> }).digestRef));
    Object.defineProperty(out, IMAGE_OF, { value: this });
    return out;
  }

  private resolveRegistered!: (r: pulumi.CustomResource) => void;
  private readonly registered = new Promise<pulumi.CustomResource>((res) => (this.resolveRegistered = res));

  /** @internal Called by App.synth once the resource is registered. */
  _registered(r: pulumi.CustomResource): void {
    this.resolveRegistered(r);
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(p));
    return {
      type: "drove:index:Image",
      parent: this.runtime.host,
      dependsOn: [this.runtime, ...this.node.dependencies],
      props: {
        connection: this.runtime.host.connection,
        engine: this.runtime.engine,
        repository: this.repository,
        context: abs(this.props.context),
        dockerfile: this.props.dockerfile ?? "Dockerfile",
        files: Object.fromEntries(Object.entries(this.props.files ?? {}).map(([k, v]) => [k, abs(v)])),
      },
      outputs: ["tag", "digest", "digestRef", "contextHash"],
    };
  }
}
