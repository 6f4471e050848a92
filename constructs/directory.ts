import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { ownershipErrors, pathErrors } from "../src/validation";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { File } from "./file";
import { Host } from "./host";
import { freeId } from "../src/app";

export interface DirectoryProps {
  /** Absolute path on the machine, like `/srv/app`. Not `/`. */
  readonly path: string;
  /**
   * Permissions, octal: "0755", "750", 0o2775 (set-group-ID, sticky and
   * set-user-ID bits allowed). The directory ends with exactly this mode.
   * @default "0755"
   */
  readonly mode?: string | number;
  /** Owner user name. @default - left as it is (root for a new directory) */
  readonly owner?: string;
  /** Owner group name. @default - left as it is */
  readonly group?: string;
  /**
   * Create missing parent directories (with the machine's default mode), as
   * `mkdir -p` does. Parents are never removed again.
   * @default true
   */
  readonly createParents?: boolean;
  /**
   * When the resource is deleted, also remove what the directory holds. Only
   * ever applies to a directory drove made itself.
   * @default false
   */
  readonly recursive?: boolean;
}


/**
 * A directory on a host: it exists, with this mode, owner and group. Like
 * Ansible's `file: state=directory` and pyinfra's `files.directory`, it is
 * made with its parents when missing and an existing directory is simply
 * taken in hand; drift in mode or owner shows in `pulumi preview --refresh`
 * and is repaired by `pulumi up`.
 *
 * Deleting the resource (`pulumi destroy`, or removing it from the program)
 * removes the directory only if drove made it, and only if it is empty, or
 * with its contents when `recursive` is true. A directory that was there
 * before (like `/srv` or `/etc/nginx`) is left, with the mode and owner it has
 * then, as Ansible leaves a directory a playbook stops declaring. Whenever
 * drove leaves a directory it says so, and why, in the command's output.
 *
 * @example
 * host.addDirectory("data", { path: "/srv/app/data", mode: "0750", owner: "www-data", group: "www-data" });
 */
export class Directory extends Construct implements IResourceConstruct {
  readonly host: Host;
  readonly path: string;
  readonly mode: string;
  readonly owner: string | undefined;
  readonly group: string | undefined;
  readonly createParents: boolean;
  readonly recursive: boolean;

  constructor(scope: Construct, id: string, props: DirectoryProps) {
    super(scope, freeId(scope, id));
    markResource(this);
    const where = this.node.path;
    const host = Host.of(scope);
    if (!host) throw new ValidationError([`${where}: a Directory must be created inside a Host (new Directory(host, ...) or host.addDirectory(...))`]);
    const errors: string[] = [];
    const p = props.path;
    errors.push(...pathErrors(where, p, "directory", "/srv/app"));
    const mode = typeof props.mode === "number" ? props.mode.toString(8) : (props.mode ?? "0755");
    if (!/^(0?[0-7]{3}|[0-7]{4})$/.test(mode)) errors.push(`${where}: \`mode\` must be octal like "0755" or "2775", but ${JSON.stringify(props.mode)} was provided`);
    errors.push(...ownershipErrors(where, props));
    if (errors.length) throw new ValidationError(errors);
    this.host = host;
    this.path = p;
    this.mode = mode.padStart(4, "0");
    this.owner = props.owner;
    this.group = props.group;
    this.createParents = props.createParents ?? true;
    this.recursive = props.recursive ?? false;
    // Two resources at one path on one host would fight each other.
    this.node.addValidation({
      validate: () => {
        const twins = this.host.node
          .findAll()
          .filter((c) => c !== this && (c instanceof Directory || c instanceof File) && c.path === this.path && Host.of(c) === this.host);
        return twins.length ? [`\`path\` ${this.path} is also managed by ${twins.map((t) => t.node.path).join(", ")}; give each its own path`] : [];
      },
    });
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:Directory",
      parent: this.host,
      props: {
        connection: this.host.connection,
        path: this.path,
        mode: this.mode,
        ...(this.owner !== undefined ? { owner: this.owner } : {}),
        ...(this.group !== undefined ? { group: this.group } : {}),
        createParents: this.createParents,
        recursive: this.recursive,
      },
      outputs: ["created"],
    };
  }
}
