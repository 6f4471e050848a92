import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SshTarget } from "../../src/ssh";
import { UNKNOWN } from "../common";
import { sha256 } from "../file/operations";
import { unitKind, type UnitOutputs } from "./provider";

const connection = { host: "10.0.0.5", port: 22, user: "root", privateKey: "fake-test-key\nAAAA\n", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" } as SshTarget;
const HELLO = "[Service]\nExecStart=/usr/local/bin/hello\n\n[Install]\nWantedBy=multi-user.target\n";

const news = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ connection, name: "hello.service", content: HELLO, ...over });

const olds = (over: Partial<UnitOutputs> = {}): UnitOutputs => ({
  connection,
  name: "hello.service",
  content: HELLO,
  enabled: true,
  active: true,
  path: "/etc/systemd/system/hello.service",
  sha256: sha256(HELLO),
  ...over,
});

describe("SystemdUnit check", () => {
  it("fills in the defaults: enabled and active", () => {
    // when
    const { inputs, failures } = unitKind.check(news());

    // then
    assert.deepEqual(failures, []);
    assert.deepEqual(inputs, { connection, name: "hello.service", content: HELLO, enabled: true, active: true });
  });

  const bad: [string, Record<string, unknown>, string, RegExp][] = [
    ["a name without a unit suffix", news({ name: "hello" }), "name", /^`name` must be a unit name like hello\.service/],
    ["a template name", news({ name: "getty@.service" }), "name", /is a template/],
    ["content that is not text", news({ content: 42 }), "content", /^`content` must be the unit file's text$/],
    ["missing content", news({ content: undefined }), "content", /^`content` must be the unit file's text$/],
    ["enabled that is not a boolean", news({ enabled: "yes" }), "enabled", /^`enabled` must be true or false, but "yes" was provided$/],
    ["enabled without an [Install] section", news({ content: "[Service]\nExecStart=/bin/true\n" }), "content", /^`enabled` is true, but the unit has no \[Install\] section/],
    ["an active oneshot that would not stay active", news({ content: "[Service]\nType=oneshot\nExecStart=/bin/true\n", enabled: false }), "content", /RemainAfterExit=yes/],
  ];
  for (const [name, input, property, reason] of bad) {
    it(`refuses ${name}, naming the property`, () => {
      // when
      const { failures } = unitKind.check(input);

      // then
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0].property, property);
      assert.match(failures[0].reason, reason);
    });
  }

  it("leaves text it does not know yet (preview) to be checked later", () => {
    // when
    const { failures } = unitKind.check(news({ content: UNKNOWN }));

    // then
    assert.deepEqual(failures, []);
  });
});

describe("SystemdUnit diff", () => {
  it("shows no change when the machine matches the program", () => {
    // when / then
    assert.deepEqual(unitKind.diff(olds(), unitKind.check(news()).inputs), { changes: false, replaces: [] });
  });

  it("changes in place when content, enabled or active differ", () => {
    // when / then
    assert.deepEqual(unitKind.diff(olds({ active: false }), unitKind.check(news()).inputs), { changes: true, replaces: [] });
    assert.deepEqual(unitKind.diff(olds({ enabled: false }), unitKind.check(news()).inputs), { changes: true, replaces: [] });
    assert.deepEqual(unitKind.diff(olds({ content: "[Service]\n" }), unitKind.check(news()).inputs), { changes: true, replaces: [] });
  });

  it("replaces the unit when its name changes", () => {
    // when / then
    assert.deepEqual(unitKind.diff(olds(), unitKind.check(news({ name: "hi.service" })).inputs), { changes: true, replaces: ["name"] });
  });

  it("counts a unit systemd has not reloaded as a change, so up reloads it", () => {
    // when / then
    assert.deepEqual(unitKind.diff(olds({ needsDaemonReload: true }), unitKind.check(news()).inputs), { changes: true, replaces: [] });
  });

  it("does not compare what only the provider sets", () => {
    // when / then
    assert.deepEqual(unitKind.diff(olds({ sha256: "0".repeat(64), path: "/elsewhere" }), unitKind.check(news()).inputs).changes, false);
  });
});
