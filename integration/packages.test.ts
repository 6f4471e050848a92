/**
 * Debian packages through the real `pulumi` CLI on lab machines (which reach
 * Debian only through the lab's apt proxy): install, no changes, drift
 * repaired, version pinning, a clear error for a version that does not exist,
 * replacement, and a destroy that removes what drove installed and nothing else.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";

let lab: TestLab;
let project: TestProject;

async function version(machine: string, name: string): Promise<string> {
  const r = await lab.ssh(machine, sh`dpkg-query -W -f='\${Status} \${Version}' ${name} 2>/dev/null | grep '^install ok installed' | cut -d' ' -f4 || true`);
  return r.stdout.trim() || "ABSENT";
}


describe("Package on lab machines, through the real pulumi CLI", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovepk", 31, 2);
    project = await TestProject.create("packages.ts");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("installs a missing package and adopts one already there; a second preview shows no changes", async () => {
    // given busybox-static is not in the image, procps is
    assert.equal(await version("m1", "busybox-static"), "ABSENT");
    assert.notEqual(await version("m1", "procps"), "ABSENT");
    expectOk(await project.config({ packages: "busybox-static,procps" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    for (const m of ["m1", "m2"]) assert.match(await version(m, "busybox-static"), /^1:1\.35/);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("a package removed by hand shows in preview --refresh and up installs it again", async () => {
    // given
    await lab.ssh("m2", sh`DEBIAN_FRONTEND=noninteractive apt-get -y -q purge busybox-static`);
    assert.equal(await version("m2", "busybox-static"), "ABSENT");
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+ drove:index:Package: \(create\)[\s\S]*name\s*: "busybox-static"/);
    expectOk(up, "up");
    assert.match(await version("m2", "busybox-static"), /^1:1\.35/);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("a version that does not exist fails with apt's reason, naming the host, and changes nothing", async () => {
    // given
    const before = await version("m1", "busybox-static");
    expectOk(await project.config({ packages: "busybox-static=9:9.9-nope,procps" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0);
    expectMatch(up.output, /Unable to install package busybox-static on root@10\.213\.31\.1[12]: .*Version '9:9\.9-nope' for 'busybox-static' was not found/);
    assert.equal(await version("m1", "busybox-static"), before);
  });

  test("pinning the installed version is no change; renaming replaces: the old package goes, the new one comes", async () => {
    // given the version now installed, pinned
    const v = await version("m1", "busybox-static");
    expectOk(await project.config({ packages: `busybox-static=${v},procps` }), "config");
    expectOk(await project.pulumi(["up", "--yes"]), "up with the pin");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview with the pin");
    // when
    expectOk(await project.config({ packages: "tree,procps" }), "config");
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:Package: \(replace\)/);
    expectOk(up, "up");
    for (const m of ["m1", "m2"]) {
      assert.equal(await version(m, "busybox-static"), "ABSENT");
      assert.notEqual(await version(m, "tree"), "ABSENT");
    }
  });

  test("destroy removes what drove installed and leaves what was there before", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    for (const m of ["m1", "m2"]) {
      assert.equal(await version(m, "tree"), "ABSENT");
      assert.notEqual(await version(m, "procps"), "ABSENT", "procps was on the machine before drove and stays");
    }
  });
});
