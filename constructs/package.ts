import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { Host } from "./host";
import { freeId } from "../src/app";

export interface PackageProps {
  /** The Debian package, like "curl". @default - the construct id */
  readonly name?: string;
  /**
   * An exact version to install (and hold to: drift to another version is repaired).
   * @default - whatever version apt picks; any installed version satisfies it
   */
  readonly version?: string;
}

const NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const VERSION = /^[A-Za-z0-9.+~:-]+$/;

/**
 * A Debian package installed with apt. Package lists are refreshed once per
 * host per run, and only when something must be installed; changes on one
 * host queue behind each other (dpkg takes one writer). Destroy purges what
 * drove installed and leaves what was on the machine before.
 */
export class Package extends Construct implements IResourceConstruct {
  readonly host: Host;
  readonly packageName: string;
  readonly version: string | undefined;

  constructor(scope: Construct, id: string, props: PackageProps = {}) {
    super(scope, freeId(scope, id));
    markResource(this);
    const where = this.node.path;
    const host = Host.of(scope);
    if (!host) throw new ValidationError([`${where}: a Package must be created inside a Host (host.addPackage(...))`]);
    const name = props.name ?? id;
    const errors: string[] = [];
    if (!NAME.test(name)) errors.push(`${where}: \`name\` must be a Debian package name like "curl" (lower-case letters, digits, + - .), but ${JSON.stringify(name)} was provided`);
    if (props.version !== undefined && !VERSION.test(props.version)) {
      errors.push(`${where}: \`version\` must be a Debian version like "7.88.1-10+deb12u5", but ${JSON.stringify(props.version)} was provided`);
    }
    if (errors.length) throw new ValidationError(errors);
    this.host = host;
    this.packageName = name;
    this.version = props.version;
    this.node.addValidation({
      validate: () => {
        const twins = this.host.node
          .findAll()
          .filter((c): c is Package => c instanceof Package && c !== this && c.packageName === this.packageName && Host.of(c) === this.host);
        return twins.length ? [`package ${this.packageName} is also declared by ${twins.map((t) => t.node.path).join(", ")}; declare it once per host`] : [];
      },
    });
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:Package",
      parent: this.host,
      props: {
        connection: this.host.connection,
        name: this.packageName,
        ...(this.version !== undefined ? { version: this.version } : {}),
      },
      outputs: ["installed", "adopted"],
    };
  }
}
