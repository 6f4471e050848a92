/**
 * A Service through the real `pulumi` CLI on a 3-machine lab: etcd on all three
 * (the Cluster's), Docker on each, 3 replicas of a web image behind HAProxy on a
 * virtual IP on every machine, endpoints in etcd, rolling updates watched by a
 * poller, a broken version, scaling, drift, destroy.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, eventually as waitFor, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";
import { answersSsh, cutLink, serviceChecks, sum } from "./service-checks";
import { pushWebImage, type TestImage } from "./fixtures";
import { serviceDnsName, vipFor } from "../providers/service/operations";
import { endpointPrefix } from "../providers/service/etcd";

let lab: TestLab;
let project: TestProject;
let v1: TestImage;
let v2: TestImage;
const MACHINES = ["m1", "m2", "m3"];
const SECRET = "a-secret-file-7c3e";
const VIP = vipFor("lab", "web");
const NAME = serviceDnsName("lab", "web");
const { viaVip, replicasPerMachine, startPoller } = serviceChecks(() => lab, { machines: MACHINES, vip: VIP, service: "lab/web" });
/** `tries` half-seconds, as before the checks were shared. */
const eventually = (fn: () => Promise<string>, want: string, tries = 40) => waitFor(fn, want, Math.ceil((tries * 500) / 300));

/** The keys of the service's endpoints in etcd, read with etcdctl on m1 with the cluster's own client certificate. */
async function etcdEndpoints(): Promise<string[]> {
  const r = await lab.ssh("m1", etcdctlCommand(sh`get --prefix --keys-only ${endpointPrefix("lab", "web")}`));
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean).sort();
}

