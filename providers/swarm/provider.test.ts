import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { swarmKind, swarmServiceKind } from "./provider";

const HOST_KEY = "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8";
const conn = (n: number) => ({ host: `10.0.0.${10 + n}`, user: "root", privateKey: "k", hostKey: HOST_KEY });

function swarmNews(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cluster: "lab",
    managers: ["m1"],
    nodes: {
      m1: { connection: conn(1), address: "10.0.0.11", role: "manager", labels: { zone: "a" } },
      m2: { connection: conn(2), address: "10.0.0.12", role: "worker", labels: { zone: "b" } },
    },
    ...over,
  };
}

function serviceNews(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cluster: "lab",
    name: "web",
    managers: { m1: { connection: conn(1) } },
    nodes: { m1: { connection: conn(1), address: "10.0.0.11" }, m2: { connection: conn(2), address: "10.0.0.12" } },
    image: "10.0.0.1:5000/web@sha256:abc",
    env: {},
    secrets: { greeting: "hi" },
    ports: [{ port: 80, targetPort: 8080, protocol: "tcp" }],
    health: { interval: 1, timeout: 2, retries: 3 },
    restart: "always",
    replicas: 2,
    constraints: ["node.labels.zone==a"],
    rollout: { maxSurge: 1, maxUnavailable: 1 },
    vip: "10.254.1.2",
    portBlock: 3,
    ...over,
  };
}

describe("Swarm check and diff", () => {
  it("accepts managers among the nodes, each with the role it must have", () => {
    const { inputs, failures } = swarmKind.check(swarmNews());
    assert.deepEqual(failures, []);
    assert.deepEqual(inputs.managers, ["m1"]);
  });

  it("refuses 2 managers, a manager that is no node, and a role that contradicts the managers, naming each property", () => {
    const { failures } = swarmKind.check(swarmNews({ managers: ["m1", "m9"], cluster: "Lab" }));
    assert.deepEqual(failures.map((f) => f.property), ["cluster", "managers", "managers"]);
    const roles = swarmKind.check(swarmNews({ managers: ["m2"] })).failures;
    assert.deepEqual(roles.map((f) => [f.property, f.reason]), [
      ["nodes.m1.role", 'node m1 must be a worker (managers: m2), but "manager" was provided'],
      ["nodes.m2.role", 'node m2 must be a manager (managers: m2), but "worker" was provided'],
    ]);
  });

  it("shows a node out of the swarm and a label changed by hand as a change in place; the join tokens are no desired state", () => {
    const { inputs } = swarmKind.check(swarmNews());
    const live = { ...inputs, swarmId: "C1", nodeIds: { m1: "n1", m2: "n2" }, joinTokens: { worker: "w", manager: "m" } };
    assert.deepEqual(swarmKind.diff(live, inputs), { changes: false, replaces: [] });
    const drifted = { ...live, nodes: { ...live.nodes, m2: { ...live.nodes.m2, role: "absent" as const, labels: { zone: "z" } } } };
    assert.deepEqual(swarmKind.diff(drifted, inputs), { changes: true, replaces: [] });
    assert.deepEqual(swarmKind.diff({ ...live, cluster: "other" }, inputs), { changes: true, replaces: ["cluster"] });
    assert.deepEqual(swarmKind.secretPaths, ["joinTokens"]);
  });
});

describe("SwarmService check and diff", () => {
  it("accepts the service, wants its proxy on every node, keeps the secret a secret", () => {
    const { inputs, failures } = swarmServiceKind.check(serviceNews());
    assert.deepEqual(failures, []);
    assert.deepEqual(inputs.proxyNodes, ["m1", "m2"]);
    assert.equal(inputs.replicas, 2);
    assert.equal(inputs.global, false);
    assert.deepEqual(swarmServiceKind.secretPaths, ["secrets"]);
  });

  it("refuses a bad image, no port, no manager and a rollout that cannot move", () => {
    const { failures } = swarmServiceKind.check(serviceNews({ image: "Not An Image", ports: [], managers: {}, rollout: { maxSurge: 0, maxUnavailable: 0 } }));
    assert.deepEqual(failures.map((f) => f.property).sort(), ["image", "managers", "ports", "rollout"]);
  });

  it("diffs per property: replicas in place, the VIP and the name by replacement; what only swarm reports is no change", () => {
    const { inputs } = swarmServiceKind.check(serviceNews());
    const outs = { ...inputs, secretNames: { greeting: "lab-web-greeting-0a0b0c0d" }, running: 2 };
    assert.deepEqual(swarmServiceKind.diff({ ...outs, running: 1 }, inputs), { changes: false, replaces: [] });
    assert.deepEqual(swarmServiceKind.diff({ ...outs, replicas: 1 }, inputs), { changes: true, replaces: [] });
    assert.deepEqual(swarmServiceKind.diff({ ...outs, vip: "10.254.9.9" }, inputs), { changes: true, replaces: ["vip"] });
    assert.deepEqual(swarmServiceKind.diff({ ...outs, secrets: { greeting: "" } }, inputs), { changes: true, replaces: [] });
  });
});
