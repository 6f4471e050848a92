import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SshTarget } from "../../src/ssh";
import { directoryKind, type DirectoryOutputs } from "./provider";

const connection = { host: "10.0.0.5", port: 22, user: "root", privateKey: "fake-test-key\nAAAA\n", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" } as SshTarget;

const news = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ connection, path: "/srv/app", ...over });

const olds = (over: Partial<DirectoryOutputs> = {}): DirectoryOutputs => ({
  connection,
  path: "/srv/app",
  mode: "0755",
  createParents: true,
  recursive: false,
  created: true,
  ...over,
});

describe("Directory check", () => {
  it("fills in the defaults: mode 0755, parents made, not recursive", () => {
    // when
    const { inputs, failures } = directoryKind.check(news());

    // then
    assert.deepEqual(failures, []);
    assert.deepEqual(inputs, { connection, path: "/srv/app", mode: "0755", createParents: true, recursive: false });
  });

  it("pads a three-digit mode and keeps a four-digit one", () => {
    // when / then
    assert.equal(directoryKind.check(news({ mode: "750" })).inputs.mode, "0750");
    assert.equal(directoryKind.check(news({ mode: "2775" })).inputs.mode, "2775");
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["a relative path", news({ path: "srv/app" }), "path"],
    ["the root directory", news({ path: "/" }), "path"],
    ["a path with ..", news({ path: "/srv/../etc" }), "path"],
    ["a symbolic mode", news({ mode: "rwxr-xr-x" }), "mode"],
    ["a five-digit mode", news({ mode: "12755" }), "mode"],
    ["an owner with a space", news({ owner: "www data" }), "owner"],
    ["recursive that is not a boolean", news({ recursive: "yes" }), "recursive"],
  ];
  for (const [name, input, property] of bad) {
    it(`refuses ${name}, naming the property`, () => {
      // when
      const { failures } = directoryKind.check(input);

      // then
      assert.deepEqual(failures.map((f) => f.property), [property]);
    });
  }
});

describe("Directory diff", () => {
  it("shows no change when the machine matches the program, whoever made the directory", () => {
    // when / then
    assert.equal(directoryKind.diff(olds({ created: false }), directoryKind.check(news()).inputs).changes, false);
  });

  it("changes mode in place", () => {
    // when / then
    assert.deepEqual(directoryKind.diff(olds({ mode: "0700" }), directoryKind.check(news()).inputs), { changes: true, replaces: [] });
  });

  it("replaces the directory when its path changes", () => {
    // when / then
    assert.deepEqual(directoryKind.diff(olds(), directoryKind.check(news({ path: "/srv/other" })).inputs), { changes: true, replaces: ["path"] });
  });
});
