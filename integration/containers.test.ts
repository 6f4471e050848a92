/**
 * Containers through the real `pulumi` CLI on lab machines: Docker on m1,
 * Podman on m2, and on m3 no engine at all (a systemd unit running runc),
 * each running an image built for real and pushed to the lab's registry; the
 * service answers over HTTP on each.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, eventually, expectMatch, expectOk, httpText, sh, type TestLab, TestProject } from "./harness";
import { pushWebImage, type TestImage } from "./fixtures";

let lab: TestLab;
const get = (machine: string, path: string) => httpText(`http://${lab.machine(machine).address}:8080${path}`);
let project: TestProject;
let v1: TestImage;
const SECRET = "greetings-from-a-secret-4b1d";




const engines: Record<string, string> = { m1: "docker", m2: "podman", m3: "systemd" };

describe("Container on Docker, Podman and systemd + runc, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droveco", 33, 3);
    v1 = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello v1\n");
    project = await TestProject.create("containers.ts");
    expectOk(await project.config({ image: v1.digestRef }), "config");
    expectOk(await project.config({ greeting: SECRET }, true), "config --secret");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up runs the image on all three runtimes; each answers over HTTP with its secret env; no changes after", async () => {
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    for (const m of ["m1", "m2", "m3"]) {
      assert.equal(await eventually(() => get(m, "/"), "hello v1\n"), "hello v1\n", `${m} (${engines[m]})`);
      assert.equal(await get(m, "/env.txt"), `${SECRET}\n`);
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("the secret env value appears nowhere: not in state, not in the diff, not on a command line", async () => {
    // when
    const preview = await project.pulumi(["preview", "--diff", "--refresh"]);
    // then
    assert.ok(!preview.output.includes(SECRET), "the preview shows the secret");
    assert.ok(!project.stateText().includes(SECRET), "the state holds the secret in plaintext");
    const inspect = await lab.ssh("m1", sh`docker inspect web --format '{{json .Args}} {{json .Path}}'; ps -eo args`);
    assert.ok(!inspect.stdout.includes(SECRET), "the secret is on a command line");
  });

  test("a container stopped or removed by hand shows as drift and up repairs it", async () => {
    // given
    await lab.ssh("m1", sh`docker stop web`);
    await lab.ssh("m2", sh`podman rm --force web`);
    await lab.ssh("m3", sh`systemctl stop drove-container-web.service`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /running\s*: false => true|running\s*: true => false/);
    assert.match(preview.stdout, /\+ drove:index:Container: \(create\)/);
    expectOk(up, "up");
    for (const m of ["m1", "m2", "m3"]) assert.equal(await eventually(() => get(m, "/"), "hello v1\n"), "hello v1\n", m);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("a systemd + runc unit edited by hand shows as a unitFile diff; up rewrites it without restarting the container", async () => {
    // given
    const unit = "drove-container-web.service";
    const pid = async () => (await lab.ssh("m3", sh`systemctl show -p MainPID --value ${unit}`)).stdout.trim();
    const before = await pid();
    await lab.ssh("m3", sh`sed -i 's/^TimeoutStopSec=10$/TimeoutStopSec=90/' ${`/etc/systemd/system/${unit}`} && systemctl daemon-reload`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    expectMatch(preview.stdout, /~ unitFile\s*:/, "the unit's drift");
    expectMatch(preview.stdout, /- TimeoutStopSec=90\s+\+ TimeoutStopSec=10/, "a line diff of the unit");
    expectOk(up, "up");
    const now = await lab.ssh("m3", sh`grep -c '^TimeoutStopSec=10$' ${`/etc/systemd/system/${unit}`}; systemctl show -p TimeoutStopUSec --value ${unit}`);
    assert.equal(now.stdout.trim().split("\n").join(" "), "1 10s", now.stderr);
    assert.equal(await pid(), before, "a stop grace changed needs no restart");
    expectOk(await project.pulumi(["preview", "--refresh", "--expect-no-changes"]), "the preview after repair");
  });

  test("a new image replaces the containers, shown as an image diff", async () => {
    // given
    const v2 = await pushWebImage(lab.inventory.lab!.registry, "web", "v2", "hello v2\n");
    expectOk(await project.config({ image: v2.digestRef }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:Container: \(replace\)/);
    assert.match(preview.stdout, /image\s*: "[^"]+@sha256:[0-9a-f]+" => "[^"]+@sha256:[0-9a-f]+"/);
    expectOk(up, "up");
    for (const m of ["m1", "m2", "m3"]) assert.equal(await eventually(() => get(m, "/"), "hello v2\n"), "hello v2\n", m);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the new image");
  });

  test("a container that exits at once fails with its status and last words, naming the host", async () => {
    // given
    expectOk(await project.config({ command: JSON.stringify(["/bin/sh", "-c", "echo cannot start >&2; exit 3"]) }), "config");
    // when
    // (--continue-on-error: each engine's report, not only the first one's)
    const up = await project.pulumi(["up", "--yes", "--continue-on-error"]);
    // then
    assert.notEqual(up.code, 0);
    for (const m of ["m1", "m2", "m3"]) {
      const at = lab.machine(m).address.replace(/\./g, "\\.");
      expectMatch(up.output, new RegExp(`Unable to run container web on root@${at}: it exited with status 3: cannot start`), `${m} (${engines[m]})`);
    }
    expectOk(await project.pulumi(["config", "rm", "command"]), "config rm");
    expectOk(await project.pulumi(["up", "--yes"]), "the up after fixing the command");
    for (const m of ["m1", "m2", "m3"]) assert.equal(await eventually(() => get(m, "/"), "hello v2\n"), "hello v2\n", m);
  });

  test("destroy removes the containers and their images, and stops the engine drove started", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    // (the engine is stopped now, so look at what it keeps on disk, not at its API)
    const docker = await lab.ssh(
      "m1",
      sh`ls /var/lib/docker/containers | wc -l; ls /var/lib/docker/image/overlay2/imagedb/content/sha256 | wc -l; systemctl is-active docker.service docker.socket || true`,
    );
    assert.equal(docker.stdout.trim().split("\n").join(" "), "0 0 inactive inactive", docker.stderr);
    const podman = await lab.ssh("m2", sh`podman ps -aq | wc -l; podman images -q | wc -l`);
    assert.equal(podman.stdout.trim().split("\n").join(" "), "0 0");
    const systemd = await lab.ssh("m3", sh`ls /etc/systemd/system | grep -c drove-container || true; ls /var/lib/drove/containers | wc -l; runc list -q | wc -l`);
    assert.equal(systemd.stdout.trim().split("\n").join(" "), "0 0 0");
  });
});
