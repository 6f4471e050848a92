import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { App } from "../src/app";
import { ValidationError } from "../src/errors";
import { Directory, type DirectoryProps } from "./directory";
import { Host } from "./host";
import { hostIn, messagesOf } from "./testing";



const dirProps = (over: Partial<DirectoryProps> = {}): DirectoryProps => ({ path: "/srv/app", ...over });


describe("Directory props", () => {
  it("resolves defaults: mode 0755, parents made, not recursive, owner and group left alone", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const dir = host.addDirectory("data", dirProps());

    // then
    assert.ok(dir instanceof Directory);
    assert.equal(dir.node.path, "web1/data");
    assert.equal(dir.host, host);
    assert.equal(dir.path, "/srv/app");
    assert.equal(dir.mode, "0755");
    assert.equal(dir.createParents, true);
    assert.equal(dir.recursive, false);
    assert.equal(dir.owner, undefined);
    assert.equal(dir.group, undefined);
  });

  for (const [mode, expected] of [
    ["0700", "0700"],
    ["750", "0750"],
    [0o2775, "2775"],
    ["1777", "1777"],
  ] as const) {
    it(`normalises mode ${typeof mode === "number" ? "0o" + mode.toString(8) : JSON.stringify(mode)} to ${expected}`, () => {
      // given
      const host = hostIn(new App({ synthOut: "-" }));

      // when
      const dir = host.addDirectory("d", dirProps({ mode }));

      // then
      assert.equal(dir.mode, expected);
    });
  }

  for (const [name, path] of [
    ["a relative path", "srv/app"],
    ["the root directory", "/"],
    ["a path with ..", "/srv/../etc"],
    ["a trailing slash", "/srv/app/"],
    ["an empty path", ""],
  ]) {
    it(`refuses ${name}, naming the construct, the prop and the value`, () => {
      // given
      const host = hostIn(new App({ synthOut: "-" }));

      // when
      const messages = messagesOf(() => host.addDirectory("data", dirProps({ path })));

      // then
      assert.deepEqual(messages, [`web1/data: \`path\` must be an absolute, normalised directory path like /srv/app, but ${JSON.stringify(path)} was provided`]);
    });
  }

  for (const mode of ["999", "rwxr-xr-x", "12755", 0o17777]) {
    it(`refuses mode ${JSON.stringify(mode)}`, () => {
      // given
      const host = hostIn(new App({ synthOut: "-" }));

      // when
      const messages = messagesOf(() => host.addDirectory("data", dirProps({ mode })));

      // then
      assert.deepEqual(messages, [`web1/data: \`mode\` must be octal like "0755" or "2775", but ${JSON.stringify(mode)} was provided`]);
    });
  }

  it("reports every prop error at once", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const messages = messagesOf(() => host.addDirectory("data", dirProps({ path: "x", mode: "9", owner: "a b", group: "c;d" })));

    // then
    assert.equal(messages.length, 4);
    assert.match(messages[2], /`owner` must be a name like "www-data", but "a b" was provided/);
    assert.match(messages[3], /`group`/);
  });

  it("throws when created outside a Host, saying how to create it", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new Directory(app, "data", dirProps()));

    // then
    assert.deepEqual(messages, ["data: a Directory must be created inside a Host (new Directory(host, ...) or host.addDirectory(...))"]);
  });
});

describe("Directory validation across constructs", () => {
  it("reports two directories, or a directory and a file, at one path on one host, naming them", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = hostIn(app);
    host.addDirectory("a", dirProps({ path: "/etc/motd" }));
    new Directory(new Construct(host, "group"), "b", dirProps({ path: "/srv/app" }));
    host.addDirectory("c", dirProps({ path: "/srv/app" }));
    host.addFile("f", { path: "/etc/motd", content: "" });

    // when
    const errors = app.validate();

    // then
    assert.deepEqual(errors, [
      "web1/a: `path` /etc/motd is also managed by web1/f; give each its own path",
      "web1/group/b: `path` /srv/app is also managed by web1/c; give each its own path",
      "web1/c: `path` /srv/app is also managed by web1/group/b; give each its own path",
    ]);
  });

  it("allows one path on two hosts", () => {
    // given
    const app = new App({ synthOut: "-" });
    hostIn(app, "web1").addDirectory("d", dirProps());
    hostIn(app, "web2").addDirectory("d", dirProps());

    // when / then
    assert.deepEqual(app.validate(), []);
  });
});

describe("Directory spec", () => {
  it("renders what the provider needs, owner and group only when given", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    const plainDir = host.addDirectory("plain", dirProps());
    const owned = host.addDirectory("owned", dirProps({ path: "/srv/owned", mode: "2770", owner: "www-data", group: "adm", recursive: true, createParents: false }));

    // when
    const a = plainDir._toSpec();
    const b = owned._toSpec();

    // then
    assert.equal(a.type, "drove:index:Directory");
    assert.equal(a.parent, host);
    assert.deepEqual(a.outputs, ["created"]);
    const { connection: ca, ...pa } = a.props;
    const { connection: _cb, ...pb } = b.props;
    assert.ok(ca !== undefined, "the directory says how to reach its host");
    assert.deepEqual(pa, { path: "/srv/app", mode: "0755", createParents: true, recursive: false });
    assert.deepEqual(pb, { path: "/srv/owned", mode: "2770", owner: "www-data", group: "adm", createParents: false, recursive: true });
  });
});
