import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { packageFactsCommand, parsePackageFacts, type PackageFact } from "./facts";
import { aptUpdateStep, planPackage, planPackageRemoval, type PackageDesired } from "./operations";

const APT =
  "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";
const absent: PackageFact = { state: "absent" };
const installed = (version: string): PackageFact => ({ state: "installed", version });

describe("planPackage: desired + facts -> steps", () => {
  const table: { name: string; desired: PackageDesired; fact: PackageFact; steps: { description: string; command: string }[] }[] = [
    { name: "absent -> install", desired: { name: "curl" }, fact: absent, steps: [{ description: "install curl", command: `${APT} install --no-install-recommends --allow-downgrades curl` }] },
    {
      name: "absent, pinned -> install that version",
      desired: { name: "curl", version: "7.88.1-10+deb12u5" },
      fact: absent,
      steps: [{ description: "install curl=7.88.1-10+deb12u5", command: `${APT} install --no-install-recommends --allow-downgrades curl=7.88.1-10+deb12u5` }],
    },
    { name: "installed, any version -> no-op", desired: { name: "curl" }, fact: installed("7.88.1-10+deb12u5"), steps: [] },
    { name: "installed at the pinned version -> no-op", desired: { name: "curl", version: "7.88.1-10+deb12u5" }, fact: installed("7.88.1-10+deb12u5"), steps: [] },
    {
      name: "installed at another version -> change it",
      desired: { name: "curl", version: "7.88.1-10+deb12u4" },
      fact: installed("7.88.1-10+deb12u5"),
      steps: [{ description: "change curl 7.88.1-10+deb12u5 -> 7.88.1-10+deb12u4", command: `${APT} install --no-install-recommends --allow-downgrades curl=7.88.1-10+deb12u4` }],
    },
    {
      name: "a version with an epoch is one quoted word",
      desired: { name: "busybox-static", version: "1:1.35.0-4" },
      fact: absent,
      steps: [{ description: "install busybox-static=1:1.35.0-4", command: `${APT} install --no-install-recommends --allow-downgrades busybox-static=1:1.35.0-4` }],
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      // given / when
      const steps = planPackage(t.desired, t.fact).map((s) => ({ description: s.description, command: s.command.text }));
      // then
      assert.deepEqual(steps, t.steps);
    });
  }
});

describe("planPackageRemoval", () => {
  it("purges a package drove installed", () => {
    assert.deepEqual(
      planPackageRemoval("curl", installed("1"), false).map((s) => s.command.text),
      [`${APT} purge curl`],
    );
  });
  it("leaves a package that was there before drove (adopted)", () => {
    assert.deepEqual(planPackageRemoval("procps", installed("1"), true), []);
  });
  it("does nothing for a package already gone", () => {
    assert.deepEqual(planPackageRemoval("curl", absent, false), []);
  });
});

describe("package facts", () => {
  it("one probe reads installed and missing packages on a real dpkg", () => {
    // given this Debian machine, where dpkg is installed and the second name is not a package
    const cmd = packageFactsCommand(["dpkg", "drove-no-such-package"]).text;
    // when
    const facts = parsePackageFacts(execFileSync("sh", ["-c", cmd], { encoding: "utf8" }));
    // then
    const dpkg = facts.get("dpkg");
    assert.equal(dpkg?.state, "installed");
    assert.match((dpkg as { version: string }).version, /^\d/);
    assert.deepEqual(facts.get("drove-no-such-package"), { state: "absent" });
  });
  it("treats removed-but-configured packages as absent", () => {
    const facts = parsePackageFacts("foo\tdeinstall ok config-files\t1.0\nbar\tinstall ok installed\t2.0\n");
    assert.deepEqual(facts.get("foo"), { state: "absent" });
    assert.deepEqual(facts.get("bar"), { state: "installed", version: "2.0" });
  });
  it("the update step refreshes lists non-interactively, waiting for the dpkg lock", () => {
    assert.equal(aptUpdateStep().command.text, `${APT} update`);
  });
});
