/**
 * The flagship example (examples/cluster.ts) through the real `pulumi` CLI on
 * a 3-machine lab: a registry on m1 (HTTPS, basic auth), an image built on m1
 * and pushed there, running on Docker (m1), Podman (m2) and systemd + runc
 * (m3), answering over HTTP.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/paths";
import { bootTestLab, eventually, expectOk, httpText, sh, TestProject, type TestLab } from "./harness";

let lab: TestLab;
let project: TestProject;
const app = mkdtempSync(join(tmpdir(), "drove-app-"));
const PASSWORD = "flagship-registry-pw-91c3";

/** The tags of drove/web in m1's registry, asked on m1 with its CA and credentials (never on a command line). */
async function tags(): Promise<string[]> {
  const ep = `${lab.machine("m1").address}:5000`;
  const r = await lab.ssh(
    "m1",
    sh`auth=$(grep -o '"auth": *"[^"]*"' /root/.docker/config.json | cut -d'"' -f4 | head -n1); printf 'Authorization: Basic %s\n' "$auth" | curl -fsS -H @- --cacert ${`/etc/docker/certs.d/${ep}/ca.crt`} ${`https://${ep}/v2/drove/web/tags/list`}`,
  );
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { tags: string[] | null }).tags ?? [];
}

const page = (machine: string) => httpText(`http://${lab.machine(machine).address}:8080/`);


describe("the flagship example, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovefl", 34, 3);
    cpSync(join(packageRoot, "examples", "app"), app, { recursive: true });
    project = await TestProject.create(join("..", "..", "examples", "cluster.ts"));
    expectOk(await project.config({ appDir: app }), "config");
    expectOk(await project.config({ registryPassword: PASSWORD }, true), "config --secret");
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
    assert.match(up.stdout, /webImage\s*: "10\.213\.34\.11:5000\/drove\/web@sha256:[0-9a-f]{64}"/);
    assert.ok(!up.output.includes(PASSWORD) && !project.stateText().includes(PASSWORD), "the registry password shows in plaintext");
    for (const m of ["m1", "m2", "m3"]) assert.equal(await eventually(() => page(m), "hello from drove\n"), "hello from drove\n", m);
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
    for (const m of ["m1", "m2", "m3"]) assert.equal(await eventually(() => page(m), "hello again\n"), "hello again\n", m);
    const left = await tags();
    assert.equal(left.length, 1, `only the new image is left in the registry: ${JSON.stringify(left)}`);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the rebuild");
  });

  test("destroy removes containers, image, registry and its data, and every host's trust and credentials", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    const m1 = await lab.ssh("m1", sh`ls -d /var/lib/drove-registry /etc/docker/registry/drove 2>/dev/null | wc -l; systemctl is-active docker-registry.service || true`);
    assert.equal(m1.stdout.trim(), "0\ninactive", "the registry and its data are gone from m1");
    for (const m of ["m1", "m2", "m3"]) {
      const trust = await lab.ssh(m, sh`ls /etc/docker/certs.d /etc/containers/certs.d /root/.docker/config.json 2>/dev/null | grep -c 5000 || true`);
      assert.equal(trust.stdout.trim(), "0", `no trust or credentials left on ${m}`);
    }
    const m3 = await lab.ssh("m3", sh`ls /var/lib/drove/containers 2>/dev/null | wc -l`);
    assert.equal(m3.stdout.trim(), "0");
  });
});
