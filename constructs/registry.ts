import { createHash, createHmac } from "node:crypto";
import { isIP } from "node:net";
import * as pulumi from "@pulumi/pulumi";
import bcrypt from "bcryptjs";
import { Construct, type IConstruct } from "constructs";
import * as yaml from "js-yaml";
import { appOf, freeId } from "../src/app";
import { ValidationError } from "../src/errors";
import { secretInput, type ResourceSpec } from "../src/resource";
import { pathErrors } from "../src/validation";
import { CertificateAuthority, type Certificate } from "./certificate";
import { Attestation } from "./attestation";
import { Container } from "./container";
import { Directory, type DirectoryProps } from "./directory";
import { File, type FileProps } from "./file";
import { Host } from "./host";
import { Image } from "./image";
import { Package } from "./package";
import { SystemdUnit, type SystemdUnitProps } from "./systemd-unit";

export interface RegistryProps {
  /**
   * The TCP port the registry listens on (HTTPS), on every address of its host.
   * @default 5000
   */
  readonly port?: number;
  /**
   * Users allowed to push and pull, name -> password (use Pulumi secrets:
   * `config.requireSecret(...)`; a plain string is made a secret). Names are
   * letters, digits, '.', '_' or '-'. Without users, the registry lets anyone
   * pull and push.
   * @default {}
   */
  readonly users?: Readonly<Record<string, pulumi.Input<string>>>;
  /**
   * The CA that signs the registry's TLS certificate, and that every trusting
   * host is given.
   * @default - a CertificateAuthority made for this registry (`<registry>/ca`)
   */
  readonly ca?: CertificateAuthority;
  /**
   * Where the registry keeps images. A directory drove makes here is removed,
   * with the images, on destroy; one that was there before is left.
   * @default "/var/lib/drove-registry"
   */
  readonly storage?: string;
  /**
   * Every Host of the App trusts this registry's CA (Docker, Podman/skopeo and
   * containerd), applied at synth so hosts added later count too. False: only
   * the hosts given to `trustOn()` and `grantPull()` do.
   * @default true
   */
  readonly trustAllHosts?: boolean;
}

const REGISTRY = Symbol.for("drove.registry");
const USER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Where drove keeps a registry's own configuration on its host. */
export const REGISTRY_DIR = "/etc/docker/registry/drove";
export const REGISTRY_UNIT = "docker-registry.service";
/** The trust directories each engine reads, per registry `host:port`. */
export const TRUST_ROOTS = {
  docker: "/etc/docker/certs.d",
  containers: "/etc/containers/certs.d",
  containerd: "/etc/containerd/certs.d",
} as const;
/** The Docker config file that Docker, Podman and skopeo all read credentials from (Podman and skopeo fall back to it). */
export const CREDENTIALS_DIR = "/root/.docker";
export const CREDENTIALS_FILE = `${CREDENTIALS_DIR}/config.json`;

/** A File whose content may be rendered at synth, and which waits for the constructs it depends on. */
class ManagedFile extends File {
  private readonly render: (() => pulumi.Input<string>) | undefined;
  constructor(scope: Construct, id: string, props: FileProps, render?: () => pulumi.Input<string>) {
    super(scope, id, props);
    this.render = render;
  }
  /** @internal */
  override _toSpec(): ResourceSpec {
    const s = super._toSpec();
    return { ...s, dependsOn: [...(s.dependsOn ?? []), ...this.node.dependencies], props: this.render ? { ...s.props, content: this.render() } : s.props };
  }
}

class ManagedDirectory extends Directory {
  constructor(scope: Construct, id: string, props: DirectoryProps) {
    super(scope, id, props);
  }
  /** @internal */
  override _toSpec(): ResourceSpec {
    const s = super._toSpec();
    return { ...s, dependsOn: [...(s.dependsOn ?? []), ...this.node.dependencies] };
  }
}

