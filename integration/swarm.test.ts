/**
 * `orchestrator: "swarm"` through the real `pulumi` CLI on a 3-machine lab: the
 * same program as the Service suite (integration/programs/services.ts, with the
 * orchestrator switch), a swarm of one manager and two workers, 3 replicas
 * published on each node's own address and reachable at the virtual IP and by
 * name from every machine through the node's HAProxy; drift, a roll, a broken
 * version rolled back, scaling, swarm rescheduling by itself when a node's
 * engine stops, promotion to 3 managers, destroy.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, eventually as waitFor, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";
import { answersSsh, cutLink, serviceChecks, sum } from "./service-checks";
import { pushWebImage, type TestImage } from "./fixtures";
import { serviceDnsName, vipFor } from "../providers/service/operations";

let lab: TestLab;
let project: TestProject;
let v1: TestImage;
let v2: TestImage;
const MACHINES = ["m1", "m2", "m3"];
const SECRET = "a-swarm-secret-5b1d";
const VIP = vipFor("lab", "web");
const NAME = serviceDnsName("lab", "web");
const { viaVip, replicasPerMachine, startPoller } = serviceChecks(() => lab, { machines: MACHINES, vip: VIP, service: "lab/web" });
/** `tries` half-seconds, as before the checks were shared. */
const eventually = (fn: () => Promise<string>, want: string, tries = 60) => waitFor(fn, want, Math.ceil((tries * 500) / 300));

