import type * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { ownershipErrors, pathErrors } from "../src/validation";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { Host } from "./host";
import { freeId } from "../src/app";

export interface FileProps {
  /** Absolute path on the machine, like `/etc/motd`. */
  readonly path: string;
  /** The file's content (text). May come from another resource or a secret. */
  readonly content: pulumi.Input<string>;
  /**
   * Permissions, octal: "0644", "600" or 0o600.
   * @default "0644"
   */
  readonly mode?: string | number;
  /** Owner user name. @default - left as it is (root for a new file) */
  readonly owner?: string;
  /** Owner group name. @default - left as it is */
  readonly group?: string;
  /**
   * Create missing parent directories.
   * @default true
   */
  readonly createParents?: boolean;
}


/**
 * A regular file on a host: content, mode, owner. Written atomically (a
 * temporary file with its final mode, renamed into place); drift in any of
 * them shows in `pulumi preview --refresh` and is repaired by `pulumi up`.
 */
export class File extends Construct implements IResourceConstruct {
  readonly host: Host;
  readonly path: string;
  readonly mode: string;
  readonly owner: string | undefined;
  readonly group: string | undefined;
  readonly createParents: boolean;
  private readonly content: pulumi.Input<string>;

  constructor(scope: Construct, id: string, props: FileProps) {
    super(scope, freeId(scope, id));
    markResource(this);
    const where = this.node.path;
    const host = Host.of(scope);
    const errors: string[] = [];
    if (!host) throw new ValidationError([`${where}: a File must be created inside a Host (new File(host, ...) or host.addFile(...))`]);
    const p = props.path;
    errors.push(...pathErrors(where, p, "file", "/etc/motd"));
    if (props.content === undefined) errors.push(`${where}: \`content\` is required (use "" for an empty file)`);
    const mode = typeof props.mode === "number" ? props.mode.toString(8) : (props.mode ?? "0644");
    if (!/^0?[0-7]{3}$/.test(mode)) errors.push(`${where}: \`mode\` must be octal like "0644", but ${JSON.stringify(props.mode)} was provided`);
    errors.push(...ownershipErrors(where, props));
    if (errors.length) throw new ValidationError(errors);
    this.host = host;
    this.path = p;
    this.mode = mode.padStart(4, "0");
    this.owner = props.owner;
    this.group = props.group;
    this.createParents = props.createParents ?? true;
    this.content = props.content;
    // Two files at one path on one host would fight each other.
    this.node.addValidation({
      validate: () => {
        const twins = this.host.node
          .findAll()
          .filter((c): c is File => c instanceof File && c !== this && c.path === this.path && Host.of(c) === this.host);
        return twins.length ? [`\`path\` ${this.path} is also managed by ${twins.map((t) => t.node.path).join(", ")}; give each file its own path`] : [];
      },
    });
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:File",
      parent: this.host,
      props: {
        connection: this.host.connection,
        path: this.path,
        content: this.content,
        mode: this.mode,
        ...(this.owner !== undefined ? { owner: this.owner } : {}),
        ...(this.group !== undefined ? { group: this.group } : {}),
        createParents: this.createParents,
      },
      outputs: ["sha256", "size"],
    };
  }
}
