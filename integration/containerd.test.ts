/**
 * containerd as a container engine through the real `pulumi` CLI on two lab
 * machines: the web image (built for real, pushed to the lab's plain-HTTP
 * registry) pulled and run by `ctr`, kept running by containerd's restart
 * monitor on m1 (restart "always") and by drove on m2 (restart "no").
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, eventually, expectMatch, expectOk, httpText, sh, type TestLab, TestProject } from "./harness";
import { pushWebImage, type TestImage } from "./fixtures";

let lab: TestLab;
const get = (machine: string, path: string) => httpText(`http://${lab.machine(machine).address}:8080${path}`);
let project: TestProject;
let v1: TestImage;
const SECRET = "containerd-secret-7c2e9";
const MACHINES = ["m1", "m2"];


async function ctr(machine: string, args: string): Promise<string> {
  const r = await lab.ssh(machine, sh`ctr -n drove ${args.split(" ")}`);
  assert.equal(r.code, 0, `ctr ${args} on ${machine}: ${r.stderr}`);
  return r.stdout;
}

describe("Container on containerd (ctr, restart monitor), through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droved", 37, 2);
    v1 = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello v1\n");
    project = await TestProject.create("containerd.ts");
    expectOk(await project.config({ image: v1.digestRef }), "config");
    expectOk(await project.config({ greeting: SECRET }, true), "config --secret");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up starts containerd and runs the image on both machines; each answers over HTTP with its secret env; no changes after", async () => {
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    for (const m of MACHINES) {
      assert.equal(await eventually(() => get(m, "/"), "hello v1\n"), "hello v1\n", m);
      assert.equal(await get(m, "/env.txt"), `${SECRET}\n`, m);
      assert.equal((await lab.ssh(m, sh`systemctl is-active containerd.service`)).stdout.trim(), "active", m);
      assert.equal((await ctr(m, "containers ls -q")).trim(), "web", m);
    }
    // m1 is armed for containerd's restart monitor, m2 (restart "no") is not.
    assert.match(await ctr("m1", "containers info web"), /"containerd\.io\/restart\.status": "running"/);
    assert.doesNotMatch(await ctr("m2", "containers info web"), /containerd\.io\/restart\.status/);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("the secret env value appears nowhere: not in state, not in the diff, not on a command line, not on disk", async () => {
    // when
    const preview = await project.pulumi(["preview", "--diff", "--refresh"]);
    // then
    expectOk(preview, "preview");
    assert.ok(!preview.output.includes(SECRET), "the preview shows the secret");
    assert.ok(!project.stateText().includes(SECRET), "the state holds the secret in plaintext");
    for (const m of MACHINES) {
      // (the secret is searched for in two halves, so that this command's own line does not hold it)
      const [x, y] = [SECRET.slice(0, 10), SECRET.slice(10)];
      const ps = await lab.ssh(m, sh`ps -eo args`);
      assert.ok(!ps.stdout.includes(SECRET), `the secret is on a command line on ${m}`);
      const files = await lab.ssh(m, sh`x=${x}; y=${y}; grep -rlF "$x$y" /var/log/drove /tmp /root /etc/containerd 2>/dev/null || true`);
      assert.equal(files.stdout.trim(), "", `a file on ${m} holds the secret`);
    }
  });

  test("a task killed by hand: containerd's restart monitor restarts it (restart always); drove shows and repairs it (restart no)", async () => {
    // given
    const pidBefore = (await ctr("m1", "tasks ls")).match(/^web\s+(\d+)/m)?.[1];
    await ctr("m1", "tasks kill --signal SIGKILL web");
    await ctr("m2", "tasks kill --signal SIGKILL web");
    // then (m1): the monitor starts a new task, with no drove run in between
    assert.equal(await eventually(() => get("m1", "/"), "hello v1\n", 100), "hello v1\n", "m1 was not restarted by containerd");
    const pidAfter = (await ctr("m1", "tasks ls")).match(/^web\s+(\d+)/m)?.[1];
    assert.notEqual(pidAfter, pidBefore, "m1's task is not a new one");
    assert.match(await get("m2", "/"), /^unreachable/, "m2 (restart no) came back by itself");
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then (m2): shown as drift, repaired by up
    expectOk(preview, "preview");
    assert.match(preview.stdout, /running\s*: false => true|running\s*: true => false/);
    expectOk(up, "up");
    for (const m of MACHINES) assert.equal(await eventually(() => get(m, "/"), "hello v1\n"), "hello v1\n", m);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("a container removed by hand is shown as missing and made again", async () => {
    // given
    await ctr("m2", "tasks delete --force web");
    await ctr("m2", "containers delete web");
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+ drove:index:Container: \(create\)/);
    expectOk(up, "up");
    assert.equal(await eventually(() => get("m2", "/"), "hello v1\n"), "hello v1\n");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("a new restart policy is an update in place: the same task goes on, now watched by containerd", async () => {
    // given
    const pidBefore = (await ctr("m2", "tasks ls")).match(/^web\s+(\d+)/m)?.[1];
    expectOk(await project.config({ restart: "always" }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:Container: \(update\)/);
    assert.match(preview.stdout, /restart\s*: "no" => "always"/);
    assert.doesNotMatch(preview.stdout, /\(replace\)/);
    expectOk(up, "up");
    assert.equal((await ctr("m2", "tasks ls")).match(/^web\s+(\d+)/m)?.[1], pidBefore, "the task was replaced");
    assert.match(await ctr("m2", "containers info web"), /"containerd\.io\/restart\.status": "running"/);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the update");
  });

  test("a new image replaces the containers, shown as an image diff; the old image goes", async () => {
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
    for (const m of MACHINES) {
      assert.equal(await eventually(() => get(m, "/"), "hello v2\n"), "hello v2\n", m);
      assert.equal((await ctr(m, "images ls -q")).trim(), v2.digestRef, m);
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the new image");
  });

  test("a container that exits at once fails with its status and last words, naming the host", async () => {
    // given
    expectOk(await project.config({ command: JSON.stringify(["/bin/sh", "-c", "echo cannot start >&2; exit 3"]) }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0);
    expectMatch(up.output, /Unable to run container web on root@10\.213\.37\.1[12]: it exited with status 3: cannot start/);
    expectOk(await project.pulumi(["config", "rm", "command"]), "config rm");
    expectOk(await project.pulumi(["up", "--yes"]), "the up after fixing the command");
    for (const m of MACHINES) assert.equal(await eventually(() => get(m, "/"), "hello v2\n"), "hello v2\n", m);
  });

  test("destroy removes tasks, containers, images, snapshots and drove's namespace, and stops the containerd drove started", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    if (down.code !== 0) {
      for (const m of MACHINES) console.error(m, (await lab.ssh(m, sh`ctr -n drove tasks ls; ctr -n drove containers ls; journalctl -u containerd.service -n 40 --no-pager -o short-precise`)).stdout);
    }
    expectOk(down, "destroy");
    for (const m of MACHINES) {
      assert.equal((await lab.ssh(m, sh`systemctl is-active containerd.service || true`)).stdout.trim(), "inactive", m);
      // Start containerd by hand to ask it what it still holds, then stop it again.
      const r = await lab.ssh(
        m,
        sh`systemctl start containerd.service && ctr namespaces ls -q; echo "c=$(ctr -n drove containers ls -q | wc -l) i=$(ctr -n drove images ls -q | wc -l) s=$(ctr -n drove snapshots ls | tail -n +2 | wc -l) t=$(ctr -n drove tasks ls | tail -n +2 | wc -l)"; ls -d /var/log/drove /etc/containerd/certs.d/*/hosts.toml 2>/dev/null | wc -l; systemctl stop containerd.service`,
      );
      assert.equal(r.stdout.trim().split("\n").join(" "), "c=0 i=0 s=0 t=0 0", `${m}: ${r.stdout} ${r.stderr}`);
    }
  });
});
