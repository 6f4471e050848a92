import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import * as yaml from "js-yaml";
import { App } from "../src/app";
import { ValidationError } from "../src/errors";
import { Host, type HostProps } from "./host";
import { HOST_KEY, PRIVATE_KEY, messagesOf } from "./testing";


const props = (over: Partial<HostProps> = {}): HostProps => ({
  address: "10.0.0.5",
  privateKey: pulumi.secret(PRIVATE_KEY),
  hostKey: HOST_KEY,
  ...over,
});


describe("Host props", () => {
  it("resolves defaults once: port 22, user root, no labels", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const host = new Host(app, "web1", props());

    // then
    assert.equal(host.port, 22);
    assert.equal(host.user, "root");
    assert.equal(host.address, "10.0.0.5");
    assert.equal(host.hostname, undefined);
    assert.deepEqual(host.labels, {});
    assert.ok(Host.isHost(host));
    assert.ok(!Host.isHost(app));
  });

  for (const port of [0, 70000]) {
    it(`refuses port ${port}, naming the host's path, the prop and the value`, () => {
      // given
      const app = new App({ synthOut: "-" });

      // when
      const messages = messagesOf(() => new Host(app, "web1", props({ port })));

      // then
      assert.deepEqual(messages, [`web1: \`port\` must be between 1 and 65535, but ${port} was provided`]);
    });
  }

  it("refuses a host with neither a key nor a password, saying how to give one", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new Host(app, "web1", props({ privateKey: undefined })));

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /^web1: give `privateKeyPath` \(a key file, like "\/home\/me\/\.ssh\/id_ed25519"\), `privateKey` \(for example pulumi\.secret\(.*\)\) or `password`$/);
  });

  it("takes a key file by its path: only the path is in the connection, and a file that cannot be read is refused before anything connects", () => {
    // given a key file, and a path where there is none
    const dir = mkdtempSync(join(tmpdir(), "drove-key-"));
    const keyFile = join(dir, "id_ed25519");
    writeFileSync(keyFile, "a key\n", { mode: 0o600 });
    const app = new App({ synthOut: "-" });
    // when
    const good = new Host(app, "web1", props({ privateKey: undefined, privateKeyPath: keyFile }));
    const missing = messagesOf(() => new Host(app, "web2", props({ privateKey: undefined, privateKeyPath: join(dir, "nope") })));
    const relative = messagesOf(() => new Host(app, "web3", props({ privateKey: undefined, privateKeyPath: "id_ed25519" })));
    // then
    const c = good.connection as unknown as Record<string, unknown>;
    assert.equal(c.privateKeyPath, keyFile);
    assert.equal(c.privateKey, undefined);
    assert.deepEqual(missing, [`web2: \`privateKeyPath\` ${join(dir, "nope")} cannot be read (ENOENT); create the key there, or point privateKeyPath at the key that logs in to this machine`]);
    assert.deepEqual(relative, ['web3: `privateKeyPath` must be an absolute path to a key file, but "id_ed25519" was provided']);
  });

  it("fromInventory names the inventory's key file, unless the program gives a key of its own", () => {
    const dir = mkdtempSync(join(tmpdir(), "drove-key-"));
    const keyFile = join(dir, "id_ed25519");
    writeFileSync(keyFile, "a key\n", { mode: 0o600 });
    const machine = { name: "m1", address: "10.0.0.5", port: 22, user: "root", privateKeyPath: keyFile, hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" };
    const app = new App({ synthOut: "-" });
    const byPath = Host.fromInventory(app, machine).connection as unknown as Record<string, unknown>;
    const byKey = Host.fromInventory(app, { ...machine, name: "m2" }, { privateKey: pulumi.secret("k") }).connection as unknown as Record<string, unknown>;
    assert.equal(byPath.privateKeyPath, keyFile);
    assert.equal(byKey.privateKeyPath, undefined);
    assert.ok(byKey.privateKey !== undefined);
  });

  it("accepts a password instead of a private key", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const host = new Host(app, "web1", props({ privateKey: undefined, password: pulumi.secret("hunter2") }));

    // then
    assert.equal(host.node.path, "web1");
  });

  it("refuses a host with neither hostKey nor knownHostsFile, saying where the fingerprint comes from", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new Host(app, "web1", props({ hostKey: undefined })));

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /^web1: no host key is pinned; set `hostKey`/);
    assert.match(messages[0], /ssh-keygen -lf/);
    assert.match(messages[0], /`knownHostsFile`/);
  });

  it("accepts a known_hosts file instead of a pinned key", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const host = new Host(app, "web1", props({ hostKey: undefined, knownHostsFile: "/root/.ssh/known_hosts" }));

    // then
    assert.equal(host.node.path, "web1");
  });

  it("refuses a malformed hostKey, quoting it", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new Host(app, "web1", props({ hostKey: "MD5:16:27:ac" })));

    // then
    assert.deepEqual(messages, [`web1: \`hostKey\` must be a SHA256:... fingerprint or an "ssh-ed25519 AAAA..." line, but "MD5:16:27:ac" was provided`]);
  });

  it("accepts a public key line as hostKey", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const host = new Host(app, "web1", props({ hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKPA4wpRJonzB1clH8o+GCFkKUfVOsPg8SRtZDfbj0Nb root@web1" }));

    // then
    assert.equal(host.node.path, "web1");
  });

  it("refuses a bad label key, naming it", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new Host(app, "web1", props({ labels: { "bad key!": "ok" } })));

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /^web1: label key "bad key!" must be letters, digits/);
  });

  it("refuses a bad label value, naming the key and the value", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new Host(app, "web1", props({ labels: { zone: "eu west/1" } })));

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /^web1: label zone has value "eu west\/1", which must be/);
  });

  it("refuses a label value over 63 characters", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new Host(app, "web1", props({ labels: { zone: "a".repeat(64) } })));

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /^web1: label zone has value/);
  });

  it("accepts labels with a DNS prefix and an empty value", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const host = new Host(app, "web1", props({ labels: { "drove.dev/zone": "eu-west-1", disk: "ssd", spare: "" } }));

    // then
    assert.deepEqual(host.labels, { "drove.dev/zone": "eu-west-1", disk: "ssd", spare: "" });
  });

  it("names the construct's full path when the host is nested", () => {
    // given
    const app = new App({ synthOut: "-" });
    const rack = new Construct(app, "rack1");

    // when
    const messages = messagesOf(() => new Host(rack, "web1", props({ port: 0 })));

    // then
    assert.deepEqual(messages, ["rack1/web1: `port` must be between 1 and 65535, but 0 was provided"]);
  });

  it("reports every prop error at once", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(
      () => new Host(app, "web1", { address: "", port: 0, user: "Root User", labels: { "!": "x" } }),
    );

    // then
    assert.equal(messages.length, 6);
    assert.match(messages[0], /`address` is required/);
    assert.match(messages[1], /`port`/);
    assert.match(messages[2], /`user` must be a login name/);
    assert.match(messages[3], /`privateKey`/);
    assert.match(messages[4], /no host key is pinned/);
    assert.match(messages[5], /label key "!"/);
    for (const m of messages) assert.ok(m.startsWith("web1: "), m);
  });
});

