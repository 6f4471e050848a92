import { accessSync, constants } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { appOf, freeId } from "../src/app";
import { ValidationError } from "../src/errors";
import type { HostFacts } from "../providers/host/facts";
import { loadInventory, type InventoryMachine } from "../src/inventory";
import { markResource, secretInput, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { parsePinnedHostKey, type SshTarget } from "../src/ssh";
import { Directory, type DirectoryProps } from "./directory";
import { File, type FileProps } from "./file";
import { SystemdUnit, type SystemdUnitProps } from "./systemd-unit";
import { Package, type PackageProps } from "./package";
import type { HostImage, OsImage } from "./os-image";

export interface HostProps {
  /** The machine's address or DNS name, as this machine reaches it. */
  readonly address: pulumi.Input<string>;
  /**
   * SSH port.
   * @default 22
   */
  readonly port?: number;
  /**
   * The user drove logs in as; a user other than root runs commands through `sudo -n`.
   * @default "root"
   */
  readonly user?: string;
  /** Private key that logs in (OpenSSH or PEM). Always handled as a Pulumi secret. */
  readonly privateKey?: pulumi.Input<string>;
  /**
   * A private key file on the machine that runs Pulumi (as `ssh -i` takes
   * one), read by the provider when it connects: the key is then in no
   * state, diff or log at all, only its path. `privateKey` wins when both
   * are given.
   */
  readonly privateKeyPath?: string;
  /** Password that logs in, where no key is used. Always handled as a Pulumi secret. */
  readonly password?: pulumi.Input<string>;
  /**
   * The host key to expect: `SHA256:...` (from `ssh-keygen -lf`) or an `ssh-ed25519 AAAA...` line.
   * One of `hostKey` and `knownHostsFile` is required: drove never connects to an unverified machine.
   */
  readonly hostKey?: pulumi.Input<string>;
  /** A known_hosts file that lists the machine's key, instead of `hostKey`. */
  readonly knownHostsFile?: string;
  /** The hostname the machine must report; a mismatch refuses it. @default - not checked */
  readonly hostname?: string;
  /** Labels used by placement and selectors (`zone`, `disk`, ...). @default {} */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * A bastion to reach this machine through (`ssh -J`): another Host of the
   * App, which may itself have a `jump`, for several hops. Its host key is
   * checked like any other; its credentials stay secrets.
   * @default - connect directly
   */
  readonly jump?: Host;
}

const HOST = Symbol.for("drove.host");
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/**
 * A machine drove manages over SSH. Every file, unit, package or container on
 * it is a child construct; the host gathers its facts once per run.
 *
 * @example
 * const web = new Host(app, "web1", { address: "10.0.0.5", privateKey: cfg.requireSecret("sshKey"), hostKey: "SHA256:..." });
 * web.addFile("motd", { path: "/etc/motd", content: "managed by drove\n" });
 */
export class Host extends Construct implements IResourceConstruct {
  /** True for a Host, across package copies. */
  static isHost(x: unknown): x is Host {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[HOST] === true;
  }

  /** A Host for a machine an inventory lists (such as the lab's). */
  static fromInventory(scope: Construct, machine: InventoryMachine, props: Partial<HostProps> = {}): Host {
    return new Host(scope, machine.name, {
      address: machine.address,
      port: machine.port,
      user: machine.user,
      // (the key file, not its content: the key stays out of the state)
      ...(props.privateKey === undefined && props.password === undefined ? { privateKeyPath: resolve(machine.privateKeyPath) } : {}),
      hostKey: machine.hostKey,
      labels: machine.labels,
      hostname: machine.name,
      ...props,
    });
  }

  /** One Host per machine of the inventory (default: the lab's, `.drove/lab/inventory.yaml`). */
  static fromLab(scope: Construct, inventoryPath?: string): Host[] {
    return loadInventory(inventoryPath).machines.map((m) => Host.fromInventory(scope, m));
  }

  /** The nearest Host at or above a construct, or undefined. */
  static of(c: Construct): Host | undefined {
    for (let s: Construct | undefined = c; s; s = s.node.scope as Construct | undefined) if (Host.isHost(s)) return s;
    return undefined;
  }

  readonly address: pulumi.Input<string>;
  readonly port: number;
  readonly user: string;
  readonly hostname: string | undefined;
  private readonly props: HostProps;
  private readonly _labels: Record<string, string>;

  constructor(scope: Construct, id: string, props: HostProps) {
    super(scope, freeId(scope, id));
    Object.defineProperty(this, HOST, { value: true });
    markResource(this);
    const errors: string[] = [];
    const where = this.node.path;
    if (props.address === undefined || props.address === "") errors.push(`${where}: \`address\` is required: the machine's IP address or DNS name`);
    this.port = props.port ?? 22;
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) {
      errors.push(`${where}: \`port\` must be between 1 and 65535, but ${props.port} was provided`);
    }
    this.user = props.user ?? "root";
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(this.user)) errors.push(`${where}: \`user\` must be a login name like "root" or "deploy", but ${JSON.stringify(this.user)} was provided`);
    if (props.privateKey === undefined && props.privateKeyPath === undefined && props.password === undefined) {
      errors.push(`${where}: give \`privateKeyPath\` (a key file, like "/home/me/.ssh/id_ed25519"), \`privateKey\` (for example pulumi.secret(fs.readFileSync(...))) or \`password\``);
    }
    if (props.privateKeyPath !== undefined && props.privateKey === undefined) {
      if (!isAbsolute(props.privateKeyPath)) {
        errors.push(`${where}: \`privateKeyPath\` must be an absolute path to a key file, but ${JSON.stringify(props.privateKeyPath)} was provided`);
      } else {
        try {
          accessSync(props.privateKeyPath, constants.R_OK);
        } catch (err) {
          errors.push(`${where}: \`privateKeyPath\` ${props.privateKeyPath} cannot be read (${(err as NodeJS.ErrnoException).code}); create the key there, or point privateKeyPath at the key that logs in to this machine`);
        }
      }
    }
    if (props.hostKey === undefined && props.knownHostsFile === undefined) {
      errors.push(`${where}: no host key is pinned; set \`hostKey\` to the machine's fingerprint (SHA256:..., from \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`) or \`knownHostsFile\``);
    } else if (typeof props.hostKey === "string" && !parsePinnedHostKey(props.hostKey)) {
      errors.push(`${where}: \`hostKey\` must be a SHA256:... fingerprint or an "ssh-ed25519 AAAA..." line, but ${JSON.stringify(props.hostKey)} was provided`);
    }
    for (const [k, v] of Object.entries(props.labels ?? {})) {
      if (!LABEL_KEY.test(k)) errors.push(`${where}: label key ${JSON.stringify(k)} must be letters, digits, '-', '_' or '.', at most 63, with an optional DNS prefix`);
      if (typeof v !== "string" || !LABEL_VALUE.test(v)) errors.push(`${where}: label ${k} has value ${JSON.stringify(v)}, which must be letters, digits, '-', '_' or '.', at most 63`);
    }
    if (props.jump !== undefined && !Host.isHost(props.jump)) errors.push(`${where}: \`jump\` must be a Host of the App (the bastion to connect through)`);
    for (let j = props.jump, hops = 0; j && Host.isHost(j); j = j.props.jump, hops++) {
      if (j === this || hops > 8) {
        errors.push(`${where}: \`jump\` hops loop back to this host; give a chain of bastions that ends in one reached directly`);
        break;
      }
    }
    if (errors.length) throw new ValidationError(errors);
    this.address = props.address;
    this.hostname = props.hostname;
    this._labels = { ...(props.labels ?? {}) };
    this.props = props;
  }

  /** A copy of the host's labels. */
  get labels(): Record<string, string> {
    return { ...this._labels };
  }

  /** Adds or changes a label; returns this host. */
  addLabel(key: string, value: string): this {
    if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) {
      throw new ValidationError([`${this.node.path}: label ${JSON.stringify(key)}=${JSON.stringify(value)} is not a valid label`]);
    }
    this._labels[key] = value;
    return this;
  }

  /** Installs a Debian package on this host. */
  addPackage(name: string, props: Omit<PackageProps, "name"> = {}): Package {
    return new Package(this, name, { name, ...props });
  }

  /** Manages a file on this host. */
  addFile(id: string, props: FileProps): File {
    return new File(this, id, props);
  }

  /** Manages a directory on this host. */
  addDirectory(id: string, props: DirectoryProps): Directory {
    return new Directory(this, id, props);
  }

  /** Manages a systemd unit on this host: its file, whether it is enabled, whether it runs. */
  addUnit(id: string, props: SystemdUnitProps): SystemdUnit {
    return new SystemdUnit(this, id, props);
  }

  /** Declares the OS image this host must run; hosts roll onto a new version one at a time, in the order of these calls. */
  runs(image: OsImage): HostImage {
    return image._deployTo(this);
  }

  /** What the machine reported (hostname, machine-id, OS, kernel, tools); known after `app.synth()`. */
  get facts(): pulumi.Output<HostFacts> {
    const app = appOf(this);
    // `drove synth` touches no machine: facts are not known there.
    if (app.synthOut !== undefined && app.isSynthesized) return pulumi.output(undefined as unknown as HostFacts);
    const res = app._resourceOf(this) as unknown as { facts?: pulumi.Output<HostFacts> } | undefined;
    if (!res?.facts) throw new ValidationError([`${this.node.path}: facts are known only after app.synth()`]);
    return res.facts;
  }

  /** How the provider reaches this machine; credentials are always Pulumi secrets. */
  get connection(): pulumi.Input<SshTarget> {
    const p = this.props;
    return {
      host: p.address,
      port: this.port,
      user: this.user,
      ...(p.privateKey !== undefined ? { privateKey: secretInput(p.privateKey) } : p.privateKeyPath !== undefined ? { privateKeyPath: p.privateKeyPath } : {}),
      ...(p.password !== undefined ? { password: secretInput(p.password) } : {}),
      ...(p.hostKey !== undefined ? { hostKey: p.hostKey } : {}),
      ...(p.knownHostsFile !== undefined ? { knownHostsFile: p.knownHostsFile } : {}),
      ...(p.jump !== undefined ? { jump: p.jump.connection } : {}),
    } as pulumi.Input<SshTarget>;
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:Host",
      props: {
        connection: this.connection,
        ...(this.hostname !== undefined ? { hostname: this.hostname } : {}),
      },
      outputs: ["facts", "unreachable"],
    };
  }
}
