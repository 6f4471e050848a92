import { createHash } from "node:crypto";
import { Construct } from "constructs";
import * as yaml from "js-yaml";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { Attestation } from "./attestation";
import type { Host } from "./host";
import { freeId } from "../src/app";

/** A user the image creates at first boot. */
export interface OsImageUser {
  /** Login name: lower-case letters, digits, `-`, `_`, starting with a letter or `_`, at most 32. */
  readonly name: string;
  /** Public keys (`ssh-ed25519 AAAA... comment`) written to the user's `~/.ssh/authorized_keys`. @default [] */
  readonly sshAuthorizedKeys?: readonly string[];
  /** Supplementary groups (each must exist in the image). @default [] */
  readonly groups?: readonly string[];
  /** Login shell. @default "/bin/bash" */
  readonly shell?: string;
}

/** A systemd unit the image ships (in /usr/lib/systemd/system, as a vendor unit). */
export interface OsImageUnit {
  /** The unit's name with its type: `web.service`, `backup.timer`. Unique in the image. */
  readonly name: string;
  /** The unit file's text. Required unless `mask` is set. */
  readonly contents?: string;
  /** Started at boot: linked into the targets its `[Install] WantedBy=` names. @default true when `contents` has WantedBy= */
  readonly enabled?: boolean;
  /** Masked (linked to /dev/null): it never starts, whoever asks. @default false */
  readonly mask?: boolean;
}

/** A file the image ships. */
export interface OsImageFile {
  /** Absolute path; not under /proc, /sys, /dev, /run, /tmp or /var (the machine's own state). Unique in the image. */
  readonly path: string;
  /** Its text. */
  readonly contents: string;
  /** Octal mode as a string. @default "0644" */
  readonly mode?: string;
}

export interface OsImageHealth {
  /** Units that must be active for a boot to count as good. @default - every unit the image enables */
  readonly units?: readonly string[];
  /** A command (run by `sh -c`) that must exit 0 for a boot to count as good. @default - none */
  readonly command?: string;
  /**
   * Seconds a new boot has to be marked good; past it the machine boots its previous image again.
   * Between 30 and 3600.
   * @default 180
   */
  readonly deadlineSeconds?: number;
}

export interface OsImageProps {
  /** The image's name, as `IMAGE_ID` in os-release: lower-case letters, digits, `-`, `_`, `.`, at most 64. @default - the construct's id */
  readonly name?: string;
  /** The image's version, as `IMAGE_VERSION` in os-release: `1.2`, `2026.11.30`, `1.2.3-rc1`. Give this or `channel`. */
  readonly version?: string;
  /** An update channel to follow (`stable`, `beta`...): its version comes from `channels`. Give this or `version`. */
  readonly channel?: string;
  /** The version each channel carries now, like `{ stable: "1.0", beta: "1.1" }`. Needed with `channel`. */
  readonly channels?: Readonly<Record<string, string>>;
  /** Debian packages the image holds (checked on each host after it boots the image). @default [] */
  readonly packages?: readonly string[];
  /** Users made at first boot. @default [] */
  readonly users?: readonly OsImageUser[];
  /** Units the image ships. @default [] */
  readonly units?: readonly OsImageUnit[];
  /** Files the image ships. @default [] */
  readonly files?: readonly OsImageFile[];
  /** When a boot of this image counts as good. @default - the enabled units are active, 180 s */
  readonly health?: OsImageHealth;
}

/** One entry of the layer drove stages on a host: a file or a symbolic link. */
export interface LayerEntry {
  readonly path: string;
  readonly contents?: string;
  readonly mode?: string;
  readonly symlink?: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION = /^[0-9]+(\.[0-9]+){0,3}([-+~][A-Za-z0-9.]+)?$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const UNIT = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|mount|automount|swap|target|slice)$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const MODE = /^0?[0-7]{3,4}$/;
const STATE_DIRS = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var"];
/** Where drove keeps what it made of the image in the image itself. */
export const BUTANE_PATH = "/usr/share/drove/os-image.bu";
export const FIRSTBOOT_UNIT = "drove-os-firstboot.service";

