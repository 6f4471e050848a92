import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { hostFactsCommand, parseHostFacts } from "./facts";

describe("host facts", () => {
  it("the probe runs in a POSIX shell and parses into typed facts", () => {
    // given this machine (any Linux with /etc/os-release)
    // when
    const facts = parseHostFacts(execFileSync("sh", ["-c", hostFactsCommand().text], { encoding: "utf8" }));
    // then
    assert.equal(facts.kernel, execFileSync("uname", ["-r"], { encoding: "utf8" }).trim());
    assert.equal(facts.arch, execFileSync("uname", ["-m"], { encoding: "utf8" }).trim());
    assert.match(facts.os, /^\w+ /);
    for (const v of Object.values(facts.tools)) assert.match(v, /^\d+\.\d+(\.\d+)?$|^present$/);
  });

  it("parses a recorded answer, tools with and without versions", () => {
    // given
    const out = "os=debian 12\nhostname=m1\nmachineId=abc\nkernel=6.1.0\narch=x86_64\ntool.docker=20.10.24\ntool.systemctl=\n";
    // when
    const f = parseHostFacts(out);
    // then
    assert.deepEqual(f, { hostname: "m1", machineId: "abc", os: "debian 12", kernel: "6.1.0", arch: "x86_64", tools: { docker: "20.10.24", systemctl: "present" } });
  });

  it("refuses an answer without a machine-id, quoting it", () => {
    assert.throws(() => parseHostFacts("os=debian 12\nhostname=m1\nkernel=6\narch=x\n"), /did not report machineId/);
  });
});