class ManagedUnit extends SystemdUnit {
  constructor(scope: Construct, id: string, props: SystemdUnitProps) {
    super(scope, id, props);
  }
  /** @internal */
  override _toSpec(): ResourceSpec {
    const s = super._toSpec();
    return { ...s, dependsOn: [...(s.dependsOn ?? []), ...this.node.dependencies] };
  }
}

/** A bcrypt salt derived from the password and where it is used: the same password renders the same htpasswd line, so an unchanged password is no change. */
export function htpasswdLine(user: string, password: string, context: string): string {
  const salt = createHmac("sha256", password).update(`drove registry htpasswd\0${context}\0${user}`).digest().subarray(0, 16);
  return `${user}:${bcrypt.hashSync(password, `$2y$10$${bcrypt.encodeBase64(salt, 16)}`)}`;
}

/** Docker's config.json, which Docker, Podman and skopeo read: endpoint -> base64(user:password). */
export function dockerConfigJson(auths: Readonly<Record<string, { user: string; password: string }>>): string {
  const out: Record<string, { auth: string }> = {};
  for (const endpoint of Object.keys(auths).sort()) {
    const { user, password } = auths[endpoint];
    out[endpoint] = { auth: Buffer.from(`${user}:${password}`, "utf8").toString("base64") };
  }
  return JSON.stringify({ auths: out }, null, 2) + "\n";
}

/** containerd's hosts.toml for one registry: HTTPS with the CA, and Basic credentials when the host is granted a pull. */
export function containerdHostsToml(endpoint: string, caPath: string, credentials?: { user: string; password: string }): string {
  const url = `https://${endpoint}`;
  const lines = [`server = ${JSON.stringify(url)}`, "", `[host.${JSON.stringify(url)}]`, `  capabilities = ["pull", "resolve"]`, `  ca = ${JSON.stringify(caPath)}`];
  if (credentials) {
    const basic = Buffer.from(`${credentials.user}:${credentials.password}`, "utf8").toString("base64");
    lines.push("", `  [host.${JSON.stringify(url)}.header]`, `    Authorization = ${JSON.stringify(`Basic ${basic}`)}`);
  }
  return lines.join("\n") + "\n";
}

/** The registry's config.yml (distribution 2.x), as YAML. */
export function registryConfigYaml(o: { port: number; storage: string; auth: boolean; realm: string }): string {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { fields: { service: "registry" } },
    storage: { filesystem: { rootdirectory: o.storage }, delete: { enabled: true } },
    http: {
      addr: `:${o.port}`,
      headers: { "X-Content-Type-Options": ["nosniff"] },
      tls: { certificate: `${REGISTRY_DIR}/registry.crt`, key: `${REGISTRY_DIR}/registry.key` },
    },
    ...(o.auth ? { auth: { htpasswd: { realm: o.realm, path: `${REGISTRY_DIR}/htpasswd` } } } : {}),
    health: { storagedriver: { enabled: true, interval: "10s", threshold: 3 } },
  };
  return yaml.dump(config, { lineWidth: 120, noRefs: true, sortKeys: false });
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const safeId = (path: string) => path.replace(/[^A-Za-z0-9_-]+/g, "-");

/**
 * A private image registry (Debian's `docker-registry`, distribution 2.x) on
 * a host: HTTPS with a certificate from a drove CertificateAuthority, Basic
 * authentication from Pulumi secrets (an htpasswd of bcrypt hashes), images
 * kept under `storage`. Every host of the App trusts its CA (for Docker,
 * Podman, skopeo and containerd) unless `trustAllHosts` is false;
 * `grantPull(host)` gives a host the credentials to pull.
 *
 * @example
 * const registry = new Registry(m1, "registry", { users: { ci: config.requireSecret("registryPassword") } });
 * registry.grantPull(m2);
 * ContainerRuntime.docker(m2).addContainer("web", { image: `${registry.endpoint}/web@sha256:...` });
 */
export class Registry extends Construct {
  /** True for a Registry, across package copies. */
  static isRegistry(x: unknown): x is Registry {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[REGISTRY] === true;
  }

