import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { FileFact } from "../file/facts";
import { sha256 } from "../file/operations";
import { memberFactCommand, parseMemberFact, splitClusterView } from "./facts";
import { serviceEndpointKey, serviceEndpointsPrefix } from "./keys";
import {
  PATHS,
  clientUrl,
  initialCluster,
  memberFiles,
  parseEndpointHealth,
  parseMemberAdd,
  parseMemberList,
  planMemberFiles,
  planMembership,
  quorum,
  renderInitialEnv,
  renderMemberEnv,
  renderUnit,
  type ClusterDesired,
  type MemberInfo,
} from "./operations";

// A stand-in, not a key; the PEM marker is built here so that no tracked file reads like a private key.
const KEY = `-----BEGIN ${"PRIVATE"} KEY-----\nMC4CAQAwBQYDK2VwBCIEIDO-NOT-LEAK-test-only\n-----END ${"PRIVATE"} KEY-----\n`;
const cert = (n: string) => `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`;

const m1 = { name: "m1", address: "10.0.0.11" };
const m2 = { name: "m2", address: "10.0.0.12" };
const m3 = { name: "m3", address: "10.0.0.13" };

const listed = (m: { name: string; address: string }, id: string, started = true): MemberInfo => ({
  id,
  started,
  name: started ? m.name : "",
  peerUrls: [`https://${m.address}:2380`],
  clientUrls: started ? [`https://${m.address}:2379`] : [],
});

const desired = (...ms: { name: string; address: string }[]): ClusterDesired => ({
  cluster: "prod",
  caPem: cert("ca"),
  clientCertPem: cert("client"),
  clientKeyPem: KEY,
  members: ms.map((m) => ({ ...m, certPem: cert(m.name), keyPem: KEY })),
});

const asFact = (content: string, mode = "0644", owner = "root"): FileFact => ({ state: "file", mode, owner, group: owner, size: content.length, sha256: sha256(content), content });

describe("planMembership", () => {
  const table: { name: string; current: MemberInfo[]; want: (typeof m1)[]; join: string[]; added?: string[]; remove: string[] }[] = [
    { name: "the same members -> nothing to do", current: [listed(m1, "a1"), listed(m2, "a2"), listed(m3, "a3")], want: [m1, m2, m3], join: [], remove: [] },
    { name: "1 -> 3: two join, in the program's order, none leaves", current: [listed(m1, "a1")], want: [m1, m2, m3], join: ["m2", "m3"], remove: [] },
    { name: "3 -> 1: two leave, by id", current: [listed(m1, "a1"), listed(m2, "a2"), listed(m3, "a3")], want: [m1], join: [], remove: ["a2", "a3"] },
    { name: "a member swapped for another: one joins, one leaves", current: [listed(m1, "a1"), listed(m2, "a2"), listed(m3, "a3")], want: [m1, m2, { name: "m4", address: "10.0.0.14" }], join: ["m4"], remove: ["a3"] },
    { name: "a member added but never started joins without a second member add", current: [listed(m1, "a1"), listed(m2, "a2", false)], want: [m1, m2], join: ["m2"], added: ["a2"], remove: [] },
    { name: "a member listed by another name is replaced", current: [listed(m1, "a1"), { ...listed(m2, "a2"), name: "old" }], want: [m1, m2], join: ["m2"], remove: ["a2"] },
    { name: "a member that moved to another address leaves and joins again", current: [listed(m1, "a1"), listed({ name: "m2", address: "10.0.0.99" }, "a2")], want: [m1, m2], join: ["m2"], remove: ["a2"] },
  ];
  for (const t of table) {
    it(t.name, () => {
      // when
      const plan = planMembership(t.current, t.want);
      // then
      assert.deepEqual(plan.join.map((j) => j.member.name), t.join);
      assert.deepEqual(plan.join.filter((j) => j.added).map((j) => j.added!.id), t.added ?? []);
      assert.deepEqual(plan.remove.map((m) => m.id), t.remove);
    });
  }

  it("never removes a started member the program keeps, and every wanted member ends up kept or joining (property)", () => {
    const hosts = Array.from({ length: 6 }, (_, i) => ({ name: `m${i}`, address: `10.0.0.${10 + i}` }));
    fc.assert(
      fc.property(fc.subarray(hosts), fc.subarray(hosts, { minLength: 1 }), (cur, want) => {
        // given
        const current = cur.map((m, i) => listed(m, `id${i}`));
        // when
        const plan = planMembership(current, want);
        // then
        const joining = new Set(plan.join.map((j) => j.member.name));
        for (const w of want) assert.ok(joining.has(w.name) !== cur.includes(w), `${w.name} is kept or joins, not both`);
        for (const r of plan.remove) assert.ok(!want.some((w) => w.name === r.name), `${r.name} is wanted but removed`);
        assert.equal(current.length - plan.remove.length + plan.join.length, want.length);
      }),
    );
  });
});