/**
 * A CoreOS-like OS image: a name and version (or a channel), the packages it
 * holds, an immutable `/usr`, and first-boot configuration (users and their
 * SSH keys, units, files) rendered as Butane (`_toButane()`), as Ignition
 * takes it. Hosts declare it with `host.runs(image)`; changing its version
 * rolls the hosts onto it one at a time, in the order they were declared:
 * stage, reboot, wait for SSH and health (and attestation, where the host has
 * one), mark the boot good. A boot not marked good in time is rolled back to
 * the previous image, and the roll stops there.
 *
 * @example
 * const os = new OsImage(app, "web-os", { version: "1.1", units: [{ name: "web.service", contents: "..." }] });
 * hosts.forEach((h) => h.runs(os));
 */
export class OsImage extends Construct {
  readonly imageName: string;
  readonly version: string;
  readonly channel: string | undefined;
  readonly deadlineSeconds: number;
  private readonly _packages: string[];
  private readonly _users: OsImageUser[] = [];
  private readonly _units: OsImageUnit[] = [];
  private readonly _files: OsImageFile[] = [];
  private readonly _health: OsImageHealth;
  private readonly _hosts: HostImage[] = [];

  constructor(scope: Construct, id: string, props: OsImageProps = {}) {
    super(scope, freeId(scope, id));
    const where = this.node.path;
    const errors: string[] = [];
    const name = props.name ?? id;
    if (!NAME.test(name)) errors.push(`${where}: \`name\` must be lower-case letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit, but ${JSON.stringify(name)} was provided`);
    let version = props.version;
    if (props.version !== undefined && props.channel !== undefined) errors.push(`${where}: give either \`version\` or \`channel\`, not both`);
    if (props.version === undefined && props.channel === undefined) errors.push(`${where}: give a \`version\` (like "1.0") or a \`channel\` with \`channels\``);
    if (props.channel !== undefined) {
      const carried = props.channels?.[props.channel];
      if (carried === undefined) {
        errors.push(`${where}: channel ${JSON.stringify(props.channel)} is not in \`channels\` (${JSON.stringify(Object.keys(props.channels ?? {}))}); add the version it carries, like channels: { ${props.channel}: "1.0" }`);
      } else version = carried;
    }
    if (version !== undefined && !VERSION.test(version)) {
      errors.push(`${where}: \`version\` must be numbers separated by dots with an optional -suffix (like "1.2" or "1.2.3-rc1"), but ${JSON.stringify(version)} was provided`);
    }
    const packages = [...(props.packages ?? [])];
    for (const p of packages) if (!PACKAGE.test(p)) errors.push(`${where}: package ${JSON.stringify(p)} is not a Debian package name`);
    if (new Set(packages).size !== packages.length) errors.push(`${where}: \`packages\` names a package twice: ${JSON.stringify(packages)}`);
    const deadline = props.health?.deadlineSeconds ?? 180;
    if (!Number.isInteger(deadline) || deadline < 30 || deadline > 3600) {
      errors.push(`${where}: \`health.deadlineSeconds\` must be a whole number from 30 to 3600, but ${JSON.stringify(props.health?.deadlineSeconds)} was provided`);
    }
    if (errors.length) throw new ValidationError(errors);
    this.imageName = name;
    this.version = version!;
    this.channel = props.channel;
    this.deadlineSeconds = deadline;
    this._packages = packages;
    this._health = { ...(props.health ?? {}) };
    for (const u of props.users ?? []) this.addUser(u);
    for (const u of props.units ?? []) this.addUnit(u);
    for (const f of props.files ?? []) this.addFile(f);
    this.node.addValidation({ validate: () => this.problems() });
  }

  /** `name version`, as hosts report it: "web-os 1.1". */
  get label(): string {
    return `${this.imageName} ${this.version}`;
  }

  /** A copy of the package set. */
  get packages(): string[] {
    return [...this._packages];
  }

  /** The hosts that run this image, in roll order. */
  get hosts(): Host[] {
    return this._hosts.map((h) => h.host);
  }