  readonly host: Host;
  readonly port: number;
  /** `address:port`, what image references start with: `${registry.endpoint}/app@sha256:...`. */
  readonly endpoint: string;
  readonly storage: string;
  readonly ca: CertificateAuthority;
  /** The registry's TLS server certificate. */
  readonly certificate: Certificate;
  readonly package: Package;
  /** The systemd unit that runs the registry (`docker-registry.service`, drove's own unit file). */
  readonly unit: SystemdUnit;
  /** The registry's configuration (`/etc/docker/registry/drove/config.yml`). */
  readonly config: File;
  readonly trustAllHosts: boolean;
  private readonly users: Readonly<Record<string, pulumi.Output<string>>>;
  private readonly grants = new Map<Host, string>();
  private readonly trusts = new Map<Host, RegistryTrust>();
  private readonly files: File[] = [];

  constructor(scope: Construct, id: string, props: RegistryProps = {}) {
    super(scope, freeId(scope, id));
    Object.defineProperty(this, REGISTRY, { value: true });
    const where = this.node.path;
    const errors: string[] = [];
    if (!Host.isHost(scope)) throw new ValidationError([`${where}: a Registry is deployed on a Host: new Registry(host, "registry", {...}), but its scope ${scope.node.path || "(app)"} is not a Host`]);
    const host = scope;
    const port = props.port ?? 5000;
    if (!Number.isInteger(port) || port < 1 || port > 65535) errors.push(`${where}: \`port\` must be between 1 and 65535, but ${props.port} was provided`);
    for (const name of Object.keys(props.users ?? {})) {
      if (!USER.test(name)) errors.push(`${where}: user name ${JSON.stringify(name)} must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (no ':')`);
      if ((props.users ?? {})[name] === undefined || (props.users ?? {})[name] === "") errors.push(`${where}: user ${name} needs a password (a Pulumi secret, like config.requireSecret("registryPassword"))`);
    }
    const storage = props.storage ?? "/var/lib/drove-registry";
    errors.push(...pathErrors(where, storage, "directory", "/srv/registry").map((e) => e.replace("`path`", "`storage`")));
    if (typeof host.address !== "string") {
      errors.push(`${where}: the registry's host ${host.node.path} must have its address as a string (it names the registry: address:port), not a value known only after deployment`);
    }
    if (props.ca !== undefined && !CertificateAuthority.isCertificateAuthority(props.ca)) errors.push(`${where}: \`ca\` must be a CertificateAuthority (new CertificateAuthority(app, "ca"))`);
    if (errors.length) throw new ValidationError(errors);

    this.host = host;
    this.port = port;
    this.endpoint = `${host.address as string}:${port}`;
    this.storage = storage;
    this.trustAllHosts = props.trustAllHosts ?? true;
    this.users = Object.fromEntries(Object.entries(props.users ?? {}).map(([k, v]) => [k, secretInput(v)]));
    this.ca = props.ca ?? new CertificateAuthority(this, "ca", { commonName: `drove registry CA ${this.endpoint}` });

    const address = host.address as string;
    this.certificate = this.ca.issue(`${safeId(this.node.path)}-tls`, {
      commonName: address,
      ...(isIP(address) ? { ipAddresses: [address] } : { dnsNames: [address] }),
      ...(isIP(address) && host.hostname ? { dnsNames: [host.hostname] } : {}),
      usages: ["server"],
    });

    // The package brings the binary and its user; everything else waits for it.
    const existing = host.node.findAll().find((c): c is Package => c instanceof Package && c.packageName === "docker-registry" && Host.of(c) === host);
    this.package = existing ?? new Package(this, "package", { name: "docker-registry" });
    const dir = new ManagedDirectory(this, "config-dir", { path: REGISTRY_DIR, mode: "0750", owner: "root", group: "docker-registry", recursive: true });
    dir.node.addDependency(this.package);
    const data = new ManagedDirectory(this, "storage", { path: storage, mode: "0750", owner: "docker-registry", group: "docker-registry", recursive: true });
    data.node.addDependency(this.package);

    const auth = Object.keys(this.users).length > 0;
    const configText = registryConfigYaml({ port, storage, auth, realm: `drove registry ${this.endpoint}` });
    this.config = this.file("config", { path: `${REGISTRY_DIR}/config.yml`, content: configText, mode: "0640", owner: "root", group: "docker-registry" }, dir);
    const htpasswd = pulumi.secret(
      pulumi.all(this.users).apply((users) => Object.keys(users).sort().map((u) => htpasswdLine(u, users[u], this.node.path) + "\n").join("")),
    );
    if (auth) this.file("htpasswd", { path: `${REGISTRY_DIR}/htpasswd`, content: htpasswd, mode: "0600", owner: "docker-registry", group: "docker-registry" }, dir);
    this.file("tls-cert", { path: `${REGISTRY_DIR}/registry.crt`, content: this.certificate.certPem, mode: "0644", owner: "root", group: "root" }, dir);
    this.file("tls-key", { path: `${REGISTRY_DIR}/registry.key`, content: this.certificate.keyPem, mode: "0600", owner: "docker-registry", group: "docker-registry" }, dir);

    // The unit names a digest of what the registry reads at start, so a new
    // password, certificate or configuration restarts it (a digest: no secret).
    const digest = pulumi.unsecret(
      pulumi.all([configText, auth ? htpasswd : "", this.certificate.certPem]).apply(([c, h, t]) => sha256(`${c}\0${h}\0${t}`)),
    );
    this.unit = new ManagedUnit(this, "unit", {
      name: REGISTRY_UNIT,
      content: digest.apply((d) =>
        SystemdUnit.render({
          Unit: { Description: `Docker registry ${this.endpoint} (drove)`, After: "network-online.target", Wants: "network-online.target" },
          Service: {
            Type: "simple",
            User: "docker-registry",
            Environment: `DROVE_REGISTRY_CONFIG_SHA256=${d}`,
            ExecStart: `/usr/bin/docker-registry serve ${REGISTRY_DIR}/config.yml`,
            Restart: "on-failure",
          },
          Install: { WantedBy: "multi-user.target" },
        }),
      ),
    });
    this.unit.node.addDependency(this.package, data, ...this.files);

    this.node.addValidation({
      validate: () => {
        const msgs: string[] = [];
        const twins = appOf(this)
          .node.findAll()
          .filter((c): c is Registry => Registry.isRegistry(c) && c !== this && c.host === this.host);
        if (twins.length) msgs.push(`the host ${this.host.node.path} already runs the registry ${twins.map((t) => t.node.path).join(", ")}; a host runs one registry (one docker-registry.service)`);
        if (!msgs.length) this.applyTrust();
        return msgs;
      },
    });
  }