describe("Host labels", () => {
  it("returns a copy: changing it does not change the host", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = new Host(app, "web1", props({ labels: { zone: "a" } }));

    // when
    host.labels.zone = "b";

    // then
    assert.deepEqual(host.labels, { zone: "a" });
  });

  it("adds a label and returns the host", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = new Host(app, "web1", props());

    // when
    const same = host.addLabel("disk", "ssd");

    // then
    assert.equal(same, host);
    assert.deepEqual(host.labels, { disk: "ssd" });
  });

  it("refuses an invalid label added later, naming the host", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = new Host(app, "web1", props());

    // when
    const messages = messagesOf(() => host.addLabel("disk", "not ok"));

    // then
    assert.deepEqual(messages, ['web1: label "disk"="not ok" is not a valid label']);
  });
});

describe("Host facts", () => {
  it("are known only after synth, and saying so names the host", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = new Host(app, "web1", props());

    // when
    const messages = messagesOf(() => host.facts);

    // then
    assert.deepEqual(messages, ["web1: facts are known only after app.synth()"]);
  });
});

describe("Host synthesis", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "drove-host-test-"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the host's spec as YAML, without its private key", async () => {
    // given
    const out = join(dir, "host.yaml");
    const app = new App({ synthOut: out });
    new Host(app, "web1", props({ hostname: "web1.lab" }));

    // when
    const resources = app.synth();
    await app.written;

    // then
    assert.equal(resources.size, 0, "nothing is registered with Pulumi when writing YAML");
    const text = readFileSync(out, "utf8");
    assert.deepEqual(yaml.load(text), {
      apiVersion: "drove/v1",
      hosts: {
        web1: [
          {
            path: "web1",
            type: "drove:index:Host",
            props: {
              connection: { host: "10.0.0.5", port: 22, user: "root", privateKey: "[secret]", hostKey: HOST_KEY },
              hostname: "web1.lab",
            },
          },
        ],
      },
    });
    assert.ok(!text.includes(PRIVATE_KEY.trim()), "the private key is not in the YAML");
    assert.ok(!text.includes("DO-NOT-LEAK"), "no part of the private key is in the YAML");
  });

  it("keeps a private key given as plain text out of the YAML too", async () => {
    // given
    const out = join(dir, "plain-key.yaml");
    const app = new App({ synthOut: out });
    new Host(app, "web1", props({ privateKey: PRIVATE_KEY, password: "hunter2-password" }));

    // when
    app.synth();
    await app.written;

    // then
    const text = readFileSync(out, "utf8");
    assert.match(text, /drove:index:Host/);
    assert.ok(!text.includes("DO-NOT-LEAK"));
    assert.ok(!text.includes("hunter2-password"));
  });

  it("refuses a second synth of the same App", () => {
    // given
    const app = new App({ synthOut: join(dir, "twice.yaml") });
    new Host(app, "web1", props());
    app.synth();

    // when
    const messages = messagesOf(() => app.synth());

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /synth\(\) was called twice/);
  });
});