  /** Adds a user made at first boot; returns a copy of it. */
  addUser(user: OsImageUser): OsImageUser {
    const where = this.node.path;
    const errors: string[] = [];
    if (!USER.test(user.name)) errors.push(`${where}: user name ${JSON.stringify(user.name)} must be a login name like "core" (lower-case letters, digits, '-', '_')`);
    if (this._users.some((u) => u.name === user.name)) errors.push(`${where}: user ${JSON.stringify(user.name)} is declared twice; declare each user once`);
    for (const k of user.sshAuthorizedKeys ?? []) {
      if (!/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\n]*)?$/.test(k)) {
        errors.push(`${where}: user ${user.name} has an SSH key that is not one public key line ("ssh-ed25519 AAAA... comment"): ${JSON.stringify(k.slice(0, 40))}`);
      }
    }
    for (const g of user.groups ?? []) if (!USER.test(g)) errors.push(`${where}: user ${user.name} has group ${JSON.stringify(g)}, which is not a group name`);
    if (user.shell !== undefined && !/^\/[A-Za-z0-9/_.-]+$/.test(user.shell)) errors.push(`${where}: user ${user.name} has shell ${JSON.stringify(user.shell)}, which must be an absolute path`);
    if (errors.length) throw new ValidationError(errors);
    const copy = { ...user, sshAuthorizedKeys: [...(user.sshAuthorizedKeys ?? [])], groups: [...(user.groups ?? [])] };
    this._users.push(copy);
    return { ...copy };
  }

  /** Adds a unit the image ships; returns a copy of it. */
  addUnit(unit: OsImageUnit): OsImageUnit {
    const where = this.node.path;
    const errors: string[] = [];
    if (!UNIT.test(unit.name)) errors.push(`${where}: unit name ${JSON.stringify(unit.name)} must end in .service, .socket, .timer, .path, .mount, .automount, .swap, .target or .slice`);
    if (this._units.some((u) => u.name === unit.name)) errors.push(`${where}: unit ${JSON.stringify(unit.name)} is declared twice; each unit name must be unique in the image`);
    if (unit.name === FIRSTBOOT_UNIT) errors.push(`${where}: unit name ${FIRSTBOOT_UNIT} is drove's own first-boot unit; choose another name`);
    if (unit.mask) {
      if (unit.contents !== undefined || unit.enabled) errors.push(`${where}: unit ${unit.name} is masked; a masked unit has no \`contents\` and is not \`enabled\``);
    } else if (unit.contents === undefined || unit.contents.trim() === "") {
      errors.push(`${where}: unit ${unit.name} needs \`contents\` (its unit file), or \`mask: true\``);
    } else if (unit.enabled && wantedBy(unit.contents).length === 0) {
      errors.push(`${where}: unit ${unit.name} is enabled but its [Install] section has no WantedBy=; add "[Install]\\nWantedBy=multi-user.target", or set enabled: false`);
    }
    if (errors.length) throw new ValidationError(errors);
    this._units.push({ ...unit });
    return { ...unit };
  }

  /** Adds a file the image ships; returns a copy of it. */
  addFile(file: OsImageFile): OsImageFile {
    const where = this.node.path;
    const errors: string[] = [];
    const path = file.path;
    if (!/^\/[^\0]*[^/]$/.test(path) || path.split("/").some((p) => p === ".." || p === ".")) {
      errors.push(`${where}: file path ${JSON.stringify(path)} must be absolute, without . or .. parts, and not end in /`);
    } else if (STATE_DIRS.some((d) => path === d || path.startsWith(d + "/"))) {
      errors.push(`${where}: file ${path} is under ${STATE_DIRS.find((d) => path.startsWith(d + "/"))}, which is the machine's own state, not the image's; put it under /etc or /usr, or manage it with host.addFile()`);
    } else if (path === "/usr/lib/os-release" || path === "/etc/os-release" || path === BUTANE_PATH) {
      errors.push(`${where}: file ${path} is written by drove from the image's name and version; leave it out`);
    }
    if (this._files.some((f) => f.path === path)) errors.push(`${where}: file ${path} is declared twice; each path must be unique in the image`);
    if (file.mode !== undefined && !MODE.test(file.mode)) errors.push(`${where}: file ${path} has mode ${JSON.stringify(file.mode)}; give an octal string like "0644"`);
    if (errors.length) throw new ValidationError(errors);
    this._files.push({ ...file });
    return { ...file };
  }

  /** @internal Records a host that runs this image (`host.runs(image)`). */
  _deployTo(host: Host): HostImage {
    const existing = host.node.tryFindChild("os-image");
    if (existing) throw new ValidationError([`${host.node.path} already runs an OS image (${(existing as HostImage).image.node.path}); a host runs one image`]);
    const h = new HostImage(host, "os-image", this, this._hosts[this._hosts.length - 1]);
    this._hosts.push(h);
    return h;
  }

  private problems(): string[] {
    const where = this.node.path;
    const out: string[] = [];
    const names = new Set(this._units.map((u) => u.name));
    for (const u of this._health.units ?? []) {
      if (!names.has(u)) out.push(`${where}: \`health.units\` names ${u}, which is not a unit of the image; add it with addUnit() or remove it from health.units`);
    }
    for (const f of this._files) {
      if (this._units.some((u) => f.path === `/usr/lib/systemd/system/${u.name}`)) out.push(`${where}: file ${f.path} is also the unit ${f.path.split("/").pop()}; declare it once, as a unit`);
    }
    return out;
  }

  /** The units a boot must have active to count as good. */
  healthUnits(): string[] {
    const units = this._health.units ?? this._units.filter((u) => !u.mask && this.enabled(u)).map((u) => u.name);
    return [...units, ...(this._users.length ? [FIRSTBOOT_UNIT] : [])];
  }

  private enabled(u: OsImageUnit): boolean {
    return !u.mask && (u.enabled ?? wantedBy(u.contents ?? "").length > 0);
  }

  /** @internal The first-boot configuration as Butane (Fedora CoreOS variant), rendered with js-yaml. */
  _toButane(): string {
    const doc: Record<string, unknown> = { variant: "fcos", version: "1.5.0" };
    if (this._users.length) {
      doc.passwd = {
        users: this._users.map((u) => ({
          name: u.name,
          ...(u.sshAuthorizedKeys?.length ? { ssh_authorized_keys: [...u.sshAuthorizedKeys] } : {}),
          ...(u.groups?.length ? { groups: [...u.groups] } : {}),
          ...(u.shell ? { shell: u.shell } : {}),
        })),
      };
    }
    if (this._files.length) {
      doc.storage = {
        files: this._files.map((f) => ({ path: f.path, mode: parseInt(f.mode ?? "0644", 8), contents: { inline: f.contents } })),
      };
    }
    if (this._units.length) {
      doc.systemd = {
        units: this._units.map((u) => (u.mask ? { name: u.name, mask: true } : { name: u.name, enabled: this.enabled(u), contents: u.contents })),
      };
    }
    const head = `# ${this.label}${this.channel ? ` (channel ${this.channel})` : ""}, made by drove\n` + (this._packages.length ? `# packages: ${this._packages.join(" ")}\n` : "");
    return head + yaml.dump(doc, { lineWidth: -1, noRefs: true });
  }

  /**
   * @internal What drove stages on a host: the image's files, its units
   * (vendor units, enablement links, masks), users as sysusers.d entries with
   * a first-boot unit for their SSH keys, and the Butane it was made from.
   * `/usr/lib/os-release` is added on the machine (its base fields, with
   * IMAGE_ID and IMAGE_VERSION).
   */
  _toLayer(): LayerEntry[] {
    const out: LayerEntry[] = [{ path: BUTANE_PATH, contents: this._toButane(), mode: "0644" }];
    for (const f of this._files) out.push({ path: f.path, contents: f.contents, mode: normaliseMode(f.mode ?? "0644") });
    const unitDir = "/usr/lib/systemd/system";
    for (const u of this._units) {
      if (u.mask) {
        out.push({ path: `/etc/systemd/system/${u.name}`, symlink: "/dev/null" });
        continue;
      }
      out.push({ path: `${unitDir}/${u.name}`, contents: u.contents!.endsWith("\n") ? u.contents! : u.contents! + "\n", mode: "0644" });
      if (this.enabled(u)) for (const t of wantedBy(u.contents!)) out.push({ path: `${unitDir}/${t}.wants/${u.name}`, symlink: `../${u.name}` });
    }
    if (this._users.length) {
      const sysusers = this._users.flatMap((u) => [
        `u ${u.name} - "${u.name}" /home/${u.name} ${u.shell ?? "/bin/bash"}`,
        ...(u.groups ?? []).map((g) => `m ${u.name} ${g}`),
      ]);
      out.push({ path: "/usr/lib/sysusers.d/drove-os-image.conf", contents: sysusers.join("\n") + "\n", mode: "0644" });
      const script = [
        "#!/bin/sh",
        "# drove: first-boot configuration of the image's users (homes and SSH keys).",
        "set -eu",
        ...this._users.flatMap((u) => {
          const keys = (u.sshAuthorizedKeys ?? []).join("\n");
          return [
            `getent passwd ${u.name} >/dev/null || useradd -m -U -s ${u.shell ?? "/bin/bash"}${u.groups?.length ? ` -G ${u.groups.join(",")}` : ""} ${u.name}`,
            `install -d -m 0755 -o ${u.name} -g ${u.name} /home/${u.name}`,
            `install -d -m 0700 -o ${u.name} -g ${u.name} /home/${u.name}/.ssh`,
            `printf '%s\\n' '${keys.replace(/'/g, "")}' > /home/${u.name}/.ssh/authorized_keys`,
            `chown ${u.name}:${u.name} /home/${u.name}/.ssh/authorized_keys && chmod 0600 /home/${u.name}/.ssh/authorized_keys`,
          ];
        }),
        "",
      ].join("\n");
      out.push({ path: "/usr/lib/drove/os-firstboot", contents: script, mode: "0755" });
      out.push({
        path: `${unitDir}/${FIRSTBOOT_UNIT}`,
        mode: "0644",
        contents: [
          "[Unit]",
          "Description=drove: first-boot configuration of the OS image's users",
          "After=systemd-sysusers.service",
          "Before=ssh.service",
          "",
          "[Service]",
          "Type=oneshot",
          "RemainAfterExit=yes",
          "ExecStart=/usr/lib/drove/os-firstboot",
          "",
          "[Install]",
          "WantedBy=multi-user.target",
          "",
        ].join("\n"),
      });
      out.push({ path: `${unitDir}/multi-user.target.wants/${FIRSTBOOT_UNIT}`, symlink: `../${FIRSTBOOT_UNIT}` });
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** @internal The image's identity on a host: its layer, packages and health, hashed. */
  _digest(): string {
    const h = createHash("sha256");
    h.update(JSON.stringify({ label: this.label, layer: this._toLayer(), packages: this._packages, health: this._healthSpec() }));
    return "sha256:" + h.digest("hex").slice(0, 32);
  }

  /** @internal */
  _healthSpec(): { units: string[]; command?: string; deadlineSeconds: number } {
    return { units: this.healthUnits(), ...(this._health.command ? { command: this._health.command } : {}), deadlineSeconds: this.deadlineSeconds };
  }
}

/**
 * That a host runs an OS image (`host.runs(image)`): one resource per host,
 * each after the previous host's, so an OS update rolls one host at a time.
 */
export class HostImage extends Construct implements IResourceConstruct {
  readonly host: Host;
  readonly image: OsImage;
  private readonly previous: HostImage | undefined;

  constructor(host: Host, id: string, image: OsImage, previous: HostImage | undefined) {
    super(host, freeId(host, id));
    markResource(this);
    this.host = host;
    this.image = image;
    this.previous = previous;
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    const attestation = Attestation.of(this.host);
    return {
      type: "drove:index:OsImage",
      parent: this.host,
      ...(this.previous || attestation ? { dependsOn: [...(this.previous ? [this.previous] : []), ...(attestation ? [attestation] : [])] } : {}),
      props: {
        connection: this.host.connection,
        host: this.host.node.path,
        osImage: this.image.label,
        digest: this.image._digest(),
        layer: this.image._toLayer(),
        packages: this.image.packages,
        health: this.image._healthSpec(),
      },
      outputs: ["osImage", "bootedAt", "previous"],
    };
  }
}

function wantedBy(contents: string): string[] {
  const out: string[] = [];
  let section = "";
  for (const raw of contents.split("\n")) {
    const line = raw.trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s) section = s[1];
    else if (section === "Install") {
      const m = /^(WantedBy|RequiredBy)\s*=\s*(.*)$/.exec(line);
      if (m) out.push(...m[2].split(/\s+/).filter(Boolean));
    }
  }
  return out;
}

function normaliseMode(mode: string): string {
  return mode.length === 3 ? "0" + mode : mode;
}
