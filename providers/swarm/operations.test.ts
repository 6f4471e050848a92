import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  constraintsFor,
  dockerApi,
  foreignNodes,
  initBody,
  joinBody,
  leaveCommand,
  parseApiAnswer,
  parseInfo,
  parseNodes,
  parseService,
  parseTasks,
  planMembership,
  planNodeSpecs,
  publishedPorts,
  rolloutState,
  secretName,
  serviceSpec,
  specVersion,
  updateConfig,
  type NodeSwarmFact,
  type SwarmNodeDesired,
  type SwarmNodeEntry,
  type SwarmServiceDesired,
} from "./operations";

const inactive: NodeSwarmFact = { state: "inactive", nodeId: "", clusterId: "", controlAvailable: false, error: "" };
const manager = (id: string, cluster = "C1"): NodeSwarmFact => ({ state: "active", nodeId: id, clusterId: cluster, controlAvailable: true, error: "" });
/** A worker's /info names no swarm: only managers know its id. */
const worker = (id: string): NodeSwarmFact => ({ state: "active", nodeId: id, clusterId: "", controlAvailable: false, error: "" });
const nodes: Record<string, SwarmNodeDesired> = {
  m1: { address: "10.0.0.11", role: "manager", labels: { zone: "a" } },
  m2: { address: "10.0.0.12", role: "worker", labels: { zone: "b" } },
  m3: { address: "10.0.0.13", role: "worker", labels: { zone: "a" } },
};

