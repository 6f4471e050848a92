/**
 * The Cluster's etcd control plane end to end, through the real `pulumi` CLI,
 * on three lab machines: bootstrapped over TLS with client certificates
 * required; a member stopped by hand shows as drift and is repaired; a
 * membership change on an unhealthy cluster is refused; 3 -> 1 -> 3 members
 * without losing a key; no private key in state or outputs; destroy leaves
 * nothing.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { isIssuedBy, keyMatches } from "../src/tls";
import { bootTestLab, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";

let lab: TestLab;
let project: TestProject;
const MACHINES = ["m1", "m2", "m3"];
const UNIT = "drove-etcd.service";
/** A root shell's etcdctl, set up by drove on every member. */
const ETCDCTL = sh`set -a && . /etc/drove/etcd/etcdctl.env && set +a && etcdctl`;

async function on(machine: string, command: ReturnType<typeof sh>): Promise<string> {
  const r = await lab.ssh(machine, command);
  return `${r.stdout}${r.code === 0 ? "" : `\n(exit ${r.code}) ${r.stderr}`}`.trim();
}

/** `name started` per member, sorted, as etcdctl on `machine` sees them. */
async function members(machine: string): Promise<string[]> {
  const out = await on(machine, sh`${ETCDCTL} member list -w simple`);
  return out
    .split("\n")
    .map((l) => l.split(",").map((x) => x.trim()))
    .map((f) => `${f[2]} ${f[1]}`)
    .sort();
}

/** Healthy endpoints of the whole cluster, as etcdctl on `machine` sees them. */
async function healthy(machine: string): Promise<number> {
  const out = await on(machine, sh`${ETCDCTL} endpoint health --cluster -w json`);
  try {
    return (JSON.parse(out) as { health: boolean }[]).filter((e) => e.health).length;
  } catch {
    return -1;
  }
}

/**
 * What is left of etcd on a machine ("" for nothing): drove's folders and unit file, an etcd process, a unit
 * systemd still has loaded. systemd forgets a removed unit a moment later, and asking about it by name loads a
 * placeholder: so list by pattern, for up to 10 s.
 *
 * One line is not counted: "drove-etcd.service not-found inactive dead" (no file, no process). Every lab machine
 * on this host shares the host's cgroup tree (systemd-nspawn without a host systemd), so while etcd runs as
 * drove-etcd.service on any other machine (another member, or another suite's lab), the cgroup
 * /system.slice/drove-etcd.service is not empty and systemd keeps the removed unit's name in memory.
 */
async function leftovers(machine: string): Promise<string> {
  let left = "";
  for (let i = 0; i < 20; i++) {
    left = await on(machine, sh`ls -d /etc/drove /var/lib/drove /etc/systemd/system/${UNIT} /etc/systemd/system/multi-user.target.wants/${UNIT} 2>/dev/null; pgrep -x etcd; systemctl list-units --all --no-legend 'drove-etcd*'; true`);
    left = left.split("\n").filter((l) => !/^\W*drove-etcd\.service +not-found +inactive +dead /.test(l)).join("\n").trim();
    if (left === "") return left;
    await new Promise((r) => setTimeout(r, 500));
  }
  return left;
}

