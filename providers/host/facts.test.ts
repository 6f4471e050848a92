import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostFactsCommand, parseHostFacts, type HostFacts } from "./facts";

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

  it("asks a tool its version again only when its binary changed since the facts it is given", () => {
    // given a `crun` first on PATH that counts how often it runs
    const dir = mkdtempSync(join(tmpdir(), "drove-facts-"));
    const count = join(dir, "count");
    writeFileSync(count, "");
    const tool = join(dir, "crun");
    writeFileSync(tool, `#!/bin/sh\necho run >> ${count}\necho "crun version 1.8.1"\n`, { mode: 0o755 });
    const probe = (known?: HostFacts) =>
      parseHostFacts(execFileSync("sh", ["-c", hostFactsCommand(known).text], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } }));
    const runs = () => readFileSync(count, "utf8").split("\n").filter(Boolean).length;
    // when it is probed with nothing known, then with what that probe found
    const first = probe();
    const second = probe(first);
    // then it ran once, and both report its version and its binary's stamp
    assert.equal(runs(), 1);
    assert.equal(first.tools.crun, "1.8.1");
    assert.deepEqual(second, first);
    assert.match(first.toolStamps?.crun ?? "", /^\d+\.\d+\.\d+$/);
    // when the binary changes (an upgrade), then it is asked again
    appendFileSync(tool, "# 1.9\n");
    const third = probe(second);
    assert.equal(runs(), 2);
    assert.notEqual(third.toolStamps?.crun, first.toolStamps?.crun);
    // and a stamp that is not one (state edited by hand) is never trusted or executed
    const odd = { ...first, toolStamps: { crun: "1.2.3'; touch /tmp/x; '" }, tools: { crun: "9.9" } };
    assert.equal(probe(odd).tools.crun, "1.8.1");
  });
});