/** `hostname role labels.zone` per swarm node, as the manager lists them. */
async function swarmNodes(): Promise<string> {
  const r = await lab.ssh("m1", sh`docker node ls -q | xargs docker node inspect --format '{{.Description.Hostname}} {{.Spec.Role}} {{index .Spec.Labels "zone"}} {{.Status.State}}' | sort`);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe("Service on a Docker Swarm of 3 machines, through the real pulumi CLI", { timeout: 40 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovesw", 48, 3);
    v1 = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello v1\n");
    v2 = await pushWebImage(lab.inventory.lab!.registry, "web", "v2", "hello v2\n");
    project = await TestProject.create("services.ts");
    // One replica per node (its published port): a roll stops one before it starts one.
    expectOk(await project.config({ orchestrator: "swarm", managers: "1", image: v1.digestRef, replicas: "3", maxUnavailable: "1" }), "config");
    expectOk(await project.config({ greeting: SECRET }, true), "config --secret");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up: a swarm of m1 (manager) and m2, m3 (workers) labelled by zone; 3 replicas answer through the VIP and by name from every machine; no changes after", async () => {
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+ drove:index:Swarm/);
    assert.match(preview.stdout, /\+ drove:index:SwarmService/);
    expectOk(up, "up");
    assert.equal(await swarmNodes(), "m1 manager a ready\nm2 worker b ready\nm3 worker a ready");
    assert.deepEqual(await replicasPerMachine(), [1, 1, 1]);
    for (const m of MACHINES) {
      assert.equal(await eventually(() => viaVip(m), "hello v1\n"), "hello v1\n", `${m} through ${VIP}`);
      assert.equal(await viaVip(m, "/", NAME), "hello v1\n", `${m} through ${NAME}`);
    }
    assert.equal(await viaVip("m2", "/secret.txt"), SECRET, "the secret file");
    const svc = await lab.ssh("m1", sh`docker service inspect lab-web --format '{{.Spec.EndpointSpec.Mode}} {{range .Spec.EndpointSpec.Ports}}{{.PublishMode}}:{{.PublishedPort}}->{{.TargetPort}} {{end}}{{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.Parallelism}} {{.Spec.UpdateConfig.FailureAction}}'`);
    assert.match(svc.stdout.trim(), /^dnsrr host:\d+->8080 stop-first 1 rollback$/);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("the join tokens and the secret are nowhere in state, diffs or command lines; the secret is a 0400 file in each replica", async () => {
    const tokens = await lab.ssh("m1", sh`docker swarm join-token -q worker; docker swarm join-token -q manager`);
    assert.equal(tokens.code, 0, tokens.stderr);
    const [worker, manager] = tokens.stdout.trim().split("\n");
    assert.match(worker, /^SWMTKN-1-/);
    const preview = await project.pulumi(["preview", "--diff", "--refresh"]);
    expectOk(preview, "preview");
    const state = project.stateText();
    for (const [what, s] of [["the secret", SECRET], ["the worker token", worker], ["the manager token", manager]]) {
      assert.ok(!preview.output.includes(s), `the preview shows ${what}`);
      assert.ok(!state.includes(s), `the state holds ${what} in plaintext`);
    }
    assert.match(state, /joinTokens/);
    for (const m of MACHINES) {
      const r = await lab.ssh(m, sh`for c in $(docker ps -q --filter label=drove.service=lab/web); do docker exec $c /bin/busybox stat -c '%a' /run/secrets/greeting; docker inspect $c --format '{{json .Args}} {{json .Config.Env}}'; done; ps -eo args`);
      assert.ok(!r.stdout.includes(SECRET), `the secret is on a command line or in the env on ${m}`);
      const modes = r.stdout.split("\n").filter((l) => /^\d+$/.test(l));
      assert.deepEqual(modes, ["400"], m);
    }
  });

  test("a change made by hand (scaled down, labels changed) shows as drift, and up puts it back", async () => {
    // given
    assert.equal((await lab.ssh("m1", sh`docker service scale --detach lab-web=1 >/dev/null && docker node update --label-add zone=z m2 >/dev/null`)).code, 0, "scale by hand");
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:SwarmService: \(update\)/);
    assert.match(preview.stdout, /replicas\s*:\s*1 => 3/);
    assert.match(preview.stdout, /~ drove:index:Swarm: \(update\)/);
    assert.match(preview.stdout, /zone\s*:\s*"z" => "b"/);
    expectOk(up, "up");
    assert.equal(await swarmNodes(), "m1 manager a ready\nm2 worker b ready\nm3 worker a ready");
    assert.deepEqual(await replicasPerMachine(), [1, 1, 1]);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("a new image rolls through swarm while a poller through the VIP keeps getting answers", async () => {
    // given
    expectOk(await project.config({ image: v2.digestRef }), "config");
    const poller = await startPoller();
    // when
    const up = await project.pulumi(["up", "--yes"]);
    const seen = await poller.stop();
    // then
    expectOk(up, "up");
    assert.ok(seen.ok > 10, `the poller made too few requests to mean anything (${seen.ok})`);
    // One replica of three stops at a time: HAProxy retries a refused connection elsewhere.
    assert.equal(seen.failed, 0, `failed requests during the roll: ${seen.bodies}`);
    for (const m of MACHINES) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", m);
    assert.deepEqual(await replicasPerMachine(), [1, 1, 1]);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the roll");
  });

  test("a broken version: swarm rolls it back, up says why, and the service keeps answering", async () => {
    // given
    expectOk(await project.config({ command: JSON.stringify(["/bin/sh", "-c", "echo cannot start >&2; exit 3"]) }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0);
    expectMatch(up.output, /Unable to update service web on root@10\.213\.48\.11/);
    expectMatch(up.output, /rolled the update back/);
    expectMatch(up.output, /The replicas of the previous version keep serving/);
    // and every replica of the previous version is back (swarm's "rollback completed" can come just
    // before the last task it restarted is running again: a moment, under load)
    try {
      assert.equal(await eventually(async () => (await replicasPerMachine()).join(","), "1,1,1"), "1,1,1");
      for (const m of MACHINES) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", m);
    } finally {
      // back to a good version whatever happened, so the next tests start from a working service
      expectOk(await project.pulumi(["config", "rm", "command"]), "config rm");
    }
    expectOk(await project.pulumi(["up", "--yes"]), "the up after fixing the command");
    assert.deepEqual(await replicasPerMachine(), [1, 1, 1]);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the fix");
  });

  test("scaling 3 -> 2 -> 3, each followed by a preview with no changes; 5 on 3 nodes is refused before any change", async () => {
    for (const n of [2, 3]) {
      expectOk(await project.config({ replicas: String(n) }), "config");
      const up = await project.pulumi(["up", "--yes"]);
      expectOk(up, `up to ${n}`);
      assert.equal(sum(await replicasPerMachine()), n);
      for (const m of MACHINES) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", `${m} at ${n}`);
      expectOk(await project.pulumi(["preview", "--expect-no-changes"]), `the preview at ${n} replicas`);
    }
    expectOk(await project.config({ replicas: "5" }), "config");
    const refused = await project.pulumi(["preview"]);
    assert.notEqual(refused.code, 0);
    expectMatch(refused.output, /service web wants 5 replicas, but a swarm node runs at most one replica of a service \(its published port\) and 3 node\(s\) are eligible/);
    expectOk(await project.config({ replicas: "3" }), "config");
  });

  test("swarm reschedules by itself: with 2 replicas, a node whose engine stops loses its replica to the free node, and every other machine keeps answering", async () => {
    // given 2 replicas, one node free
    expectOk(await project.config({ replicas: "2" }), "config");
    expectOk(await project.pulumi(["up", "--yes"]), "up to 2");
    const before = await replicasPerMachine();
    const victim = MACHINES[before.findIndex((n, i) => n > 0 && i > 0)];
    const free = MACHINES[before.indexOf(0)];
    assert.ok(victim && free, `placement ${before.join(",")}`);
    // when the victim's Docker stops (no pulumi run)
    assert.equal((await lab.ssh(victim, sh`systemctl stop docker.socket docker.service`)).code, 0, "stop docker");
    try {
      // then swarm starts the replica on the free node
      const moved = await eventually(async () => String((await lab.ssh(free, sh`docker ps -q --filter label=drove.service=lab/web | wc -l`)).stdout.trim()), "1", 120);
      assert.equal(moved, "1", `no replica on ${free} after ${victim}'s engine stopped`);
      for (const m of MACHINES.filter((x) => x !== victim)) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", `${m} after the move`);
    } finally {
      assert.equal((await lab.ssh(victim, sh`systemctl start docker.service`)).code, 0, "start docker");
    }
    // and back: the stale container on the victim goes, nothing is left to do
    const back = await eventually(async () => (await replicasPerMachine()).join(","), [0, 1, 2].map((i) => (MACHINES[i] === victim ? 0 : 1)).join(","), 120);
    assert.equal(sum(back.split(",").map(Number)), 2, back);
    expectOk(await project.pulumi(["up", "--yes"]), "up after the engine came back");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the move");
  });

  test("a control plane of 3: m2 and m3 are promoted to managers in place, the service keeps answering", async () => {
    // when
    expectOk(await project.config({ managers: "3" }), "config");
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    assert.equal(await swarmNodes(), "m1 manager a ready\nm2 manager b ready\nm3 manager a ready");
    for (const m of MACHINES) assert.equal(await eventually(() => viaVip(m), "hello v2\n"), "hello v2\n", m);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the promotion");
  });

  test("destroy: no replica, secret, proxy, virtual IP or hosts entry, and no node in a swarm", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    for (const m of MACHINES) {
      const r = await lab.ssh(
        m,
        sh`ls /var/lib/docker/containers 2>/dev/null | wc -l; ls /etc/haproxy/drove.d 2>/dev/null | wc -l; ip -o addr show dev lo | grep -c 10.254. || true; grep -c drove /etc/hosts || true; systemctl is-active haproxy || true; ls /var/lib/docker/swarm/worker /var/lib/docker/swarm/raft 2>/dev/null | wc -l; ip -o link show docker_gwbridge 2>/dev/null | wc -l`,
      );
      assert.equal(r.stdout.trim().split("\n").join(" "), "0 0 0 0 inactive 0 0", `${m}: ${r.stderr}`);
    }
  });
});
