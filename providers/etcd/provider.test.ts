import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UNKNOWN } from "../common";
import { etcdClusterKind } from "./provider";

const HOST_KEY = "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8";
const cert = (n: string) => `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`;
// A stand-in, not a key; the PEM marker is built here so that no tracked file reads like a private key.
const KEY = `-----BEGIN ${"PRIVATE"} KEY-----\nDO-NOT-LEAK\n-----END ${"PRIVATE"} KEY-----\n`;

function member(n: number): Record<string, unknown> {
  return { connection: { host: `10.0.0.${10 + n}`, user: "root", privateKey: "k", hostKey: HOST_KEY }, address: `10.0.0.${10 + n}`, certPem: cert(`m${n}`) };
}

function news(count = 3, over: Record<string, unknown> = {}): Record<string, unknown> {
  const names = Array.from({ length: count }, (_, i) => `m${i + 1}`);
  return {
    cluster: "prod",
    caPem: cert("ca"),
    clientCertPem: cert("client"),
    clientKeyPem: KEY,
    members: Object.fromEntries(names.map((n, i) => [n, member(i + 1)])),
    memberKeys: Object.fromEntries(names.map((n) => [n, KEY])),
    ...over,
  };
}

describe("EtcdCluster check", () => {
  it("accepts a well-formed cluster and wants every member healthy, with no extra member", () => {
    // when
    const { inputs, failures } = etcdClusterKind.check(news());
    // then
    assert.deepEqual(failures, []);
    assert.deepEqual(Object.values(inputs.members).map((m) => m.status), ["healthy", "healthy", "healthy"]);
    assert.deepEqual(inputs.extraMembers, []);
  });

  it("refuses a cluster of 2, a bad name, an address that cannot be a URL host and a member without a key, naming each property", () => {
    // given
    const bad = news(2, { cluster: "Prod" });
    (bad.members as Record<string, Record<string, unknown>>).m2.address = "10.0.0.12,evil=https://x";
    (bad.memberKeys as Record<string, unknown>).m2 = "not a key";
    // when
    const { failures } = etcdClusterKind.check(bad);
    // then
    assert.deepEqual(
      failures.map((f) => f.property),
      ["cluster", "members", "members.m2.address", "memberKeys"],
    );
    assert.match(failures[1].reason, /an etcd cluster must have 1, 3 or 5 members, but 2 were provided/);
    assert.ok(!JSON.stringify(failures).includes("DO-NOT-LEAK"));
  });

  it("lets values unknown during a preview through", () => {
    const { failures } = etcdClusterKind.check(news(3, { caPem: UNKNOWN, clientKeyPem: UNKNOWN, memberKeys: UNKNOWN }));
    assert.deepEqual(failures, []);
  });

  it("keeps keys secret: the client key and every member key", () => {
    assert.deepEqual(etcdClusterKind.secretPaths, ["clientKeyPem", "memberKeys"]);
  });
});

describe("EtcdCluster diff", () => {
  const olds = () => ({ ...etcdClusterKind.check(news()).inputs, endpoints: [], memberIds: {} });

  it("no change -> no update", () => {
    assert.deepEqual(etcdClusterKind.diff(olds(), etcdClusterKind.check(news()).inputs), { changes: false, replaces: [] });
  });

  it("a member read as stopped -> an update in place", () => {
    // given
    const o = olds();
    o.members.m2 = { ...o.members.m2, status: "stopped" };
    // then
    assert.deepEqual(etcdClusterKind.diff(o, etcdClusterKind.check(news()).inputs), { changes: true, replaces: [] });
  });

  it("a membership change -> an update in place, never a replacement", () => {
    assert.deepEqual(etcdClusterKind.diff(olds(), etcdClusterKind.check(news(1)).inputs), { changes: true, replaces: [] });
  });

  it("another cluster name -> a replacement, the old one deleted first (same hosts, same ports)", () => {
    assert.deepEqual(etcdClusterKind.diff(olds(), etcdClusterKind.check(news(3, { cluster: "other" })).inputs), { changes: true, replaces: ["cluster"], deleteBeforeReplace: true });
  });
});
