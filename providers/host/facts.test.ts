import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostFactsCommand, parseHostFacts, type HostFacts } from "./facts";

/** A `crun` first on PATH that counts how often it runs, and a dpkg database of its own (empty until a test fills it). */
function countingCrun() {
  const dir = mkdtempSync(join(tmpdir(), "drove-facts-"));
  const count = join(dir, "count");
  writeFileSync(count, "");
  const tool = join(dir, "crun");
  writeFileSync(tool, `#!/bin/sh\necho run >> ${count}\necho "crun version 1.8.1"\n`, { mode: 0o755 });
  const dpkg = join(dir, "dpkg");
  mkdirSync(join(dpkg, "info"), { recursive: true });
  const probe = (known?: HostFacts) =>
    parseHostFacts(execFileSync("sh", ["-c", hostFactsCommand(known, dpkg).text], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } }));
  const runs = () => readFileSync(count, "utf8").split("\n").filter(Boolean).length;
  return { tool, dpkg, probe, runs };
}

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
    const { tool, probe, runs } = countingCrun();
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

  it("takes a tool's version from the Debian package that installed its binary, without running it", () => {
    // given a `crun` on PATH that counts its runs, and a dpkg database
    const { tool, dpkg, probe, runs } = countingCrun();
    const status = (state: string) =>
      writeFileSync(join(dpkg, "status"), `Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\nPackage: crun\nStatus: ${state}\nPriority: optional\nVersion: 1.9.2-1+deb12u1\n\n`);
    // when the package lists the binary
    writeFileSync(join(dpkg, "info", "crun.list"), `/.\n/usr/share/doc/crun\n${tool}\n`);
    status("install ok installed");
    const fromPackage = probe();
    // then the package's version, and the tool never ran
    assert.equal(fromPackage.tools.crun, "1.9.2");
    assert.equal(runs(), 0);
    // when the package is removed (its config files left), or lists another binary, then the tool is asked
    status("deinstall ok config-files");
    assert.equal(probe().tools.crun, "1.8.1");
    status("install ok installed");
    writeFileSync(join(dpkg, "info", "crun.list"), `/usr/bin/crun\n${tool}-old\n`);
    assert.equal(probe().tools.crun, "1.8.1");
    assert.equal(runs(), 2);
  });

  it("a version is the numbers of a package's version or of a tool's first line", () => {
    const f = parseHostFacts(
      "os=debian 12\nhostname=m1\nmachineId=abc\nkernel=6.1.0\narch=x86_64\ntool.docker=Docker version 20.10.24+dfsg1, build 297e128\ntool.containerd=1.6.20~ds1-1+deb12u3\ntool.systemctl=252.39-1~deb12u2\ntool.etcd=1:3.4.23-4\ntool.crun=\n",
    );
    assert.deepEqual(f.tools, { docker: "20.10.24", containerd: "1.6.20", systemctl: "252.39", etcd: "3.4.23", crun: "present" });
  });
});