  private file(id: string, props: FileProps, dir: Directory): File {
    const f = new ManagedFile(this, id, props);
    f.node.addDependency(dir);
    this.files.push(f);
    return f;
  }

  /** The CA certificate (PEM) clients verify the registry with. */
  get caCertPem(): pulumi.Output<string> {
    return this.ca.certPem;
  }

  /** User names (copies). */
  get userNames(): string[] {
    return Object.keys(this.users);
  }

  /**
   * Makes `hosts` trust this registry's CA: Docker (`/etc/docker/certs.d`),
   * Podman and skopeo (`/etc/containers/certs.d`) and containerd
   * (`/etc/containerd/certs.d`, with a hosts.toml). Returns the trust of each
   * host (asking twice returns the same one).
   */
  trustOn(...hosts: Host[]): RegistryTrust[] {
    return hosts.map((h) => {
      if (!Host.isHost(h)) throw new ValidationError([`${this.node.path}: trustOn() takes Hosts, but ${String((h as IConstruct)?.node?.path ?? h)} is not one`]);
      let t = this.trusts.get(h);
      if (!t) {
        t = new RegistryTrust(RegistryTrustStore.of(h), safeId(this.node.path), this);
        this.trusts.set(h, t);
      }
      return t;
    });
  }

  /**
   * Lets `host` pull from this registry as `user` (default: the first user):
   * the host trusts the CA and gets the credentials in its
   * `/root/.docker/config.json` (which Docker, Podman and skopeo read) and
   * its containerd hosts.toml. Returns the host's credentials file, which
   * lists every registry granted to it.
   */
  grantPull(host: Host, user?: string): RegistryCredentials {
    const where = this.node.path;
    if (!Host.isHost(host)) throw new ValidationError([`${where}: grantPull() takes a Host`]);
    const names = Object.keys(this.users);
    if (!names.length) throw new ValidationError([`${where}: the registry has no users, so anyone may pull already; give \`users\` to require credentials`]);
    const who = user ?? names[0];
    if (!names.includes(who)) throw new ValidationError([`${where}: grantPull(${host.node.path}, ${JSON.stringify(who)}) names no user of the registry; its users are ${names.join(", ")}`]);
    this.grants.set(host, who);
    this.trustOn(host);
    return RegistryCredentials.of(host);
  }

