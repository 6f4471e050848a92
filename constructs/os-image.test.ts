import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { App } from "../src/app";
import { Attestation } from "./attestation";
import { OsImage, type OsImageProps } from "./os-image";
import { hostIn, messagesOf } from "./testing";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0xj5Wg9vJ3I1N1X4z core@laptop";
const WEB = "[Unit]\nDescription=web\n\n[Service]\nExecStart=/usr/bin/python3 -m http.server 8080\n\n[Install]\nWantedBy=multi-user.target\n";

function image(props: OsImageProps = { version: "1.0" }) {
  const app = new App({ synthOut: "-" });
  return { app, image: new OsImage(app, "web-os", props) };
}

describe("OsImage props", () => {
  it("resolves defaults once: the id as name, a 180 s deadline, no packages", () => {
    // given / when
    const { image: os } = image();
    // then
    assert.equal(os.imageName, "web-os");
    assert.equal(os.label, "web-os 1.0");
    assert.equal(os.deadlineSeconds, 180);
    assert.deepEqual(os.packages, []);
  });

  it("takes its version from the channel it follows", () => {
    const { image: os } = image({ channel: "beta", channels: { stable: "1.0", beta: "1.1" } });
    assert.equal(os.version, "1.1");
    assert.match(os._toButane(), /^# web-os 1\.1 \(channel beta\)/);
  });

  it("refuses a bad version, a bad name, a missing channel, with the construct's path", () => {
    assert.deepEqual(messagesOf(() => image({ version: "v1" })), [
      'web-os: `version` must be numbers separated by dots with an optional -suffix (like "1.2" or "1.2.3-rc1"), but "v1" was provided',
    ]);
    assert.match(messagesOf(() => image({ name: "Web OS", version: "1" }))[0], /`name` must be lower-case/);
    assert.match(messagesOf(() => image({ channel: "edge", channels: { stable: "1.0" } }))[0], /channel "edge" is not in `channels`/);
    assert.match(messagesOf(() => image({}))[0], /give a `version`/);
    assert.match(messagesOf(() => image({ version: "1", health: { deadlineSeconds: 5 } }))[0], /deadlineSeconds` must be a whole number from 30 to 3600/);
  });

  it("refuses a unit declared twice, an enabled unit without WantedBy, a file in /var, a bad key", () => {
    assert.deepEqual(messagesOf(() => image({ version: "1", units: [{ name: "web.service", contents: WEB }, { name: "web.service", contents: WEB }] })), [
      'web-os: unit "web.service" is declared twice; each unit name must be unique in the image',
    ]);
    assert.match(messagesOf(() => image({ version: "1", units: [{ name: "a.service", contents: "[Service]\nExecStart=/bin/true\n", enabled: true }] }))[0], /no WantedBy=/);
    assert.match(messagesOf(() => image({ version: "1", files: [{ path: "/var/lib/x", contents: "" }] }))[0], /under \/var, which is the machine's own state/);
    assert.match(messagesOf(() => image({ version: "1", users: [{ name: "core", sshAuthorizedKeys: ["not a key"] }] }))[0], /not one public key line/);
    assert.match(messagesOf(() => image({ version: "1", files: [{ path: "/usr/lib/os-release", contents: "" }] }))[0], /written by drove/);
  });

  it("refuses health units the image does not have, at validation", () => {
    const { app } = image({ version: "1", health: { units: ["nope.service"] } });
    assert.match(app.validate().join("\n"), /`health.units` names nope.service, which is not a unit of the image/);
  });
});

describe("OsImage rendering", () => {
  it("renders first-boot configuration as Butane YAML (users, keys, files, units, masks)", () => {
    // given
    const { image: os } = image({
      version: "1.1",
      users: [{ name: "core", sshAuthorizedKeys: [KEY], groups: ["sudo"] }],
      units: [{ name: "web.service", contents: WEB }, { name: "ssh.service", mask: true }],
    });
    // added after construction still counts
    os.addFile({ path: "/etc/motd", contents: "web-os\n", mode: "0600" });
    // when
    const doc = yaml.load(os._toButane()) as Record<string, any>;
    // then
    assert.deepEqual(doc, {
      variant: "fcos",
      version: "1.5.0",
      passwd: { users: [{ name: "core", ssh_authorized_keys: [KEY], groups: ["sudo"] }] },
      storage: { files: [{ path: "/etc/motd", mode: 0o600, contents: { inline: "web-os\n" } }] },
      systemd: { units: [{ name: "web.service", enabled: true, contents: WEB }, { name: "ssh.service", mask: true }] },
    });
  });

  it("renders the layer drove stages: vendor units with links, masks, sysusers, the first-boot unit, the Butane", () => {
    const { image: os } = image({ version: "1.1", users: [{ name: "core", sshAuthorizedKeys: [KEY] }], units: [{ name: "web.service", contents: WEB }, { name: "ssh.service", mask: true }] });
    const layer = os._toLayer();
    const paths = layer.map((e) => e.path);
    assert.deepEqual(paths, [
      "/etc/systemd/system/ssh.service",
      "/usr/lib/drove/os-firstboot",
      "/usr/lib/systemd/system/drove-os-firstboot.service",
      "/usr/lib/systemd/system/multi-user.target.wants/drove-os-firstboot.service",
      "/usr/lib/systemd/system/multi-user.target.wants/web.service",
      "/usr/lib/systemd/system/web.service",
      "/usr/lib/sysusers.d/drove-os-image.conf",
      "/usr/share/drove/os-image.bu",
    ]);
    assert.equal(layer[0].symlink, "/dev/null");
    assert.match(layer.find((e) => e.path.endsWith("os-firstboot"))!.contents!, /ssh-ed25519 AAAA/);
    assert.deepEqual(os.healthUnits(), ["web.service", "drove-os-firstboot.service"]);
  });

  it("gives hosts one resource each, each after the previous host's, with the image's label and digest", () => {
    // given
    const { app, image: os } = image({ version: "1.1", units: [{ name: "web.service", contents: WEB }] });
    const [a, b] = [hostIn(app, "m1"), hostIn(app, "m2")];
    new Attestation(b, "attestation", { trustOnFirstUse: true });
    // when
    const ha = a.runs(os);
    const hb = b.runs(os);
    // then
    const sa = ha._toSpec();
    const sb = hb._toSpec();
    assert.equal(sa.type, "drove:index:OsImage");
    assert.equal(sa.props.osImage, "web-os 1.1");
    assert.equal(sa.dependsOn, undefined);
    assert.deepEqual(sb.dependsOn, [ha, Attestation.of(b)]);
    assert.equal(sa.props.digest, sb.props.digest);
    assert.deepEqual(os.hosts, [a, b]);
    assert.match(messagesOf(() => a.runs(os))[0], /m1 already runs an OS image/);
  });

  it("changes the digest with the contents, not only the version", () => {
    const one = image({ version: "1.1", units: [{ name: "web.service", contents: WEB }] }).image._digest();
    const two = image({ version: "1.1", units: [{ name: "web.service", contents: WEB.replace("8080", "8081") }] }).image._digest();
    assert.notEqual(one, two);
  });
});