describe("Cluster: an etcd control plane over SSH, through the real pulumi CLI", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droveet", 40, 3);
    project = await TestProject.create("etcd.ts");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up bootstraps 3 members over TLS: each machine's etcdctl sees 3 healthy members, a key put on one is read on another; a second preview shows no changes", async () => {
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    for (const m of MACHINES) {
      assert.deepEqual(await members(m), ["m1 started", "m2 started", "m3 started"], `member list on ${m}`);
      assert.equal(await healthy(m), 3, `healthy members seen from ${m}`);
      assert.equal(await on(m, sh`systemctl is-enabled ${UNIT}; systemctl is-active ${UNIT}`), "enabled\nactive", m);
      assert.equal(await on(m, sh`stat -c '%a %U' /etc/drove/etcd/member.key /etc/drove/etcd/client.key /var/lib/drove/etcd`), "600 etcd\n600 root\n700 etcd", m);
    }
    assert.equal(await on("m1", sh`${ETCDCTL} put /it/greeting hello-etcd`), "OK");
    assert.equal(await on("m3", sh`${ETCDCTL} get --print-value-only /it/greeting`), "hello-etcd");
    const again = await project.pulumi(["preview", "--expect-no-changes"]);
    expectOk(again, "the second preview");
  });

  test("a client without a certificate is refused; with the cluster's client certificate it is served; no private key is in state or outputs", async () => {
    // given the cluster's CA on m2, and a client certificate from the stack's outputs
    const ep = "https://" + lab.machine("m1").address + ":2379";
    // when
    const noCert = await lab.ssh("m2", sh`curl -sS --max-time 5 --cacert /etc/drove/etcd/ca.crt ${ep}/version`);
    const noCertCtl = await lab.ssh("m2", sh`ETCDCTL_API=3 etcdctl --endpoints=${ep} --cacert=/etc/drove/etcd/ca.crt --dial-timeout=3s --command-timeout=5s get /it/greeting`);
    const out = await project.pulumi(["stack", "output", "--json"]);
    const secretOut = await project.pulumi(["stack", "output", "--json", "--show-secrets"]);
    expectOk(secretOut, "stack output --show-secrets");
    const o = JSON.parse(secretOut.stdout) as { caPem: string; clientCertPem: string; clientKeyPem: string; endpoints: string[] };
    const withCert = await lab.ssh("m2", sh`curl -sS --max-time 5 --cacert /etc/drove/etcd/ca.crt --cert /etc/drove/etcd/client.crt --key /etc/drove/etcd/client.key ${ep}/version`);
    // then
    assert.notEqual(noCert.code, 0, `curl without a client certificate must fail: ${noCert.stdout}`);
    assert.notEqual(noCertCtl.code, 0, "etcdctl without a client certificate must fail");
    assert.equal(withCert.code, 0, `with the cluster's client certificate: ${withCert.stderr}`);
    assert.match(withCert.stdout, /etcdserver/);
    assert.ok(isIssuedBy(o.clientCertPem, o.caPem), "the exported client certificate is signed by the cluster's CA");
    assert.ok(keyMatches(o.clientCertPem, o.clientKeyPem));
    expectOk(out, "stack output");
    const shown = JSON.parse(out.stdout) as Record<string, unknown>;
    assert.equal(shown.clientKeyPem, "[secret]");
    assert.deepEqual(o.endpoints, MACHINES.map((m) => `https://${lab.machine(m).address}:2379`));
    assert.match(o.clientKeyPem, /BEGIN PRIVATE KEY/);
    const state = project.stateText();
    assert.doesNotMatch(state, /BEGIN PRIVATE KEY/, "a private key in plaintext state");
    assert.doesNotMatch(state, /BEGIN OPENSSH PRIVATE KEY/, "an SSH key in plaintext state");
    assert.ok(!state.includes(o.clientKeyPem.split("\n")[1]), "the client key's body in state");
  });

  test("a member stopped by hand shows in preview --refresh; a membership change is then refused, naming it; up repairs it without losing the key", async () => {
    // given m1 stopped by hand
    await lab.ssh("m1", sh`systemctl stop ${UNIT}`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    // then
    expectOk(preview, "preview --refresh");
    assert.match(preview.stdout, /status\s*: "stopped" => "healthy"/);
    // when the program asks for a membership change meanwhile (3 -> 1, keeping the stopped m1)
    expectOk(await project.config({ controlPlane: "m1" }), "config");
    const refused = await project.pulumi(["up", "--yes"]);
    // then it is refused with the member and what to do, and nothing changed
    assert.notEqual(refused.code, 0, refused.output);
    expectMatch(refused.output, /Unable to remove m2 and m3 in etcd cluster lab: a membership change needs every member healthy, but m1 at https:\/\/10\.213\.40\.11:2379 \(.*\) is not\. Either run `pulumi up` without the membership change first, so drove repairs m1, or remove that host from the cluster's `controlPlane` too\./);
    assert.deepEqual(await members("m2"), ["m1 started", "m2 started", "m3 started"]);
    // when the program is back as it was
    expectOk(await project.config({ controlPlane: "m1,m2,m3" }), "config");
    const up = await project.pulumi(["up", "--yes"]);
    // then m1 runs again, the cluster is whole, the key is there
    expectOk(up, "the repairing up");
    assert.equal(await on("m1", sh`systemctl is-active ${UNIT}`), "active");
    assert.equal(await healthy("m2"), 3);
    assert.equal(await on("m1", sh`${ETCDCTL} get --print-value-only /it/greeting`), "hello-etcd");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the repair");
  });

  test("3 -> 1 members: member remove one at a time, the leaving hosts cleaned; the key is still there", async () => {
    // given
    expectOk(await project.config({ controlPlane: "m1" }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:EtcdCluster: \(update\)/);
    assert.doesNotMatch(preview.stdout, /EtcdCluster: \(replace\)/);
    expectOk(up, "up");
    assert.deepEqual(await members("m1"), ["m1 started"]);
    assert.equal(await on("m1", sh`${ETCDCTL} get --print-value-only /it/greeting`), "hello-etcd");
    for (const m of ["m2", "m3"]) assert.equal(await leftovers(m), "", `nothing of etcd left on ${m}`);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after 3 -> 1");
  });

  test("1 -> 3 members: member add before each start, the new members read the key", async () => {
    // given
    expectOk(await project.config({ controlPlane: "m1,m2,m3" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    for (const m of MACHINES) assert.deepEqual(await members(m), ["m1 started", "m2 started", "m3 started"], `member list on ${m}`);
    assert.equal(await healthy("m3"), 3);
    assert.equal(await on("m3", sh`${ETCDCTL} get --print-value-only /it/greeting`), "hello-etcd");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after 1 -> 3");
  });

  test("destroy stops and removes every member: no unit, file, certificate, data or process left", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    for (const m of MACHINES) assert.equal(await leftovers(m), "", `nothing of etcd left on ${m}`);
  });
});
