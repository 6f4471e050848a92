/**
 * The flagship example (examples/cluster.ts) through the real `pulumi` CLI on
 * a 3-machine lab: an image built on m1 and pushed to the registry, running
 * on Docker (m1), Podman (m2) and systemd + runc (m3), answering over HTTP.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/paths";
import { bootTestLab, expectOk, sh, TestProject, type TestLab } from "./harness";

let lab: TestLab;
let project: TestProject;
const app = mkdtempSync(join(tmpdir(), "drove-app-"));

async function page(machine: string): Promise<string> {
  for (let i = 0; i < 30; i++) {
    try {
      const res = await fetch(`http://${lab.machine(machine).address}:8080/`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) return await res.text();
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return "no answer";
}


describe("the flagship example, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovefl", 34, 3);
    cpSync(join(packageRoot, "examples", "app"), app, { recursive: true });
    project = await TestProject.create(join("..", "..", "examples", "cluster.ts"));
    expectOk(await project.config({ appDir: app }), "config");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up builds the image once and runs it on three runtimes; it answers everywhere; no changes after", async () => {
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    assert.match(up.stdout, /webImage\s*: "10\.213\.34\.1:5000\/drove\/web@sha256:[0-9a-f]{64}"/);
    for (const m of ["m1", "m2", "m3"]) assert.equal(await page(m), "hello from drove\n", m);
    const ps = await lab.ssh("m3", sh`systemctl is-active drove-container-web.service; pgrep -c -x 'dockerd|podman' || true`);
    assert.equal(ps.stdout.trim(), "active\n0", "m3 runs the container with no engine daemon");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("a changed app rebuilds the image and replaces the containers with the new digest; the old image is deleted", async () => {
    // given
    writeFileSync(join(app, "www", "index.html"), "hello again\n");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:Image: \(replace\)[\s\S]*contextHash/);
    expectOk(up, "up");
    assert.match(up.stdout, /\+-4 replaced/);
    for (const m of ["m1", "m2", "m3"]) assert.equal(await page(m), "hello again\n", m);
    const tags = await fetch(`http://${lab.inventory.lab!.registry}/v2/drove/web/tags/list`).then((r) => r.json() as Promise<{ tags: string[] | null }>);
    assert.equal((tags.tags ?? []).length, 1, `only the new image is left in the registry: ${JSON.stringify(tags)}`);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the rebuild");
  });

  test("destroy removes containers, image and pushed manifest", async () => {
    // given
    const registry = lab.inventory.lab!.registry;
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    const tags = await fetch(`http://${registry}/v2/drove/web/tags/list`).then((r) => r.json() as Promise<{ tags: string[] | null }>);
    assert.deepEqual(tags.tags ?? [], [], "the pushed image is gone from the registry");
    const m3 = await lab.ssh("m3", sh`ls /var/lib/drove/containers 2>/dev/null | wc -l`);
    assert.equal(m3.stdout.trim(), "0");
  });
});