describe("Host jump", () => {
  it("connects through a chain of bastions, each with its own pinned key, their keys secret", async () => {
    // given
    const app = new App({ synthOut: "-" });
    const bastion = new Host(app, "bastion", props({ address: "203.0.113.1" }));
    const inner = new Host(app, "inner", props({ address: "10.0.0.6", user: "deploy", jump: bastion }));
    const db = new Host(app, "db", props({ address: "10.0.0.7", jump: inner }));
    // when
    const doc = yaml.load(await app.toYaml()) as { hosts: Record<string, { props: { connection: Record<string, unknown> } }[]> };
    // then
    const conn = doc.hosts.db[0].props.connection as { host: string; jump: { host: string; user: string; privateKey: string; jump: { host: string } } };
    assert.equal(conn.host, "10.0.0.7");
    assert.equal(conn.jump.host, "10.0.0.6");
    assert.equal(conn.jump.user, "deploy");
    assert.equal(conn.jump.privateKey, "[secret]");
    assert.equal(conn.jump.jump.host, "203.0.113.1");
    assert.ok(db);
  });

  it("refuses a jump that is not a Host, and hops that loop back", () => {
    // given
    const app = new App({ synthOut: "-" });
    // when
    const notHost = messagesOf(() => new Host(app, "a", props({ jump: { address: "x" } as unknown as Host })));
    const first = new Host(app, "b", props());
    (first as unknown as { props: HostProps }).props = { ...props(), jump: first };
    const loop = messagesOf(() => new Host(app, "c", props({ jump: first })));
    // then
    assert.deepEqual(notHost, ["a: `jump` must be a Host of the App (the bastion to connect through)"]);
    assert.match(loop[0], /^c: `jump` hops loop back/);
  });
});
