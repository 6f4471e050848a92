/**
 * CoreOS-like OS images through the real `pulumi` CLI on a 3-machine lab:
 * the machines move onto an image, a version bump rolls across them one at a
 * time with their web service answering throughout, a broken image is rolled
 * back on the first machine and the roll stops there.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { bootTestLab, expectMatch, expectOk, httpText, sh, type TestLab, TestProject } from "./harness";

let lab: TestLab;
let project: TestProject;
const MACHINES = ["m1", "m2", "m3"];

/**
 * When this machine's kernel booted (epoch ms), measured once: lab machines share it, and PID 1
 * of each starts some ticks after it. (/proc/stat's btime is whole seconds, too coarse to order a
 * boot against a mark; measuring per call would make an untouched machine's time jitter.)
 */
const KERNEL_BOOT_MS = Date.now() - Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;

/**
 * Per machine: the image it booted, when its PID 1 started (epoch ms, from its start in clock
 * ticks), when its boot was marked good (epoch s, to the millisecond).
 */
async function bootOf(m: string): Promise<{ image: string; bootedAt: number; goodAt: number; rollback: string; usrWritable: boolean }> {
  const r = await lab.ssh(
    m,
    sh`. /usr/lib/os-release; echo "$IMAGE_ID $IMAGE_VERSION"; echo "$(awk '{print $22}' /proc/1/stat) $(getconf CLK_TCK)"; stat -c %.3Y /var/lib/drove/os/good 2>/dev/null || echo 0; echo "$(head -1 /var/lib/drove/os/rollback 2>/dev/null)"; touch /usr/.drove-probe 2>/dev/null && rm -f /usr/.drove-probe && echo writable || echo read-only`,
  );
  const [image, start, goodAt, rollback, usr] = r.stdout.split("\n");
  const [ticks, hz] = start.trim().split(" ").map(Number);
  return { image: image.trim(), bootedAt: Math.round(KERNEL_BOOT_MS + (ticks * 1000) / hz), goodAt: Number(goodAt), rollback: rollback.trim(), usrWritable: usr.trim() === "writable" };
}

