import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseNetworkFact, USERS_MARK, type NetworkFact } from "./facts";
import { InUseError, networkDigest, planNetwork, planNetworkRemoval, SPEC_LABEL, userLabels, type NetworkDesired } from "./operations";
import { networkKind } from "./provider";

const want: NetworkDesired = { engine: "docker", name: "app", driver: "bridge", subnet: "10.250.1.0/24", internal: false, labels: { tier: "web" } };
const digest = networkDigest(want);
const present = (over: Partial<Extract<NetworkFact, { state: "present" }>> = {}): NetworkFact => ({
  state: "present",
  driver: "bridge",
  subnets: ["10.250.1.0/24"],
  internal: false,
  labels: { tier: "web", [SPEC_LABEL]: digest },
  users: [],
  ...over,
});
const CREATE = `docker network create --driver bridge --subnet 10.250.1.0/24 --label drove.spec=${digest} --label tier=web app >/dev/null`;

describe("planNetwork: desired + facts -> steps", () => {
  const table: { name: string; desired?: Partial<NetworkDesired>; fact: NetworkFact; commands: string[] }[] = [
    { name: "absent -> create", fact: { state: "absent" }, commands: [CREATE] },
    { name: "made for this spec -> no-op", fact: present(), commands: [] },
    { name: "made for this spec, containers on it -> no-op", fact: present({ users: ["web"] }), commands: [] },
    {
      name: "another spec (made by hand, or changed), nobody on it -> replace",
      fact: present({ labels: { [SPEC_LABEL]: "old" } }),
      commands: [`docker network rm app >/dev/null && ${CREATE}`],
    },
    {
      name: "podman, internal, no subnet -> its own command",
      desired: { engine: "podman", subnet: undefined, internal: true, labels: {} },
      fact: { state: "absent" },
      commands: [`podman network create --driver bridge --internal --label drove.spec=${networkDigest({ ...want, subnet: undefined, internal: true, labels: {} })} app >/dev/null`],
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      // given / when
      const steps = planNetwork({ ...want, ...t.desired }, t.fact);
      // then
      assert.deepEqual(steps.map((s) => s.command.text), t.commands);
    });
  }

  it("refuses to replace a network with another spec while containers are on it, naming them", () => {
    // given
    const fact = present({ labels: {}, users: ["api", "web"] });
    // when / then
    assert.throws(() => planNetwork(want, fact), (err: unknown) => err instanceof InUseError && err.message === "containers api, web use it");
  });

  it("a new subnet, driver, internal flag or label changes the digest", () => {
    const changes: Partial<NetworkDesired>[] = [{ subnet: "10.250.2.0/24" }, { subnet: undefined }, { internal: true }, { labels: {} }, { labels: { tier: "db" } }];
    for (const change of changes) {
      assert.notEqual(networkDigest({ ...want, ...change }), digest, JSON.stringify(change));
    }
    assert.equal(networkDigest({ ...want, labels: { tier: "web" } }), digest);
  });
});

describe("planNetworkRemoval", () => {
  const table: { name: string; fact: NetworkFact; commands: string[] }[] = [
    { name: "absent -> nothing to do", fact: { state: "absent" }, commands: [] },
    { name: "present, unused -> remove", fact: present(), commands: ["docker network rm app >/dev/null"] },
  ];
  for (const t of table) {
    it(t.name, () => {
      assert.deepEqual(planNetworkRemoval("docker", "app", t.fact).map((s) => s.command.text), t.commands);
    });
  }

  it("refuses while a container is on it, naming it", () => {
    assert.throws(() => planNetworkRemoval("podman", "app", present({ users: ["intruder"] })), (err: unknown) => err instanceof InUseError && err.message === "container intruder uses it");
  });
});

describe("parseNetworkFact", () => {
  it("reads docker network inspect, and the containers listed after the mark", () => {
    // given
    const out = JSON.stringify([{ Name: "app", Driver: "bridge", Internal: false, IPAM: { Config: [{ Subnet: "10.250.1.0/24" }] }, Labels: { tier: "web" } }]) + `\n${USERS_MARK}\nweb\napi\n`;
    // when / then
    assert.deepEqual(parseNetworkFact(out), { state: "present", driver: "bridge", subnets: ["10.250.1.0/24"], internal: false, labels: { tier: "web" }, users: ["api", "web"] });
  });

  it("reads podman network inspect (lower-case keys, no labels)", () => {
    const out = JSON.stringify([{ name: "app", driver: "bridge", subnets: [{ subnet: "10.89.0.0/24", gateway: "10.89.0.1" }], internal: true, dns_enabled: true }]) + `\n${USERS_MARK}\n`;
    assert.deepEqual(parseNetworkFact(out), { state: "present", driver: "bridge", subnets: ["10.89.0.0/24"], internal: true, labels: {}, users: [] });
  });

  it("reads a missing network as absent", () => {
    assert.deepEqual(parseNetworkFact("absent\n"), { state: "absent" });
  });

  it("refuses an answer it cannot read", () => {
    assert.throws(() => parseNetworkFact("{nope\n"), /unexpected answer from the network probe/);
  });

  it("leaves drove's own labels out of what it shows", () => {
    assert.deepEqual(userLabels({ [SPEC_LABEL]: "x", tier: "web" }), { tier: "web" });
  });
});

describe("Network check", () => {
  const connection = { host: "10.0.0.5", privateKey: "k", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" };
  const reasons = (news: Record<string, unknown>) => networkKind.check({ connection, engine: "docker", name: "app", ...news }).failures.map((f) => `${f.property}: ${f.reason}`);

  it("accepts a plain bridge network, and fills in the defaults", () => {
    const { inputs, failures } = networkKind.check({ connection, engine: "podman", name: "app" });
    assert.deepEqual(failures, []);
    assert.deepEqual({ ...inputs, connection: undefined }, { connection: undefined, engine: "podman", name: "app", driver: "bridge", internal: false, labels: {} });
  });

  for (const [what, news, reason] of [
    ["the systemd engine", { engine: "systemd" }, /engine: the systemd engine runs containers on the host's network, so it has no networks/],
    ["a bad subnet", { subnet: "10.250.1.7/24" }, /subnet: `subnet` 10\.250\.1\.7\/24 has host bits set: write it as 10\.250\.1\.0\/24/],
    ["not a CIDR", { subnet: "10.250.1.0" }, /must be a CIDR block like 10\.10\.0\.0\/24/],
    ["an engine's own name", { name: "bridge" }, /the network name bridge is the engine's own/],
    ["a drove label", { labels: { "drove.spec": "x" } }, /the label drove\.spec is drove's own/],
    ["another driver", { driver: "macvlan" }, /`driver` must be "bridge"/],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.match(reasons(news).join("\n"), reason);
    });
  }

  it("replaces (deleting first) when the subnet, internal flag or labels change; nothing for the same inputs", () => {
    const olds = { connection, engine: "docker" as const, name: "app", driver: "bridge" as const, subnet: "10.250.1.0/24", internal: false, labels: {}, subnets: ["10.250.1.0/24"] };
    assert.deepEqual(networkKind.diff(olds, { ...olds, subnet: "10.250.2.0/24" }), { changes: true, replaces: ["subnet"], deleteBeforeReplace: true });
    assert.deepEqual(networkKind.diff(olds, { ...olds, labels: { a: "b" } }), { changes: true, replaces: ["labels"], deleteBeforeReplace: true });
    const { subnets: _s, ...same } = olds;
    assert.deepEqual(networkKind.diff(olds, same), { changes: false, replaces: [], deleteBeforeReplace: false });
  });
});