describe("quorum", () => {
  it("is a majority", () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(quorum), [1, 2, 2, 3, 3]);
  });
});

describe("etcdctl answers", () => {
  it("reads `member list -w simple`, started and unstarted", () => {
    // given
    const out = "8e9e05c52164694d, started, m1, https://10.0.0.11:2380, https://10.0.0.11:2379, false\n91bc3c398fb3c146, unstarted, , https://10.0.0.12:2380, , false\n";
    // when
    const list = parseMemberList(out);
    // then
    assert.deepEqual(list, [
      { id: "8e9e05c52164694d", started: true, name: "m1", peerUrls: ["https://10.0.0.11:2380"], clientUrls: ["https://10.0.0.11:2379"] },
      { id: "91bc3c398fb3c146", started: false, name: "", peerUrls: ["https://10.0.0.12:2380"], clientUrls: [] },
    ]);
  });

  it("refuses a member list it does not understand", () => {
    assert.throws(() => parseMemberList("Error: context deadline exceeded\n"), /unexpected line from etcdctl member list/);
  });

  it("reads `endpoint health -w json`, healthy and not", () => {
    // given
    const out = '[{"endpoint":"https://10.0.0.11:2379","health":true,"took":"9.1ms"},{"endpoint":"https://10.0.0.12:2379","health":false,"took":"5s","error":"context deadline exceeded"}]\n';
    // when
    const h = parseEndpointHealth(out);
    // then
    assert.deepEqual(h.get("https://10.0.0.11:2379"), { healthy: true });
    assert.deepEqual(h.get("https://10.0.0.12:2379"), { healthy: false, error: "context deadline exceeded" });
  });

  it("reads `member add`'s initial cluster", () => {
    // given
    const out = 'Member 91bc3c398fb3c146 added to cluster ef37ad9dc622a7c4\n\nETCD_NAME="m2"\nETCD_INITIAL_CLUSTER="m1=https://10.0.0.11:2380,m2=https://10.0.0.12:2380"\nETCD_INITIAL_ADVERTISE_PEER_URLS="https://10.0.0.12:2380"\nETCD_INITIAL_CLUSTER_STATE="existing"\n';
    // then
    assert.deepEqual(parseMemberAdd(out), { id: "91bc3c398fb3c146", initialCluster: "m1=https://10.0.0.11:2380,m2=https://10.0.0.12:2380" });
  });

  it("tells a failed member list from an empty health answer", () => {
    assert.deepEqual(splitClusterView("@@drove-no-member-list\n@@drove-health\n"), { memberList: undefined, health: "" });
    assert.deepEqual(splitClusterView("a, started, m1, p, c, false\n@@drove-health\n[]\n"), { memberList: "a, started, m1, p, c, false\n", health: "[]\n" });
  });
});