  /**
   * Lets `host` push to this registry (an `Image` built there): the same trust
   * and credentials as `grantPull`, since the registry's htpasswd auth gives
   * every user both rights. Named apart so that a program says what it means.
   */
  grantPush(host: Host, user?: string): RegistryCredentials {
    return this.grantPull(host, user);
  }

  /** @internal The credentials granted to a host, or undefined. */
  _credentialsFor(host: Host): pulumi.Output<{ user: string; password: string }> | undefined {
    const user = this.grants.get(host);
    if (user === undefined) return undefined;
    return pulumi.output(this.users[user]).apply((password) => ({ user, password }));
  }

  /** @internal The constructs a container pulling from this registry on `host` must wait for. */
  _pullDependencies(host: Host): IConstruct[] {
    const t = this.trusts.get(host);
    return [this.unit, ...(t ? t._files : []), ...(this.grants.has(host) ? [RegistryCredentials.of(host).file] : [])];
  }

  /** At synth: every host trusts the registry (unless told otherwise), and containers pulling from it wait for it. */
  private applyTrust(): void {
    const app = appOf(this);
    const hosts = app.node.findAll().filter(Host.isHost);
    if (this.trustAllHosts) this.trustOn(...hosts);
    for (const c of app.node.findAll()) {
      let h: Host;
      let image: unknown;
      if (c instanceof Container) {
        h = c.runtime.host;
        image = c._toSpec().props.image;
      } else if (c instanceof Image) {
        // A build pushes here: it waits for the registry, its trust and its credentials (and goes before them on destroy).
        h = c.runtime.host;
        image = `${c.repository}/`;
      } else continue;
      // An image given as an Output may come from here: wait for the registry to be safe.
      if (typeof image === "string" && !image.startsWith(`${this.endpoint}/`)) continue;
      for (const d of this._pullDependencies(h)) if (!c.node.dependencies.includes(d)) c.node.addDependency(d);
    }
  }
}

/** Per host: the trust roots drove makes (and removes again when it made them). */
class RegistryTrustStore extends Construct {
  static of(host: Host): RegistryTrustStore {
    return (host.node.tryFindChild("registry-trust") as RegistryTrustStore | undefined) ?? new RegistryTrustStore(host, "registry-trust");
  }
  readonly roots: Record<keyof typeof TRUST_ROOTS, Directory>;
  readonly host: Host;
  private constructor(host: Host, id: string) {
    super(host, freeId(host, id));
    this.host = host;
    this.roots = {
      docker: new ManagedDirectory(this, "docker", { path: TRUST_ROOTS.docker, mode: "0755" }),
      containers: new ManagedDirectory(this, "containers", { path: TRUST_ROOTS.containers, mode: "0755" }),
      containerd: new ManagedDirectory(this, "containerd", { path: TRUST_ROOTS.containerd, mode: "0755" }),
    };
  }
}

