import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import * as yaml from "js-yaml";
import { App } from "../src/app";
import { ValidationError } from "../src/errors";
import { File, type FileProps } from "./file";
import { Host } from "./host";
import { hostIn, messagesOf } from "./testing";



const fileProps = (over: Partial<FileProps> = {}): FileProps => ({ path: "/etc/motd", content: "managed by drove\n", ...over });


describe("File props", () => {
  it("resolves defaults: mode 0644, parents created, owner and group left alone", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const file = host.addFile("motd", fileProps());

    // then
    assert.ok(file instanceof File);
    assert.equal(file.node.path, "web1/motd");
    assert.equal(file.host, host);
    assert.equal(file.path, "/etc/motd");
    assert.equal(file.mode, "0644");
    assert.equal(file.createParents, true);
    assert.equal(file.owner, undefined);
    assert.equal(file.group, undefined);
  });

  for (const [mode, expected] of [
    ["0600", "0600"],
    ["600", "0600"],
    [0o640, "0640"],
    [0o755, "0755"],
  ] as const) {
    it(`normalises mode ${typeof mode === "number" ? "0o" + mode.toString(8) : JSON.stringify(mode)} to ${expected}`, () => {
      // given
      const host = hostIn(new App({ synthOut: "-" }));

      // when
      const file = host.addFile("f", fileProps({ mode }));

      // then
      assert.equal(file.mode, expected);
    });
  }

  const badPaths: readonly [string, string][] = [
    ["a relative path", "etc/motd"],
    ["a path with ..", "/etc/../motd"],
    ["a path with .", "/etc/./motd"],
    ["a path with a trailing slash", "/etc/motd/"],
    ["the root directory", "/"],
    ["a path with doubled slashes", "/etc//motd"],
    ["an empty path", ""],
    ["a path with a NUL byte", "/etc/mo\0td"],
  ];
  for (const [name, path] of badPaths) {
    it(`refuses ${name}, naming the construct, the prop and the value`, () => {
      // given
      const host = hostIn(new App({ synthOut: "-" }));

      // when
      const messages = messagesOf(() => host.addFile("motd", fileProps({ path })));

      // then
      assert.deepEqual(messages, [
        `web1/motd: \`path\` must be an absolute, normalised file path like /etc/motd, but ${JSON.stringify(path)} was provided`,
      ]);
    });
  }

  for (const mode of ["999", "0888", "rw-r--r--", "12345", 0o4755] as const) {
    it(`refuses mode ${JSON.stringify(mode)}, quoting it`, () => {
      // given
      const host = hostIn(new App({ synthOut: "-" }));

      // when
      const messages = messagesOf(() => host.addFile("motd", fileProps({ mode })));

      // then
      assert.deepEqual(messages, [`web1/motd: \`mode\` must be octal like "0644", but ${JSON.stringify(mode)} was provided`]);
    });
  }

  for (const prop of ["owner", "group"] as const) {
    for (const value of ["www data", "-root", "a".repeat(33), "root;rm", ""]) {
      it(`refuses ${prop} ${JSON.stringify(value.length > 20 ? value.slice(0, 10) + "..." : value)}, naming the prop`, () => {
        // given
        const host = hostIn(new App({ synthOut: "-" }));

        // when
        const messages = messagesOf(() => host.addFile("motd", fileProps({ [prop]: value })));

        // then
        assert.deepEqual(messages, [`web1/motd: \`${prop}\` must be a name like "www-data", but ${JSON.stringify(value)} was provided`]);
      });
    }
  }

  it("accepts ordinary owner and group names", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const file = host.addFile("motd", fileProps({ owner: "www-data", group: "_systemd.journal" }));

    // then
    assert.equal(file.owner, "www-data");
    assert.equal(file.group, "_systemd.journal");
  });

  it("refuses missing content, saying how to ask for an empty file", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const messages = messagesOf(() => host.addFile("motd", { path: "/etc/motd" } as FileProps));

    // then
    assert.deepEqual(messages, ['web1/motd: `content` is required (use "" for an empty file)']);
  });

  it("reports every prop error at once", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const messages = messagesOf(() => host.addFile("motd", fileProps({ path: "motd", mode: "999", owner: "a b", group: "c d" })));

    // then
    assert.equal(messages.length, 4);
    assert.match(messages[0], /`path`/);
    assert.match(messages[1], /`mode`/);
    assert.match(messages[2], /`owner`/);
    assert.match(messages[3], /`group`/);
  });

  it("throws when created outside a Host, saying how to create it", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new File(app, "motd", fileProps()));

    // then
    assert.deepEqual(messages, ["motd: a File must be created inside a Host (new File(host, ...) or host.addFile(...))"]);
  });

  it("finds its host through intermediate constructs", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    const group = new Construct(host, "nginx");

    // when
    const file = new File(group, "conf", fileProps({ path: "/etc/nginx/nginx.conf" }));

    // then
    assert.equal(file.host, host);
    assert.equal(file.node.path, "web1/nginx/conf");
  });
});