describe("member files", () => {
  it("renders the member's settings: TLS for peers and clients, client certificates required, no secret", () => {
    // when
    const env = renderMemberEnv("prod", m1);
    // then
    assert.equal(
      env,
      [
        "# drove: etcd member m1 of cluster prod. Managed by drove; edits are reverted.",
        "ETCD_NAME=m1",
        "ETCD_DATA_DIR=/var/lib/drove/etcd",
        "ETCD_LISTEN_PEER_URLS=https://10.0.0.11:2380",
        "ETCD_LISTEN_CLIENT_URLS=https://10.0.0.11:2379,https://127.0.0.1:2379",
        "ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.11:2379",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.11:2380",
        "ETCD_INITIAL_CLUSTER_TOKEN=drove-prod",
        "ETCD_CERT_FILE=/etc/drove/etcd/member.crt",
        "ETCD_KEY_FILE=/etc/drove/etcd/member.key",
        "ETCD_TRUSTED_CA_FILE=/etc/drove/etcd/ca.crt",
        "ETCD_CLIENT_CERT_AUTH=true",
        "ETCD_PEER_CERT_FILE=/etc/drove/etcd/member.crt",
        "ETCD_PEER_KEY_FILE=/etc/drove/etcd/member.key",
        "ETCD_PEER_TRUSTED_CA_FILE=/etc/drove/etcd/ca.crt",
        "ETCD_PEER_CLIENT_CERT_AUTH=true",
        "",
      ].join("\n"),
    );
  });

  it("renders how a member joins, separately, so a membership change restarts no member", () => {
    assert.equal(initialCluster([m1, m2, m3]), "m1=https://10.0.0.11:2380,m2=https://10.0.0.12:2380,m3=https://10.0.0.13:2380");
    assert.equal(renderInitialEnv("m1=https://10.0.0.11:2380", "new"), "ETCD_INITIAL_CLUSTER=m1=https://10.0.0.11:2380\nETCD_INITIAL_CLUSTER_STATE=new\n");
    assert.ok(!renderMemberEnv("prod", m1).includes("INITIAL_CLUSTER="));
  });

  it("renders a notify unit as the etcd user that replaces Debian's etcd.service and reads initial.env only if there", () => {
    const unit = renderUnit("prod");
    assert.match(unit, /^Conflicts=etcd\.service$/m);
    assert.match(unit, /^Type=notify$/m);
    assert.match(unit, /^User=etcd$/m);
    assert.match(unit, /^EnvironmentFile=\/etc\/drove\/etcd\/etcd\.env\nEnvironmentFile=-\/etc\/drove\/etcd\/initial\.env$/m);
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
  });

  it("brackets IPv6 addresses in URLs", () => {
    assert.equal(clientUrl("fd00::1"), "https://[fd00::1]:2379");
  });

  it("keeps keys 0600 (the member key owned by etcd) and lists every member's client URL for etcdctl", () => {
    // when
    const files = new Map(memberFiles(desired(m1, m2, m3), "m2").map((f) => [f.path, f]));
    // then
    assert.deepEqual([...files.keys()], Object.values(PATHS));
    assert.deepEqual({ mode: files.get(PATHS.memberKey)!.mode, owner: files.get(PATHS.memberKey)!.owner }, { mode: "0600", owner: "etcd" });
    assert.deepEqual({ mode: files.get(PATHS.clientKey)!.mode, owner: files.get(PATHS.clientKey)!.owner }, { mode: "0600", owner: "root" });
    assert.match(files.get(PATHS.etcdctlEnv)!.content, /^ETCDCTL_ENDPOINTS=https:\/\/10\.0\.0\.11:2379,https:\/\/10\.0\.0\.12:2379,https:\/\/10\.0\.0\.13:2379$/m);
    assert.equal(files.get(PATHS.memberCert)!.content, cert("m2"));
  });
});