describe("Service on a 3-machine cluster, through the real pulumi CLI", { timeout: 40 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovesv", 46, 3);
    v1 = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello v1\n");
    v2 = await pushWebImage(lab.inventory.lab!.registry, "web", "v2", "hello v2\n");
    project = await TestProject.create("services.ts");
    expectOk(await project.config({ image: v1.digestRef, replicas: "3" }), "config");
    expectOk(await project.config({ greeting: SECRET }, true), "config --secret");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up: 3 replicas answer through the virtual IP and by name from every machine; etcd lists 3 endpoints; no changes after", async () => {
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /placement/);
    expectOk(up, "up");
    assert.equal(sum(await replicasPerMachine()), 3);
    for (const m of MACHINES) {
      assert.equal(await eventually(() => viaVip(m), "hello v1\n"), "hello v1\n", `${m} through ${VIP}`);
      assert.equal(await viaVip(m, "/", NAME), "hello v1\n", `${m} through ${NAME}`);
    }
    assert.equal(await viaVip("m2", "/secret.txt"), SECRET, "the secret file");
    assert.equal((await etcdEndpoints()).length, 3);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("the secret is a 0400 file in each replica, and nowhere in state, diffs or command lines", async () => {
    const preview = await project.pulumi(["preview", "--diff", "--refresh"]);
    expectOk(preview, "preview");
    assert.ok(!preview.output.includes(SECRET), "the preview shows the secret");
    assert.ok(!project.stateText().includes(SECRET), "the state holds the secret in plaintext");
    for (const m of MACHINES) {
      const r = await lab.ssh(m, sh`for c in $(docker ps -q --filter label=drove.service=lab/web); do docker exec $c stat -c '%a' /run/secrets/greeting; docker inspect $c --format '{{json .Args}} {{json .Config.Env}}'; done; ps -eo args`);
      assert.ok(!r.stdout.includes(SECRET), `the secret is on a command line or in the env on ${m}`);
      for (const line of r.stdout.split("\n").filter((l) => /^\d+$/.test(l))) assert.equal(line, "400");
    }
  });

  test("a replica removed by hand shows as drift and up puts it back", async () => {
    // given
    const before = await replicasPerMachine();
    const victim = MACHINES[before.findIndex((n) => n > 0)];
    await lab.ssh(victim, sh`docker rm -f $(docker ps -q --filter label=drove.service=lab/web | head -1)`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:Service: \(update\)/);
    assert.match(preview.stdout, /placement/);
    expectOk(up, "up");
    assert.equal(sum(await replicasPerMachine()), 3);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("a new image rolls the replicas while a poller through the VIP sees no failed request", async () => {
    // given
    expectOk(await project.config({ image: v2.digestRef }), "config");
    const poller = await startPoller();
    // when
    const up = await project.pulumi(["up", "--yes"]);
    const seen = await poller.stop();
    // then
    expectOk(up, "up");
    assert.equal(seen.failed, 0, `failed requests during the roll: ${seen.bodies}`);
    assert.ok(seen.ok > 10, `the poller made too few requests to mean anything (${seen.ok})`);
    for (const m of MACHINES) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", m);
    assert.equal(sum(await replicasPerMachine()), 3);
    assert.equal((await etcdEndpoints()).length, 3);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the roll");
  });

  test("a broken version stops the roll with a clear error, and the service keeps answering", async () => {
    // given
    expectOk(await project.config({ command: JSON.stringify(["/bin/sh", "-c", "echo cannot start >&2; exit 3"]) }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0);
    expectMatch(up.output, /Unable to start replica drove-lab-web-\d+ of web/);
    expectMatch(up.output, /root@10\.213\.46\.1[123]/);
    expectMatch(up.output, /cannot start/);
    expectMatch(up.output, /The roll stopped; the replicas already serving keep serving/);
    for (const m of MACHINES) assert.equal(await viaVip(m), "hello v2\n", m);
    assert.equal(sum(await replicasPerMachine()), 3);
    // and back to a good version
    expectOk(await project.pulumi(["config", "rm", "command"]), "config rm");
    expectOk(await project.pulumi(["up", "--yes"]), "the up after fixing the command");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the fix");
  });

  test("a machine lost at plan time: up says so and moves its replica, the rest converges, no etcd data is lost; back, it is cleaned and reused", async () => {
    // given 3 replicas, one on m3, and a key of the user's in etcd
    assert.deepEqual(await replicasPerMachine(), [1, 1, 1]);
    assert.equal((await lab.ssh("m1", etcdctlCommand(sh`put /users/canary kept`))).code, 0);
    // when m3 drops off the network (its link on the lab's bridge goes down)
    cutLink("drovesv", "m3", true);
    try {
      const preview = await project.pulumi(["preview", "--diff"]);
      const up = await project.pulumi(["up", "--yes"]);
      // then the preview names the lost machine and where its replica goes
      expectOk(preview, "preview");
      expectMatch(preview.output, /m3: unavailable, its 1 replica moves to m[12]/);
      expectMatch(preview.output, /drove:index:Reachability/);
      // and up converges everything else, then fails naming the machine alone
      assert.notEqual(up.code, 0, up.output);
      expectMatch(up.output, /Unable to reach m3 \(10\.213\.46\.13:22\) when this run began: [^\n]+Either bring the machine back/);
      assert.doesNotMatch(up.output, /Unable to reach m[12]/);
      const [a, b] = await replicasPerMachine(["m1", "m2"]);
      assert.equal(a + b, 3, "the lost replica runs on m1 or m2");
      for (const m of ["m1", "m2"]) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", `${m} through the VIP`);
      const keys = await etcdEndpoints();
      assert.equal(keys.length, 3);
      assert.ok(keys.every((k) => !k.includes("/m3-")), `no endpoint on m3 left in etcd: ${keys.join(" ")}`);
      assert.equal((await lab.ssh("m1", etcdctlCommand(sh`get --print-value-only /users/canary`))).stdout.trim(), "kept");
    } finally {
      cutLink("drovesv", "m3", false);
    }
    // when m3 is back (as a user would, once it answers again)
    await answersSsh(lab.machine("m3").address);
    const back = await project.pulumi(["up", "--yes"]);
    // then it is reused: the refresh finds its replica healthy and of the current version, the
    // scheduler keeps it (the fewest moves) and drops the extra one on m1/m2, so the spread is back
    expectOk(back, "the up after m3 returned");
    assert.deepEqual(await replicasPerMachine(), [1, 1, 1]);
    assert.equal(await eventually(() => viaVip("m3"), "hello v2\n"), "hello v2\n", "m3 through the VIP");
    assert.equal((await etcdEndpoints()).length, 3);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after m3 returned");
    assert.equal((await lab.ssh("m3", etcdctlCommand(sh`get --print-value-only /users/canary`))).stdout.trim(), "kept");
  });

  test("scaling 3 -> 5 -> 2, each followed by a preview with no changes", async () => {
    for (const n of [5, 2]) {
      // when
      expectOk(await project.config({ replicas: String(n) }), "config");
      const up = await project.pulumi(["up", "--yes"]);
      // then
      expectOk(up, `up to ${n}`);
      assert.equal(sum(await replicasPerMachine()), n);
      assert.equal((await etcdEndpoints()).length, n);
      for (const m of MACHINES) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", `${m} at ${n}`);
      expectOk(await project.pulumi(["preview", "--expect-no-changes"]), `the preview at ${n} replicas`);
    }
  });

  test("a renamed service is a new one: the old name, VIP, proxy and endpoints are gone, the new one answers", async () => {
    // given
    expectOk(await project.config({ serviceName: "api" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    for (const m of MACHINES) {
      assert.equal(await eventually(() => viaVip(m, "/", serviceDnsName("lab", "api")), "hello v2\n"), "hello v2\n", m);
      const r = await lab.ssh(m, sh`grep -c ${NAME} /etc/hosts || true; ip -o addr show dev lo | grep -c ${VIP} || true; ls /etc/haproxy/drove.d; docker ps -q --filter label=drove.service=lab/web | wc -l`);
      assert.equal(r.stdout.trim().split("\n").join(" "), "0 0 lab-api.cfg 0", m);
    }
    assert.deepEqual(await etcdEndpoints(), []);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the rename");
  });

  test("destroy leaves no replica, proxy file, virtual IP or hosts entry on any machine", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    for (const m of MACHINES) {
      const r = await lab.ssh(
        m,
        sh`ls /var/lib/docker/containers 2>/dev/null | wc -l; ls /etc/haproxy/drove.d 2>/dev/null | wc -l; ip -o addr show dev lo | grep -c 10.254. || true; grep -c drove /etc/hosts || true; systemctl is-active haproxy || true; ls /run/drove/services 2>/dev/null | wc -l`,
      );
      assert.equal(r.stdout.trim().split("\n").join(" "), "0 0 0 0 inactive 0", `${m}: ${r.stderr}`);
    }
  });
});

/** etcdctl on a lab machine, as a root shell there talks to the cluster (the Cluster's etcdctl.env). */
function etcdctlCommand(args: ReturnType<typeof sh>) {
  return sh`set -a && . /etc/drove/etcd/etcdctl.env && set +a && etcdctl ${args}`;
}