/** Polls every machine's web service in the background: what each answered, sample by sample. */
function startPoller(): { stop(): Promise<string[][]> } {
  const samples: string[][] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const row = await Promise.all(lab.inventory.machines.map((m) => httpText(`http://${m.address}:8080/`, { trim: true })));
      samples.push(row.map((x) => (x.startsWith("web-os") ? x : "down")));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

describe("OS images through the real pulumi CLI", { timeout: 40 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droveos", 56, 3);
    project = await TestProject.create("os-image.ts");
    expectOk(await project.config({ version: "1.0", deadline: "60" }), "config");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left nothing behind");
  });

  test("the machines move onto web-os 1.0: first-boot users, units and files, a read-only /usr", async () => {
    // given machines on the lab's base image, with a writable /usr
    assert.equal((await bootOf("m1")).usrWritable, true);
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "pulumi up 1.0");
    for (const m of MACHINES) {
      const b = await bootOf(m);
      assert.equal(b.image, "web-os 1.0", `${m} runs the image`);
      assert.equal(b.usrWritable, false, `${m}'s /usr is read-only`);
      assert.equal(await httpText(`http://${lab.machine(m).address}:8080/`, { trim: true }), "web-os 1.0");
      const r = await lab.ssh(m, sh`id -u core && cat /home/core/.ssh/authorized_keys && cat /etc/motd && grep -c 'variant: fcos' /usr/share/drove/os-image.bu`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ssh-ed25519 AAAA/);
      assert.match(r.stdout, /web-os 1\.0, made by drove/);
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("a version bump shows per host in the preview, then rolls one machine at a time while the service answers", async () => {
    // given
    expectOk(await project.config({ version: "1.1" }), "config");
    const before = Object.fromEntries(await Promise.all(MACHINES.map(async (m) => [m, await bootOf(m)] as const)));
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const poller = startPoller();
    const up = await project.pulumi(["up", "--yes"]);
    const samples = await poller.stop();
    // then
    expectOk(preview, "preview");
    for (const m of MACHINES) assert.match(preview.stdout, new RegExp(`${m}/os-image[\\s\\S]*?osImage\\s*: "web-os 1\\.0" => "web-os 1\\.1"`), `the preview names ${m}'s image change`);
    expectOk(up, "pulumi up 1.1");
    const after = Object.fromEntries(await Promise.all(MACHINES.map(async (m) => [m, await bootOf(m)] as const)));
    for (const m of MACHINES) {
      assert.equal(after[m].image, "web-os 1.1");
      assert.ok(after[m].bootedAt > before[m].bootedAt, `${m} rebooted`);
    }
    // one at a time: each machine booted the new image only after the one before it was marked good
    assert.ok(after.m2.bootedAt > after.m1.goodAt * 1000, `m2 booted (${after.m2.bootedAt}) after m1 was marked good (${after.m1.goodAt}000)`);
    assert.ok(after.m3.bootedAt > after.m2.goodAt * 1000, `m3 booted (${after.m3.bootedAt}) after m2 was marked good (${after.m2.goodAt}000)`);
    // the service answered throughout: never more than one machine down at once, never none answering
    assert.ok(samples.length > 10, `the poller took ${samples.length} samples`);
    const worst = samples.reduce((w, row) => Math.max(w, row.filter((x) => x === "down").length), 0);
    assert.ok(worst <= 1, `at most one machine was down at once, but a sample saw ${worst}: ${JSON.stringify(samples.find((r) => r.filter((x) => x === "down").length > 1))}`);
    // and the order is visible to the poller: m1 served 1.1 first, m3 last
    const firstNew = MACHINES.map((_, i) => samples.findIndex((row) => row[i] === "web-os 1.1"));
    assert.ok(firstNew.every((i) => i >= 0), `every machine served 1.1 during the roll: ${firstNew}`);
    assert.ok(firstNew[0] < firstNew[1] && firstNew[1] < firstNew[2], `m1, m2, m3 served 1.1 in that order (first samples ${firstNew})`);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the roll");
  });

  test("a broken image (sshd masked) is rolled back on the first machine and the roll stops", async () => {
    // given
    expectOk(await project.config({ version: "1.2", broken: "ssh" }), "config");
    const before = Object.fromEntries(await Promise.all(MACHINES.map(async (m) => [m, await bootOf(m)] as const)));
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0, `the up must fail:\n${up.output}`);
    expectMatch(up.output, /Unable to roll web-os 1\.2 on m1 \(root@10\.213\.56\.11\): the new boot was not marked good \(its updater: web-os 1\.2 was rolled back to web-os 1\.1: not marked good within 60 s\)/);
    expectMatch(up.output, /rolled back and runs web-os 1\.1 again/);
    assert.doesNotMatch(up.output, /roll web-os 1\.2 on m[23]/);
    const m1 = await bootOf("m1");
    assert.equal(m1.image, "web-os 1.1");
    assert.ok(m1.bootedAt > before.m1.bootedAt, "m1 booted 1.2, then 1.1 again");
    assert.equal(m1.rollback, "web-os 1.2 was rolled back to web-os 1.1: not marked good within 60 s");
    for (const m of ["m2", "m3"]) assert.deepEqual(await bootOf(m), before[m], `${m} is untouched`);
    // a failed roll is still a change to make
    const preview = await project.pulumi(["preview", "--diff"]);
    assert.match(preview.stdout, /osImage\s*: "web-os 1\.1" => "web-os 1\.2"/);
  });

  test("an image whose health unit fails is rebooted unmarked, rolled back on the first machine, and the roll stops", async () => {
    // given
    expectOk(await project.config({ version: "1.3", broken: "unit" }), "config");
    const before = Object.fromEntries(await Promise.all(MACHINES.map(async (m) => [m, await bootOf(m)] as const)));
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0, `the up must fail:\n${up.output}`);
    expectMatch(up.output, /Unable to roll web-os 1\.3 on m1 \(root@10\.213\.56\.11\): the new boot was not marked good \(its health: unit selftest\.service is failed; its updater: web-os 1\.3 was rolled back to web-os 1\.1: it rebooted before it was marked good\), so it was rolled back and runs web-os 1\.1 again/);
    const m1 = await bootOf("m1");
    assert.equal(m1.image, "web-os 1.1");
    assert.ok(m1.bootedAt > before.m1.bootedAt, "m1 booted 1.3, then 1.1 again");
    for (const m of ["m2", "m3"]) assert.deepEqual(await bootOf(m), before[m], `${m} is untouched`);
  });

  test("a host without an OS updater stops the plan before any host changes", async () => {
    // given m2 with no updater announced (the lab binds it read-only at /run/drove-os-updater)
    expectOk(await project.pulumi(["config", "rm", "broken"]), "config rm");
    expectOk(await project.config({ version: "1.4" }), "config");
    const r = await lab.ssh("m2", sh`umount /run/drove-os-updater && : > /run/drove-os-updater`);
    assert.equal(r.code, 0, r.stderr);
    const before = Object.fromEntries(await Promise.all(MACHINES.map(async (m) => [m, await bootOf(m)] as const)));
    try {
      // when
      const up = await project.pulumi(["up", "--yes"]);
      // then
      assert.notEqual(up.code, 0, `the up must fail:\n${up.output}`);
      expectMatch(up.output, /m2 \(root@10\.213\.56\.12\) runs web-os 1\.1 and has no OS updater \(nothing announces itself at \/run\/drove-os-updater\)/);
      for (const m of MACHINES) assert.deepEqual(await bootOf(m), before[m], `${m} is untouched`);
    } finally {
      await lab.ssh("m2", sh`echo lab-overlay > /run/drove-os-updater`);
    }
  });

  test("back on 1.1, the preview shows no changes and Host facts name the image", async () => {
    expectOk(await project.config({ version: "1.1" }), "config");
    // an up with nothing to change records the facts its refresh read
    expectOk(await project.pulumi(["up", "--yes"]), "up");
    const out = await project.pulumi(["stack", "output", "images", "--json"]);
    expectOk(out, "stack output");
    assert.deepEqual(JSON.parse(out.stdout), ["web-os 1.1", "web-os 1.1", "web-os 1.1"]);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });
});