describe("planMemberFiles", () => {
  const d = desired(m1, m2, m3);
  const inPlace = () => new Map(memberFiles(d, "m1").map((f) => [f.path, asFact(f.content, f.mode, f.owner)]));

  it("everything in place -> no step, no restart", () => {
    assert.deepEqual(planMemberFiles(d, "m1", inPlace()), { steps: [], restart: false, unitChanged: false });
  });

  it("a new member -> every file written, keys on stdin only, and a start with the unit loaded", () => {
    // when
    const plan = planMemberFiles(d, "m1", new Map());
    // then
    assert.equal(plan.steps.length, 8);
    assert.equal(plan.restart, true);
    assert.equal(plan.unitChanged, true);
    for (const s of plan.steps) assert.ok(!s.command.text.includes("DO-NOT-LEAK"), `no key on a command line: ${s.description}`);
    assert.equal(plan.steps.filter((s) => s.stdin === KEY).length, 2);
    assert.match(plan.steps.find((s) => s.stdin === KEY && s.description.includes("member.key"))!.command.text, /chmod 0600 "\$tmp" && chown etcd:etcd "\$tmp"/);
  });

  it("only the member list for etcdctl changed (a membership change) -> rewritten, no restart", () => {
    // given the files of a 1-member cluster
    const one = desired(m1);
    const facts = new Map(memberFiles(one, "m1").map((f) => [f.path, asFact(f.content, f.mode, f.owner)]));
    // when
    const plan = planMemberFiles(d, "m1", facts);
    // then
    assert.deepEqual(plan.steps.map((s) => s.description), [`write new content to ${PATHS.etcdctlEnv}`]);
    assert.equal(plan.restart, false);
  });

  it("a member key edited by hand -> rewritten, restart; the description says key, not content", () => {
    // given
    const facts = inPlace();
    facts.set(PATHS.memberKey, asFact("garbage", "0644", "etcd"));
    // when
    const plan = planMemberFiles(d, "m1", facts);
    // then
    assert.deepEqual(plan.steps.map((s) => s.description), [`write a new key to ${PATHS.memberKey}`]);
    assert.equal(plan.restart, true);
    assert.equal(plan.unitChanged, false);
  });

  it("a key whose mode was widened -> chmod back, restart", () => {
    const facts = inPlace();
    facts.set(PATHS.memberKey, asFact(KEY, "0644", "etcd"));
    const plan = planMemberFiles(d, "m1", facts);
    assert.deepEqual(plan.steps.map((s) => s.command.text), [`chmod 0600 ${PATHS.memberKey}`]);
  });
});

describe("member probe", () => {
  it("reads files, unit state, data and binaries in one answer", () => {
    // given an answer as the probe prints it
    const out = [
      `@@drove-file ${PATHS.ca}`,
      "absent",
      `@@drove-file ${PATHS.env}`,
      "file 644 root root 3",
      `content ${Buffer.from("x=1").toString("base64")}`,
      "@@drove-state",
      "enabled=enabled",
      "active=inactive",
      "data=yes",
      "installed=yes",
      "",
    ].join("\n");
    // when
    const f = parseMemberFact(out);
    // then
    assert.deepEqual(f.files.get(PATHS.ca), { state: "absent" });
    assert.equal((f.files.get(PATHS.env) as { content: string }).content, "x=1");
    assert.deepEqual({ activity: f.activity, enablement: f.enablement, hasData: f.hasData, installed: f.installed }, { activity: "inactive", enablement: "enabled", hasData: true, installed: true });
  });

  it("asks about every file drove keeps", () => {
    const text = memberFactCommand().text;
    for (const p of Object.values(PATHS)) assert.ok(text.includes(p), p);
  });
});

describe("the key layout reserved for services", () => {
  it("keeps each cluster's services under /drove/<cluster>/services/", () => {
    assert.equal(serviceEndpointsPrefix("prod", "web"), "/drove/prod/services/web/endpoints/");
    assert.equal(serviceEndpointKey("prod", "web", "m1-0"), "/drove/prod/services/web/endpoints/m1-0");
  });
});
