import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { breakdown, category, cgroupTree } from "./machine-cpu";

const stat = (usec: number) => `usage_usec ${usec}\nuser_usec 0\nsystem_usec 0\n`;

describe("machine-cpu: a machine's CPU by the part of it that spent it", () => {
  it("reads a cgroup tree, every level with its descendants' usage", () => {
    const root = mkdtempSync(join(tmpdir(), "drove-cg-"));
    mkdirSync(join(root, "payload/system.slice/docker.service"), { recursive: true });
    writeFileSync(join(root, "cpu.stat"), stat(3_000_000));
    writeFileSync(join(root, "payload/cpu.stat"), stat(2_500_000));
    writeFileSync(join(root, "payload/system.slice/cpu.stat"), stat(2_000_000));
    writeFileSync(join(root, "payload/system.slice/docker.service/cpu.stat"), stat(1_500_000));
    assert.deepEqual(
      [...cgroupTree(root)],
      [
        [".", 3],
        ["payload", 2.5],
        ["payload/system.slice", 2],
        ["payload/system.slice/docker.service", 1.5],
      ],
    );
  });

  it("names the parts a reader knows, counts each cgroup once, and leaves the slices that only sum others", () => {
    assert.equal(category("payload/system.slice/docker.service"), "dockerd");
    assert.equal(category("payload/system.slice/docker-0123abcd.scope"), "the container");
    assert.equal(category("payload/system.slice/ssh.service"), "sshd and the commands run over SSH");
    assert.equal(category("payload/system.slice/cron.service"), "other system services");
    assert.equal(category("payload/system.slice"), undefined, "a slice sums its services: counting it too would count them twice");
    assert.equal(category("payload/system.slice/docker.service/sub"), undefined);
    assert.equal(category("."), undefined);
  });

  it("sums after minus before over machines, with the machines' whole cgroups as the total", () => {
    const before = [new Map([[".", 1], ["payload/system.slice/docker.service", 0.5]]), new Map([[".", 2]])];
    const after = [new Map([[".", 4], ["payload/system.slice/docker.service", 1.5]]), new Map([[".", 3], ["payload/system.slice/docker.service", 0.25]])];
    const b = breakdown(before, after);
    assert.equal(b.get("total"), 4);
    assert.equal(b.get("dockerd"), 1.25, "a cgroup that appeared during the run counts from zero");
  });
});