describe("File validation across constructs", () => {
  it("reports two files at one path on one host, naming both", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = hostIn(app);
    host.addFile("a", fileProps());
    new File(new Construct(host, "nginx"), "b", fileProps());

    // when
    const errors = app.validate();

    // then
    assert.deepEqual(errors, [
      "web1/a: `path` /etc/motd is also managed by web1/nginx/b; give each file its own path",
      "web1/nginx/b: `path` /etc/motd is also managed by web1/a; give each file its own path",
    ]);
  });

  it("allows one path on two hosts", () => {
    // given
    const app = new App({ synthOut: "-" });
    hostIn(app, "web1").addFile("motd", fileProps());
    hostIn(app, "web2").addFile("motd", fileProps());

    // when
    const errors = app.validate();

    // then
    assert.deepEqual(errors, []);
  });

  it("allows different paths on one host", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = hostIn(app);
    host.addFile("motd", fileProps());
    host.addFile("issue", fileProps({ path: "/etc/issue" }));

    // when
    const errors = app.validate();

    // then
    assert.deepEqual(errors, []);
  });
});

describe("File synthesis", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "drove-file-test-"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the host and its files as YAML, without the private key", async () => {
    // given
    const out = join(dir, "synth.yaml");
    const app = new App({ synthOut: out });
    const host = hostIn(app);
    host.addFile("motd", fileProps({ mode: "600", owner: "root", group: "adm" }));
    host.addFile("issue", fileProps({ path: "/etc/issue", content: "", createParents: false }));

    // when
    app.synth();
    await app.written;

    // then
    const text = readFileSync(out, "utf8");
    const doc = yaml.load(text) as { apiVersion: string; hosts: Record<string, { path: string; type: string; props: Record<string, unknown> }[]> };
    assert.equal(doc.apiVersion, "drove/v1");
    assert.deepEqual(Object.keys(doc.hosts), ["web1"]);
    assert.deepEqual(
      doc.hosts.web1.map((r) => [r.path, r.type]),
      [
        ["web1", "drove:index:Host"],
        ["web1/motd", "drove:index:File"],
        ["web1/issue", "drove:index:File"],
      ],
    );
    const { connection: motdConnection, ...motd } = doc.hosts.web1[1].props;
    assert.ok(motdConnection !== undefined, "the file says how to reach its host");
    assert.deepEqual(motd, { path: "/etc/motd", content: "managed by drove\n", mode: "0600", owner: "root", group: "adm", createParents: true });
    const { connection: _issueConnection, ...issue } = doc.hosts.web1[2].props;
    assert.deepEqual(issue, { path: "/etc/issue", content: "", mode: "0644", createParents: false });
    assert.ok(!text.includes("DO-NOT-LEAK"), "no part of the private key is in the YAML");
    assert.ok(!text.includes("BEGIN OPENSSH PRIVATE KEY"), "the private key is not in the YAML");
  });

  it("renders a file added after construction (rendering is lazy)", async () => {
    // given
    const out = join(dir, "lazy.yaml");
    const app = new App({ synthOut: out });
    const host = hostIn(app);

    // when
    host.addFile("late", fileProps({ path: "/etc/late" }));
    app.synth();
    await app.written;

    // then
    const doc = yaml.load(readFileSync(out, "utf8")) as { hosts: Record<string, { path: string }[]> };
    assert.deepEqual(doc.hosts.web1.map((r) => r.path), ["web1", "web1/late"]);
  });

  it("keeps content given as a secret out of the YAML", async () => {
    // given
    const out = join(dir, "secret-content.yaml");
    const app = new App({ synthOut: out });
    hostIn(app).addFile("env", fileProps({ path: "/etc/app.env", content: pulumi.secret("TOKEN=very-secret-token\n"), mode: "0600" }));

    // when
    app.synth();
    await app.written;

    // then
    const text = readFileSync(out, "utf8");
    assert.match(text, /\/etc\/app\.env/);
    assert.ok(!text.includes("very-secret-token"));
  });

  it("refuses to synthesise duplicate paths, and writes nothing", () => {
    // given
    const out = join(dir, "duplicates.yaml");
    const app = new App({ synthOut: out });
    const host = hostIn(app);
    host.addFile("a", fileProps());
    host.addFile("b", fileProps());

    // when
    const messages = messagesOf(() => app.synth());

    // then
    assert.equal(messages.length, 2);
    assert.match(messages[0], /^web1\/a: .*also managed by web1\/b/);
    assert.match(messages[1], /^web1\/b: .*also managed by web1\/a/);
    assert.equal(existsSync(out), false);
  });
});