/**
 * One host's trust in one registry: the registry's CA certificate where
 * Docker, Podman/skopeo and containerd look for `host:port`, and
 * containerd's hosts.toml (with the credentials when the host was granted a
 * pull). Made by `registry.trustOn(host)`.
 */
export class RegistryTrust extends Construct {
  readonly registry: Registry;
  readonly host: Host;
  /** @internal */
  readonly _files: File[] = [];

  constructor(scope: Construct, id: string, registry: Registry) {
    super(scope, freeId(scope, id));
    const store = scope as RegistryTrustStore;
    this.registry = registry;
    this.host = store.host;
    const ep = registry.endpoint;
    for (const kind of Object.keys(TRUST_ROOTS) as (keyof typeof TRUST_ROOTS)[]) {
      const dir = new ManagedDirectory(this, `${kind}-dir`, { path: `${TRUST_ROOTS[kind]}/${ep}`, mode: "0755", recursive: false });
      dir.node.addDependency(store.roots[kind]);
      const ca = new ManagedFile(this, `${kind}-ca`, { path: `${TRUST_ROOTS[kind]}/${ep}/ca.crt`, content: "", mode: "0644" }, () => registry.caCertPem);
      ca.node.addDependency(dir);
      this._files.push(ca);
      if (kind === "containerd") {
        const caPath = `${TRUST_ROOTS.containerd}/${ep}/ca.crt`;
        const hosts = new ManagedFile(this, "containerd-hosts", { path: `${TRUST_ROOTS.containerd}/${ep}/hosts.toml`, content: "", mode: "0600" }, () => {
          const creds = registry._credentialsFor(this.host);
          // Like the Docker config: the credentials go only to a host whose attestation passed.
          const attestation = Attestation.of(this.host);
          const admitted = attestation ? attestation._admission : pulumi.output(true);
          return creds ? pulumi.secret(pulumi.all([creds, admitted]).apply(([c, ok]) => (ok ? containerdHostsToml(ep, caPath, c) : containerdHostsToml(ep, caPath)))) : containerdHostsToml(ep, caPath);
        });
        hosts.node.addDependency(dir);
        this._files.push(hosts);
      }
    }
  }
}

/**
 * A host's registry credentials: `/root/.docker/config.json` (mode 0600, a
 * secret), listing every registry that granted the host a pull, rendered at
 * synth so later grants count. Docker reads it; Podman and skopeo fall back
 * to it. Made by `registry.grantPull(host)`.
 */
export class RegistryCredentials extends Construct {
  static of(host: Host): RegistryCredentials {
    return (host.node.tryFindChild("registry-credentials") as RegistryCredentials | undefined) ?? new RegistryCredentials(host, "registry-credentials");
  }

  readonly host: Host;
  readonly file: File;

  private constructor(host: Host, id: string) {
    super(host, freeId(host, id));
    this.host = host;
    const dir = new ManagedDirectory(this, "dir", { path: CREDENTIALS_DIR, mode: "0700" });
    this.file = new ManagedFile(this, "config", { path: CREDENTIALS_FILE, content: "", mode: "0600" }, () => this.render());
    this.file.node.addDependency(dir);
  }

  /** The registries granted to this host, by endpoint. */
  registries(): Registry[] {
    return appOf(this)
      .node.findAll()
      .filter((c): c is Registry => Registry.isRegistry(c) && c._credentialsFor(this.host) !== undefined)
      .sort((a, b) => a.endpoint.localeCompare(b.endpoint));
  }

  private render(): pulumi.Output<string> {
    const entries = Object.fromEntries(this.registries().map((r) => [r.endpoint, r._credentialsFor(this.host)!]));
    // Released only to a host whose attestation passed in this run; a refused host's file is emptied.
    const attestation = Attestation.of(this.host);
    const admitted = attestation ? attestation._admission : pulumi.output(true);
    return pulumi.secret(pulumi.all([pulumi.all(entries), admitted]).apply(([auths, ok]) => dockerConfigJson(ok ? auths : {})));
  }
}