describe("the Engine API through curl", () => {
  it("sends bodies on stdin and prints the status last", () => {
    assert.equal(dockerApi("GET", "/info").text, "curl -sS --unix-socket /var/run/docker.sock -X GET -w '\\n%{http_code}' http://localhost/v1.41/info");
    assert.equal(
      dockerApi("POST", "/swarm/join", true).text,
      "curl -sS --unix-socket /var/run/docker.sock -X POST -H 'Content-Type: application/json' --data-binary @- -w '\\n%{http_code}' http://localhost/v1.41/swarm/join",
    );
  });

  it("parses answers: a body and its status, the daemon's message for an error, and refuses what is not an answer", () => {
    const table: [string, { status: number; body: unknown; message: string }][] = [
      ['{"ID":"x"}\n200', { status: 200, body: { ID: "x" }, message: "" }],
      ['{"message":"service web not found"}\n404\n', { status: 404, body: { message: "service web not found" }, message: "service web not found" }],
      ["\n204", { status: 204, body: undefined, message: "" }],
      ["plain text\n500", { status: 500, body: "plain text", message: "plain text" }],
    ];
    for (const [out, want] of table) assert.deepEqual(parseApiAnswer(out), want, out);
    assert.throws(() => parseApiAnswer("curl: (7) Couldn't connect"), /unexpected answer from the Docker API/);
  });

  it("carries the join token in the body, never in the command", () => {
    assert.deepEqual(JSON.parse(joinBody("10.0.0.12", "10.0.0.11", "SWMTKN-1-abc")), { ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.12:2377", RemoteAddrs: ["10.0.0.11:2377"], JoinToken: "SWMTKN-1-abc" });
    assert.deepEqual(JSON.parse(initBody("10.0.0.11")), { ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.11:2377" });
    assert.match(leaveCommand().text, /\/swarm\/leave\?force=true.*\/networks\/docker_gwbridge/);
  });
});

describe("swarm facts", () => {
  it("reads a node's swarm state from /info, and the swarm's nodes from /nodes", () => {
    assert.deepEqual(parseInfo({ Swarm: { LocalNodeState: "active", NodeID: "n1", ControlAvailable: true, Cluster: { ID: "C1" } } }), manager("n1"));
    assert.deepEqual(parseInfo({ Swarm: { LocalNodeState: "inactive", NodeID: "", ControlAvailable: false } }), inactive);
    assert.throws(() => parseInfo({}), /no Swarm section/);
    assert.deepEqual(
      parseNodes([{ ID: "n2", Version: { Index: 15 }, Spec: { Labels: { zone: "b" }, Role: "worker", Availability: "active" }, Description: { Hostname: "m2" }, Status: { State: "ready", Addr: "10.0.0.12" } }]),
      [{ id: "n2", version: 15, hostname: "m2", role: "worker", availability: "active", labels: { zone: "b" }, state: "ready", addr: "10.0.0.12" }],
    );
  });
});

describe("swarm membership", () => {
  const table: [string, Record<string, NodeSwarmFact>, { init?: string; leader?: string; joins: { node: string; role: string }[]; errors: RegExp[] }][] = [
    ["no node in a swarm: the first manager initialises, the others join", { m1: inactive, m2: inactive, m3: inactive }, { init: "m1", leader: "m1", joins: [{ node: "m2", role: "worker" }, { node: "m3", role: "worker" }], errors: [] }],
    ["all in: nothing to do", { m1: manager("n1"), m2: worker("n2"), m3: worker("n3") }, { leader: "m1", joins: [], errors: [] }],
    ["one left: it joins again", { m1: manager("n1"), m2: worker("n2"), m3: inactive }, { leader: "m1", joins: [{ node: "m3", role: "worker" }], errors: [] }],
    ["two swarms: refused, naming both", { m1: manager("n1"), m2: manager("n2", "C2"), m3: inactive }, { joins: [], errors: [/in 2 different swarms \(C1: m1; C2: m2\)/] }],
    ["a node stuck joining: refused with the fix", { m1: manager("n1"), m2: { ...inactive, state: "pending" }, m3: inactive }, { joins: [], errors: [/node m2 is in swarm state "pending"; run `docker swarm leave --force`/] }],
    ["workers without a manager: refused", { m1: inactive, m2: worker("n2"), m3: worker("n3") }, { joins: [], errors: [/nodes m2, m3 are in a swarm but none of them is a manager drove can reach/] }],
  ];
  for (const [what, facts, want] of table) {
    it(what, () => {
      const p = planMembership({ managers: ["m1"], nodes, facts });
      assert.equal(p.init, want.init);
      assert.equal(p.leader, want.leader);
      assert.deepEqual(p.joins, want.joins);
      assert.equal(p.errors.length, want.errors.length, p.errors.join("\n"));
      want.errors.forEach((re, k) => assert.match(p.errors[k], re));
    });
  }

  it("a node in a swarm the managers do not list is in another swarm", () => {
    const entries = parseNodes([{ ID: "n1", Spec: { Role: "manager" } }, { ID: "n2", Spec: { Role: "worker" } }]);
    assert.deepEqual(foreignNodes({ m1: manager("n1"), m2: worker("n2"), m3: worker("x3"), m4: inactive }, entries), ["m3"]);
  });

  it("managers join before workers", () => {
    const p = planMembership({ managers: ["m3", "m1"], nodes: { ...nodes, m1: { ...nodes.m1 }, m3: { ...nodes.m3, role: "manager" } }, facts: { m1: inactive, m2: inactive, m3: inactive } });
    assert.equal(p.init, "m3");
    assert.deepEqual(p.joins, [{ node: "m1", role: "manager" }, { node: "m2", role: "worker" }]);
  });
});

describe("node roles and labels", () => {
  const entry = (id: string, hostname: string, role: "manager" | "worker", labels: Record<string, string>, state = "ready"): SwarmNodeEntry => ({ id, version: 7, hostname, role, availability: "active", labels, state, addr: "" });
  const ids = { m1: "n1", m2: "n2", m3: "n3" };

  it("sets what differs (promotions first), keeps what matches, removes entries of no node that are down", () => {
    const entries = [
      entry("n1", "m1", "manager", { zone: "a", "drove.node": "m1" }),
      entry("n2", "m2", "worker", { zone: "z", "drove.node": "m2" }),
      entry("n3", "m3", "worker", { zone: "a", "drove.node": "m3" }),
      entry("old", "m3", "worker", {}, "down"),
      entry("foreign", "x9", "worker", {}, "ready"),
    ];
    const want = { ...nodes, m3: { ...nodes.m3, role: "manager" as const } };
    assert.deepEqual(planNodeSpecs({ nodes: want, nodeIds: ids, entries }), [
      { kind: "update", node: "m3", id: "n3", version: 7, spec: { Role: "manager", Availability: "active", Labels: { zone: "a", "drove.node": "m3" } } },
      { kind: "update", node: "m2", id: "n2", version: 7, spec: { Role: "worker", Availability: "active", Labels: { zone: "b", "drove.node": "m2" } } },
      { kind: "remove", id: "old", hostname: "m3" },
    ]);
  });

  it("is a no-op when every node is as wanted", () => {
    const entries = Object.entries(nodes).map(([n, d]) => entry(ids[n as keyof typeof ids], n, d.role, { ...d.labels, "drove.node": n }));
    assert.deepEqual(planNodeSpecs({ nodes, nodeIds: ids, entries }), []);
  });

  it("drops labels nobody declares", () => {
    const entries = [entry("n1", "m1", "manager", { zone: "a", "drove.node": "m1", extra: "1" })];
    assert.deepEqual(planNodeSpecs({ nodes: { m1: nodes.m1 }, nodeIds: { m1: "n1" }, entries }), [
      { kind: "update", node: "m1", id: "n1", version: 7, spec: { Role: "manager", Availability: "active", Labels: { zone: "a", "drove.node": "m1" } } },
    ]);
  });
});

describe("placement as swarm constraints", () => {
  const table: [string, Parameters<typeof constraintsFor>[0], string[], RegExp[]][] = [
    ["nothing: anywhere", {}, [], []],
    ["a nodeSelector", { nodeSelector: { zone: "a", disk: "ssd" } }, ["node.labels.disk==ssd", "node.labels.zone==a"], []],
    ["In with one value, NotIn", { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }, { key: "disk", operator: "NotIn", values: ["hdd", "tape"] }] }, ["node.labels.disk!=hdd", "node.labels.disk!=tape", "node.labels.zone==a"], []],
    ["pinned to one node", { pinned: ["m2"] }, ["node.labels.drove.node==m2"], []],
    ["In with two values: refused", { matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] }, [], [/`zone In a,b` has no swarm constraint/]],
    ["Exists: refused", { matchExpressions: [{ key: "gpu", operator: "Exists" }] }, [], [/`gpu Exists` has no swarm constraint/]],
    ["pinned to two, colocation, resources: refused", { pinned: ["m1", "m2"], colocateWith: "db", resources: { cpu: 1 } }, [], [/`pinned` to 2 nodes/, /`colocateWith`/, /`placement.resources`/]],
  ];
  for (const [what, p, constraints, errors] of table) {
    it(what, () => {
      const r = constraintsFor(p);
      assert.deepEqual(r.constraints, constraints);
      assert.equal(r.errors.length, errors.length, r.errors.join("\n"));
      errors.forEach((re, k) => assert.match(r.errors[k], re));
    });
  }
});

describe("rollout as swarm's update config", () => {
  const health = { interval: 1, timeout: 2, retries: 3 };
  const table: [number, number, { Parallelism: number; Order: string }][] = [
    [1, 0, { Parallelism: 1, Order: "start-first" }],
    [2, 0, { Parallelism: 2, Order: "start-first" }],
    [1, 1, { Parallelism: 1, Order: "stop-first" }],
    [0, 2, { Parallelism: 2, Order: "stop-first" }],
  ];
  for (const [maxSurge, maxUnavailable, want] of table) {
    it(`maxSurge ${maxSurge}, maxUnavailable ${maxUnavailable}`, () => {
      assert.deepEqual(updateConfig({ maxSurge, maxUnavailable }, health), { ...want, FailureAction: "rollback", Monitor: 8_000_000_000, MaxFailureRatio: 0 });
    });
  }
});

const desired: SwarmServiceDesired = {
  cluster: "lab",
  name: "web",
  image: "10.0.0.1:5000/web@sha256:abc",
  command: ["/bin/sh", "-c", "exec httpd -f -p 8080"],
  env: { B: "2", A: "1" },
  ports: [{ port: 80, targetPort: 8080, protocol: "tcp" }],
  portBlock: 3,
  healthCheck: { http: { path: "/", port: 8080 } },
  health: { interval: 1, timeout: 2, retries: 3 },
  restart: "always",
  replicas: 3,
  constraints: ["node.labels.zone==a"],
  rollout: { maxSurge: 1, maxUnavailable: 1 },
  secrets: { greeting: { id: "s1", name: "lab-web-greeting-0a0b0c0d" } },
};

describe("a drove service as a swarm ServiceSpec", () => {
  it("publishes on each node's own port, DNS round-robin, one replica per node, secrets as 0400 files, drove's labels", () => {
    const spec = serviceSpec(desired) as Record<string, any>;
    assert.equal(spec.Name, "lab-web");
    assert.deepEqual(spec.Labels, { "drove.service": "lab/web", "drove.rollout": "1/1" });
    assert.deepEqual(spec.EndpointSpec, { Mode: "dnsrr", Ports: [{ Protocol: "tcp", TargetPort: 8080, PublishedPort: publishedPorts(3, 1)[0], PublishMode: "host" }] });
    assert.equal(publishedPorts(3, 1)[0], 20192);
    assert.deepEqual(spec.Mode, { Replicated: { Replicas: 3 } });
    const cs = spec.TaskTemplate.ContainerSpec;
    assert.equal(cs.Image, desired.image);
    assert.deepEqual(cs.Args, desired.command);
    assert.deepEqual(cs.Env, ["A=1", "B=2"]);
    assert.deepEqual(cs.Secrets, [{ File: { Name: "greeting", UID: "0", GID: "0", Mode: 0o400 }, SecretID: "s1", SecretName: "lab-web-greeting-0a0b0c0d" }]);
    assert.equal(cs.Healthcheck, undefined, "an HTTP check is HAProxy's (the image may have no HTTP client)");
    assert.equal(cs.Labels["drove.service"], "lab/web");
    assert.match(specVersion(spec), /^[0-9a-f]{16}$/);
    assert.deepEqual(spec.TaskTemplate.Placement, { Constraints: ["node.labels.zone==a"], MaxReplicas: 1 });
    assert.deepEqual(spec.TaskTemplate.RestartPolicy, { Condition: "any" });
  });

  it("a global service, a command health check, restart policies; the version follows the task template only", () => {
    const { replicas: _r, ...rest } = desired;
    const spec = serviceSpec({ ...rest, healthCheck: { command: ["/bin/true"] }, restart: "on-failure" }) as Record<string, any>;
    assert.deepEqual(spec.Mode, { Global: {} });
    assert.deepEqual(spec.TaskTemplate.Placement, { Constraints: ["node.labels.zone==a"] });
    assert.deepEqual(spec.TaskTemplate.ContainerSpec.Healthcheck, { Test: ["CMD", "/bin/true"], Interval: 1e9, Timeout: 2e9, Retries: 3 });
    assert.deepEqual(spec.TaskTemplate.RestartPolicy, { Condition: "on-failure" });
    assert.equal(specVersion(serviceSpec({ ...desired, replicas: 5 })), specVersion(serviceSpec(desired)), "scaling makes no new tasks");
    assert.notEqual(specVersion(serviceSpec({ ...desired, image: "r/web@sha256:def" })), specVersion(serviceSpec(desired)));
  });

  it("reads back as what it was made from", () => {
    const live = parseService({ Spec: serviceSpec(desired), Version: { Index: 42 }, UpdateStatus: { State: "completed", StartedAt: "t1" } });
    assert.deepEqual(live, {
      image: desired.image,
      command: desired.command,
      env: { A: "1", B: "2" },
      published: [{ targetPort: 8080, publishedPort: 20192, mode: "host" }],
      replicas: 3,
      global: false,
      constraints: ["node.labels.zone==a"],
      rollout: { maxSurge: 1, maxUnavailable: 1 },
      restart: "any",
      secretNames: { greeting: "lab-web-greeting-0a0b0c0d" },
      endpointMode: "dnsrr",
      version: 42,
      updateState: "completed",
      updateMessage: "",
      updateStartedAt: "t1",
    });
  });

  it("an update config changed by hand reads as the rollout it now is", () => {
    const spec = serviceSpec(desired) as Record<string, any>;
    spec.UpdateConfig = { ...spec.UpdateConfig, Order: "start-first", Parallelism: 2 };
    assert.deepEqual(parseService({ Spec: spec }).rollout, { maxSurge: 2, maxUnavailable: 0 });
  });
});

describe("a rollout's progress", () => {
  const live = parseService({ Spec: serviceSpec(desired), UpdateStatus: { State: "updating", StartedAt: "t2" } });
  const task = (version: string, state: string, desiredState = "running", error = "") => ({ id: Math.random().toString(), nodeId: "n", desired: desiredState, state, error, image: "", version });
  const table: [string, Parameters<typeof rolloutState>[0], string, RegExp?][] = [
    ["all new tasks running, update completed: done", { live: { ...live, updateState: "completed" }, tasks: [task("v2", "running"), task("v2", "running"), task("v1", "shutdown", "shutdown")], version: "v2", want: 2 }, "done"],
    ["still updating", { live, tasks: [task("v2", "running"), task("v1", "running")], version: "v2", want: 2 }, "waiting", /1 of 2 replicas running, update updating/],
    ["just posted: the old status of a rollback last time does not count, the old tasks do not either", { live: { ...live, updateState: "rollback_completed", updateStartedAt: "t0" }, tasks: [task("v1", "running"), task("v1", "running")], version: "v2", want: 2, startedBefore: "t0" }, "waiting", /0 of 2 replicas running;?/],
    ["rolling back: waiting until swarm is done", { live: { ...live, updateState: "rollback_started", updateMessage: "update rolled back due to failure or early termination of task x" }, tasks: [task("v1", "running")], version: "v2", want: 2, startedBefore: "t0" }, "waiting", /swarm is rolling the update back/],
    ["rolled back: failed with the tasks' errors", { live: { ...live, updateState: "rollback_completed", updateMessage: "update rolled back due to failure or early termination of task x" }, tasks: [task("v2", "failed", "shutdown", "task: non-zero exit (3)"), task("v1", "running")], version: "v2", want: 2, startedBefore: "t0" }, "failed", /rolled the update back: update rolled back due to failure or early termination of task x \(task: non-zero exit \(3\)\)/],
    ["scaled down: waiting until the task taken down has stopped", { live: { ...live, updateState: "" }, tasks: [task("v2", "running"), task("v2", "running"), task("v2", "running", "shutdown")], version: "v2", want: 2 }, "waiting", /2 of 2 replicas running, 1 stopping/],
    ["scaled down and stopped: done", { live: { ...live, updateState: "" }, tasks: [task("v2", "running"), task("v2", "running"), task("v2", "shutdown", "shutdown")], version: "v2", want: 2 }, "done"],
    ["pending with no node: waiting, saying why", { live: { ...live, updateState: "" }, tasks: [task("v2", "running"), task("v2", "pending", "running", "no suitable node (max replicas per node limit exceed)")], version: "v2", want: 2 }, "waiting", /no suitable node/],
  ];
  for (const [what, input, state, reason] of table) {
    it(what, () => {
      const r = rolloutState(input);
      assert.equal(r.state, state, r.reason);
      if (reason) assert.match(r.reason, reason);
    });
  }

  it("parses tasks with drove's version label", () => {
    assert.deepEqual(parseTasks([{ ID: "t", NodeID: "n1", DesiredState: "running", Status: { State: "running", Err: "" }, Spec: { ContainerSpec: { Image: "i", Labels: { "drove.version": "v" } } } }]), [
      { id: "t", nodeId: "n1", desired: "running", state: "running", error: "", image: "i", version: "v" },
    ]);
  });
});

describe("secret names", () => {
  it("keep the generation whole within swarm's 64 characters", () => {
    assert.equal(secretName("lab", "web", "greeting", "0a0b0c0d"), "lab-web-greeting-0a0b0c0d");
    const long = secretName("c".repeat(42), "s".repeat(42), "f".repeat(100), "0a0b0c0d");
    assert.equal(long.length, 64);
    assert.ok(long.endsWith("-0a0b0c0d"));
  });
});
