import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { place, renderPlacement, type PlacementInput, type PlacementNode, type PlacementResult, type PlacementService, type Placement } from "./placement";

// ------------------------------------------------------------------ helpers

function node(name: string, labels: Record<string, string> = {}, more: Partial<PlacementNode> = {}): PlacementNode {
  return { name, labels, available: true, ...more };
}
const down = (name: string, labels: Record<string, string> = {}): PlacementNode => node(name, labels, { available: false });
const zones = (spec: string): PlacementNode[] => spec.split(" ").map((s) => { const [name, zone] = s.split("="); return node(name, { zone }); });

interface Case {
  readonly name: string;
  readonly given: PlacementInput;
  /** The exact new placement of every service named here. */
  readonly placement?: Placement;
  /** Lines that renderPlacement must print, exactly. */
  readonly lines?: readonly string[];
  /** Substrings, one per expected error, in order; [] means no error. */
  readonly errors?: readonly string[];
}

function check(c: Case): PlacementResult {
  // given / when
  const r = place(c.given);
  const text = renderPlacement(r);
  // then
  for (const [s, p] of Object.entries(c.placement ?? {})) assert.deepEqual(r.placement[s], p, `${c.name}: placement of ${s}\n${text.join("\n")}`);
  for (const l of c.lines ?? []) assert.ok(text.includes(l), `${c.name}: expected the line\n${l}\nin\n${text.join("\n")}`);
  if (c.errors) {
    assert.equal(r.errors.length, c.errors.length, `${c.name}: errors ${JSON.stringify(r.errors, null, 1)}`);
    c.errors.forEach((e, i) => assert.ok(r.errors[i].includes(e), `${c.name}: error ${i} is\n${r.errors[i]}\nnot containing\n${e}`));
    assert.equal(r.ok, c.errors.length === 0);
  }
  return r;
}

function table(title: string, cases: readonly Case[]): void {
  describe(title, () => {
    for (const c of cases) it(c.name, () => void check(c));
  });
}

// ------------------------------------------------------------------ fixture tables, one per constraint

table("nodeSelector", [
  {
    name: "places only on nodes whose labels match, and says why the others are out",
    given: { nodes: zones("m1=a m2=b m3=a"), services: [{ name: "web", replicas: 2, nodeSelector: { zone: "a" } }] },
    placement: { web: { m1: 1, m3: 1 } },
    lines: ["service web: 2 of 2 replicas on m1, m3 (was none)", "  m1: 1 new replica (new service)", "  m2: no, label zone=b does not match zone=a", "  m3: 1 new replica (new service)"],
    errors: [],
  },
  {
    name: "a node without the label is out, named as such",
    given: { nodes: [node("m1", { zone: "a" }), node("m2")], services: [{ name: "web", nodeSelector: { zone: "a" } }] },
    placement: { web: { m1: 1 } },
    lines: ["  m2: no, has no label zone (wants zone=a)"],
    errors: [],
  },
  {
    name: "every pair must match: each mismatch is listed",
    given: { nodes: [node("m1", { zone: "a", disk: "ssd" }), node("m2", { zone: "b", disk: "hdd" })], services: [{ name: "db", nodeSelector: { zone: "a", disk: "ssd" } }] },
    placement: { db: { m1: 1 } },
    lines: ["  m2: no, label disk=hdd does not match disk=ssd; label zone=b does not match zone=a"],
  },
  {
    name: "no node matches: an error naming the selector, nothing placed",
    given: { nodes: zones("m1=b m2=b"), services: [{ name: "web", replicas: 2, nodeSelector: { zone: "a" } }] },
    placement: { web: {} },
    errors: ["service web wants 2 replicas but no available node matches zone=a. Either label or bring up a node that matches zone=a"],
  },
  {
    name: "a matching node that is down is named in the error",
    given: { nodes: [down("m1", { zone: "a" }), node("m2", { zone: "b" })], services: [{ name: "web", nodeSelector: { zone: "a" } }] },
    placement: { web: {} },
    errors: ["service web wants 1 replica but no available node matches zone=a (m1 also qualifies but is unavailable)"],
  },
]);

table("matchExpressions (as Kubernetes)", [
  {
    name: "In: the label is one of the values",
    given: { nodes: zones("m1=a m2=b m3=c"), services: [{ name: "web", replicas: 2, matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] }] },
    placement: { web: { m1: 1, m2: 1 } },
    lines: ["  m3: no, label zone=c is not in (a, b)"],
    errors: [],
  },
  {
    name: "In: a node without the label is out",
    given: { nodes: [node("m1")], services: [{ name: "web", matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }] },
    lines: ["  m1: no, has no label zone (wants zone in (a))"],
    errors: ["no available node matches zone in (a)"],
  },
  {
    name: "NotIn: a node without the label qualifies, an excluded value does not",
    given: { nodes: [node("m1"), node("m2", { zone: "a" }), node("m3", { zone: "b" })], services: [{ name: "web", replicas: 2, matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }] },
    placement: { web: { m1: 1, m3: 1 } },
    lines: ["  m2: no, label zone=a is excluded (wants zone notin (a))"],
    errors: [],
  },
  {
    name: "Exists and DoesNotExist",
    given: {
      nodes: [node("m1", { gpu: "yes" }), node("m2", { gpu: "yes", spot: "1" }), node("m3")],
      services: [{ name: "ml", replicas: 1, matchExpressions: [{ key: "gpu", operator: "Exists" }, { key: "spot", operator: "DoesNotExist" }] }],
    },
    placement: { ml: { m1: 1 } },
    lines: ["  m2: no, has label spot=1 (wants no spot label)", "  m3: no, has no label gpu"],
    errors: [],
  },
  {
    name: "selector and expressions together",
    given: {
      nodes: [node("m1", { zone: "a", disk: "ssd" }), node("m2", { zone: "a", disk: "hdd" })],
      services: [{ name: "db", nodeSelector: { zone: "a" }, matchExpressions: [{ key: "disk", operator: "In", values: ["ssd", "nvme"] }] }],
    },
    placement: { db: { m1: 1 } },
  },
  {
    name: "malformed requirements are errors, before anything is placed",
    given: {
      nodes: zones("m1=a"),
      services: [
        { name: "a", matchExpressions: [{ key: "zone", operator: "In" }] },
        { name: "b", matchExpressions: [{ key: "zone", operator: "Exists", values: ["x"] }] },
        { name: "c", matchExpressions: [{ key: "zone", operator: "Near" as "In", values: ["a"] }] },
      ],
    },
    placement: { a: {}, b: {}, c: {} },
    errors: ["service a: matchExpressions: zone In needs at least one value", "service b: matchExpressions: zone Exists takes no values", 'service c: matchExpressions: operator "Near" for zone is not one of In, NotIn, Exists, DoesNotExist'],
  },
]);

table("spread.maxPerNode (anti-affinity)", [
  {
    name: "maxPerNode 1: no two replicas on one host",
    given: { nodes: zones("m1=a m2=a m3=a"), services: [{ name: "web", replicas: 3, spread: { maxPerNode: 1 } }] },
    placement: { web: { m1: 1, m2: 1, m3: 1 } },
    errors: [],
  },
  {
    name: "maxPerNode 2: four replicas on two nodes",
    given: { nodes: zones("m1=a m2=a"), services: [{ name: "web", replicas: 4, spread: { maxPerNode: 2 } }] },
    placement: { web: { m1: 2, m2: 2 } },
    errors: [],
  },
  {
    name: "too few nodes: the error counts them and names them, and the placement is the best one (never silently short)",
    given: { nodes: zones("m1=a m2=a m3=a m4=b"), services: [{ name: "web", replicas: 5, nodeSelector: { zone: "a" }, spread: { maxPerNode: 1 } }] },
    placement: { web: { m1: 1, m2: 1, m3: 1 } },
    lines: ["service web: 3 of 5 replicas on m1, m2, m3 (was none)"],
    errors: ["service web wants 5 replicas with maxPerNode 1 but only 3 nodes match zone=a: m1, m2, m3. Either lower `replicas` to 3, or raise `spread.maxPerNode`, or add nodes that match zone=a"],
  },
  {
    name: "without maxPerNode, replicas still spread: the node with fewest replicas of the service first",
    given: { nodes: zones("m1=a m2=a"), services: [{ name: "web", replicas: 3 }] },
    placement: { web: { m1: 2, m2: 1 } },
  },
  {
    name: "lowering maxPerNode moves the extra replicas, explained",
    given: { nodes: zones("m1=a m2=a"), services: [{ name: "web", replicas: 2, spread: { maxPerNode: 1 } }], previous: { web: { m1: 2 } } },
    placement: { web: { m1: 1, m2: 1 } },
    lines: ["  m1: kept 1 replica (already running), 1 replica over maxPerNode 1 moves to m2", "  m2: 1 new replica (moved from m1)"],
    errors: [],
  },
  {
    name: "maxPerNode must be a whole number of at least 1",
    given: { nodes: zones("m1=a"), services: [{ name: "web", spread: { maxPerNode: 0 } }] },
    errors: ["service web: `spread.maxPerNode` must be a whole number of at least 1, but 0 was provided"],
  },
]);

table("spread.acrossLabel", [
  {
    name: "evenly across the values of the label",
    given: { nodes: zones("m1=a m2=a m3=b m4=c"), services: [{ name: "web", replicas: 3, spread: { acrossLabel: "zone" } }] },
    placement: { web: { m1: 1, m3: 1, m4: 1 } },
    errors: [],
  },
  {
    name: "four replicas on two zones of unequal size: two each",
    given: { nodes: zones("m1=a m2=a m3=b"), services: [{ name: "web", replicas: 4, spread: { acrossLabel: "zone" } }] },
    placement: { web: { m1: 1, m2: 1, m3: 2 } },
  },
  {
    name: "a node without the label is not used",
    given: { nodes: [node("m1", { zone: "a" }), node("m2")], services: [{ name: "web", replicas: 2, spread: { acrossLabel: "zone" } }] },
    placement: { web: { m1: 2 } },
    lines: ["  m2: no, has no label zone to spread across"],
  },
  {
    name: "a zone without room stops the service with an error, rather than an uneven spread",
    given: { nodes: [node("m1", { zone: "a" }, { capacity: { cpu: 1 } }), ...zones("m2=b m3=b")], services: [{ name: "web", replicas: 4, resources: { cpu: 1 }, spread: { acrossLabel: "zone" } }] },
    placement: { web: { m1: 1, m2: 1, m3: 1 } },
    lines: ["  m3: 1 new replica (new service)"],
    errors: ["service web cannot spread 4 replicas evenly across zone: zone=a has no room for another (m1: cpu 1 of 1 used, needs 1); 3 placed (zone=a: 1, zone=b: 2). Either make room on a node with zone=a, or lower `replicas` to 3, or remove `spread.acrossLabel`"],
  },
  {
    name: "scaling up fills the emptiest zone first; running replicas are not moved to even out, and the note says so",
    given: { nodes: zones("m1=a m2=a m3=b"), services: [{ name: "web", replicas: 3, spread: { acrossLabel: "zone" } }], previous: { web: { m1: 1, m2: 1 } } },
    placement: { web: { m1: 1, m2: 1, m3: 1 } },
    lines: ["  m3: 1 new replica (scaling up 2 -> 3)"],
    errors: [],
  },
  {
    name: "a returning zone does not move running replicas: the uneven spread is noted",
    given: { nodes: zones("m1=a m2=b"), services: [{ name: "web", replicas: 2, spread: { acrossLabel: "zone" } }], previous: { web: { m1: 2 } } },
    placement: { web: { m1: 2 } },
    lines: ["  note: the spread across zone is uneven (zone=a: 2, zone=b: 0): running replicas are not moved only to even it out; new replicas go to the emptiest values first"],
    errors: [],
  },
  {
    name: "scaling down removes from the fullest zone first",
    given: { nodes: zones("m1=a m2=a m3=b"), services: [{ name: "web", replicas: 2, spread: { acrossLabel: "zone" } }], previous: { web: { m1: 1, m2: 1, m3: 1 } } },
    placement: { web: { m1: 1, m3: 1 } },
    lines: ["  m2: 1 replica removed (scaling down 3 -> 2; from the fullest zone first)"],
  },
]);

table("pinned", [
  {
    name: "only the pinned nodes",
    given: { nodes: zones("m1=a m2=a m3=a"), services: [{ name: "db", replicas: 2, pinned: ["m3", "m2"] }] },
    placement: { db: { m2: 1, m3: 1 } },
    lines: ["  m1: no, not pinned (pinned to m2, m3)"],
    errors: [],
  },
  {
    name: "a pinned node that is down: its replica has nowhere to go, and the error says so",
    given: { nodes: [down("m1"), node("m2")], services: [{ name: "db", pinned: ["m1"] }], previous: { db: { m1: 1 } } },
    placement: { db: {} },
    lines: ["  m1: unavailable, its 1 replica cannot be placed elsewhere (see the errors)"],
    errors: ["service db wants 1 replica but no available node is pinned (m1 also qualifies but is unavailable)"],
  },
  {
    name: "pinned to a node that does not exist, or to none",
    given: { nodes: [node("m1")], services: [{ name: "db", pinned: ["m1", "m9"] }, { name: "x", pinned: [] }] },
    placement: { db: { m1: 1 }, x: {} },
    errors: ["service db is pinned to m9, which is not a node. Either add node m9, or remove it from `pinned`", "service x: `pinned` is empty"],
  },
]);

table("colocateWith", [
  {
    name: "only on nodes that run the other service",
    given: { nodes: zones("m1=a m2=a m3=a"), services: [{ name: "db", replicas: 2, pinned: ["m1", "m3"] }, { name: "cache", replicas: 2, colocateWith: "db" }] },
    placement: { db: { m1: 1, m3: 1 }, cache: { m1: 1, m3: 1 } },
    lines: ["  m2: no, does not run db"],
    errors: [],
  },
  {
    name: "follows the other service's new placement when it moves",
    given: { nodes: [down("m1"), node("m2"), node("m3")], services: [{ name: "db", replicas: 1 }, { name: "cache", replicas: 1, colocateWith: "db" }], previous: { db: { m1: 1 }, cache: { m1: 1 } } },
    placement: { db: { m2: 1 }, cache: { m2: 1 } },
    lines: ["  m1: unavailable, its 1 replica moves to m2"],
    errors: [],
  },
  {
    name: "a replica left where the other service no longer runs moves with it",
    given: { nodes: zones("m1=a m2=b"), services: [{ name: "db", nodeSelector: { zone: "b" } }, { name: "cache", colocateWith: "db" }], previous: { db: { m1: 1 }, cache: { m1: 1 } } },
    placement: { db: { m2: 1 }, cache: { m2: 1 } },
    lines: ["  m1: no, db no longer runs here; its 1 replica moves to m2"],
  },
  {
    name: "a replica that was ahead of the other service stays when that service arrives on its node",
    given: { nodes: zones("m1=a m2=a"), services: [{ name: "a", pinned: ["m2"] }, { name: "b", colocateWith: "a" }], previous: { b: { m2: 1 } } },
    placement: { a: { m2: 1 }, b: { m2: 1 } },
    lines: ["service b: 1 of 1 replica on m2", "  m2: kept 1 replica (already running)"],
    errors: [],
  },
  {
    name: "the service placed second even when its name sorts first",
    given: { nodes: zones("m1=a m2=a"), services: [{ name: "zdb", pinned: ["m2"] }, { name: "acache", colocateWith: "zdb" }] },
    placement: { zdb: { m2: 1 }, acache: { m2: 1 } },
    errors: [],
  },
  {
    name: "a cycle is an error naming its services, once each",
    given: { nodes: zones("m1=a"), services: [{ name: "c", colocateWith: "a" }, { name: "a", colocateWith: "b" }, { name: "b", colocateWith: "c" }, { name: "d", colocateWith: "a" }, { name: "e" }] },
    placement: { a: {}, b: {}, c: {}, d: {}, e: { m1: 1 } },
    errors: [
      "services a, b, c are to run with each other in a cycle (a -> b -> c -> a), so none can be placed first",
      "services a, b, c are to run with each other in a cycle",
      "services a, b, c are to run with each other in a cycle",
      "service d is to run with service a, which cannot be placed (see its errors)",
    ],
  },
  {
    name: "with itself, or with a service that does not exist",
    given: { nodes: zones("m1=a"), services: [{ name: "a", colocateWith: "a" }, { name: "b", colocateWith: "nope" }] },
    errors: ['service a is to run with itself (`colocateWith: "a"`)', "service b is to run with service nope, which is not a service"],
  },
]);

table("global", [
  {
    name: "exactly one per available node that qualifies",
    given: { nodes: [node("m1", { zone: "a" }), node("m2", { zone: "b" }), down("m3", { zone: "a" }), node("m4", { zone: "a" })], services: [{ name: "agent", global: true, nodeSelector: { zone: "a" } }] },
    placement: { agent: { m1: 1, m4: 1 } },
    lines: ["service agent: global, 2 replicas on m1, m4 (was none)", "  m1: 1 new replica (global: one per node that qualifies)", "  m3: unavailable"],
    errors: [],
  },
  {
    name: "a new node gets one; running ones stay; extras go; a node that is down loses its own",
    given: { nodes: [node("m1"), node("m2"), down("m3"), node("m4")], services: [{ name: "agent", global: true }], previous: { agent: { m1: 1, m2: 2, m3: 1 } } },
    placement: { agent: { m1: 1, m2: 1, m4: 1 } },
    lines: ["  m2: kept 1 replica (already running), 1 extra replica removed (global: one per node)", "  m3: unavailable, its 1 replica is removed (global: one per node that qualifies)", "  m4: 1 new replica (global: one per node that qualifies)"],
    errors: [],
  },
  {
    name: "a node that qualifies without room is an error, not a silent gap",
    given: { nodes: [node("m1", {}, { capacity: { cpu: 1 } }), node("m2", {}, { capacity: { cpu: 0.25 } })], services: [{ name: "agent", global: true, resources: { cpu: 0.5 } }] },
    placement: { agent: { m1: 1 } },
    lines: ["  m2: eligible, no room: cpu 0 of 0.25 used, needs 0.5"],
    errors: ["service agent is global but a node that qualifies has no room for it: m2 (cpu 0 of 0.25 used, needs 0.5)"],
  },
  {
    name: "replicas or spread with global are errors",
    given: { nodes: [node("m1")], services: [{ name: "a", global: true, replicas: 2 }, { name: "b", global: true, spread: { maxPerNode: 1 } }] },
    errors: ["service a: `replicas` and `global` exclude each other", "service b: `spread` does not apply to a global service"],
  },
]);

table("capacity", [
  {
    name: "cpu caps replicas per node; fractions add up exactly (0.1 + 0.2 fits 0.3)",
    given: { nodes: [node("m1", {}, { capacity: { cpu: 0.3 } })], services: [{ name: "a", resources: { cpu: 0.1 } }, { name: "b", resources: { cpu: 0.2 } }] },
    placement: { a: { m1: 1 }, b: { m1: 1 } },
    errors: [],
  },
  {
    name: "memory fills the first node, the rest go to the next",
    given: { nodes: [node("m1", {}, { capacity: { memoryMb: 1024 } }), node("m2", {}, { capacity: { memoryMb: 4096 } })], services: [{ name: "web", replicas: 4, resources: { memoryMb: 512 } }] },
    placement: { web: { m1: 2, m2: 2 } },
  },
  {
    name: "capacity.replicas counts the replicas of every service",
    given: { nodes: [node("m1", {}, { capacity: { replicas: 2 } }), node("m2")], services: [{ name: "a", replicas: 2, pinned: ["m1"] }, { name: "b", replicas: 1, pinned: ["m1"] }] },
    placement: { a: { m1: 2 }, b: {} },
    errors: ["service b wants 1 replica but only 0 fit on the nodes that are pinned: m1 (2 of 2 replicas already, 0 placed)"],
  },
  {
    name: "running replicas hold their room: a new service that sorts first does not push them out",
    given: {
      nodes: [node("m1", {}, { capacity: { cpu: 2 } }), node("m2", {}, { capacity: { cpu: 2 } })],
      services: [{ name: "aaa", replicas: 2, resources: { cpu: 1 } }, { name: "web", replicas: 2, resources: { cpu: 1 }, spread: { maxPerNode: 1 } }],
      previous: { web: { m1: 1, m2: 1 } },
    },
    placement: { aaa: { m1: 1, m2: 1 }, web: { m1: 1, m2: 1 } },
    errors: [],
  },
  {
    name: "a node whose capacity shrank: the replicas without room move",
    given: { nodes: [node("m1", {}, { capacity: { cpu: 1 } }), node("m2")], services: [{ name: "web", replicas: 2, resources: { cpu: 1 } }], previous: { web: { m1: 2 } } },
    placement: { web: { m1: 1, m2: 1 } },
    lines: ["  m1: kept 1 replica (already running), 1 replica without room (cpu 1 of 1 used, needs 1) moves to m2"],
    errors: [],
  },
  {
    name: "not enough room anywhere: the error lists each node's shortage",
    given: { nodes: [node("m1", {}, { capacity: { cpu: 1 } }), node("m2", {}, { capacity: { cpu: 1.5 } })], services: [{ name: "web", replicas: 3, resources: { cpu: 1 } }] },
    placement: { web: { m1: 1, m2: 1 } },
    errors: ["service web wants 3 replicas but only 2 fit on the nodes that are available: m1 (cpu 1 of 1 used, needs 1, 1 placed), m2 (cpu 1 of 1.5 used, needs 1, 1 placed). Either lower `replicas` or `resources`, or add capacity or nodes"],
  },
  {
    name: "a resource the node does not list is unlimited; any resource name works",
    given: { nodes: [node("m1", {}, { capacity: { gpu: 1 } }), node("m2")], services: [{ name: "ml", replicas: 3, resources: { gpu: 1 }, pinned: ["m1"] }, { name: "web", replicas: 2, resources: { cpu: 8 }, pinned: ["m1"] }] },
    placement: { ml: { m1: 1 }, web: { m1: 2 } },
    errors: ["service ml wants 3 replicas but only 1 fit on the nodes that are pinned: m1 (gpu 1 of 1 used, needs 1, 1 placed)"],
  },
  {
    name: "bad capacity or resources are input errors",
    given: { nodes: [node("m1", {}, { capacity: { cpu: -1 } })], services: [{ name: "web" }] },
    errors: ["node m1: `capacity.cpu` must be a number of at least 0, but -1 was provided"],
  },
  {
    name: "resources.replicas is not a resource",
    given: { nodes: [node("m1")], services: [{ name: "web", resources: { replicas: 1 } }] },
    errors: ["service web: `resources.replicas` is not a resource"],
  },
]);

table("minimal movement, scaling and node loss", [
  {
    name: "node loss: its replicas move to the others, explained line by line",
    given: {
      nodes: [down("m1", { zone: "a" }), node("m2", { zone: "a" }), node("m3", { zone: "a" }), node("m4", { zone: "a" }), node("m5", { zone: "b" })],
      services: [{ name: "web", replicas: 4, nodeSelector: { zone: "a" } }],
      previous: { web: { m1: 2, m2: 1, m3: 1 } },
    },
    placement: { web: { m2: 2, m3: 1, m4: 1 } },
    lines: [
      "service web: 4 of 4 replicas on m2 (2), m3, m4 (was m1 (2), m2, m3)",
      "  m1: unavailable, its 2 replicas move to m2, m4",
      "  m2: kept 1 replica (already running), 1 new replica (moved from m1)",
      "  m3: kept 1 replica (already running)",
      "  m4: 1 new replica (moved from m1)",
      "  m5: no, label zone=b does not match zone=a",
    ],
    errors: [],
  },
  {
    name: "the brief's example: two replicas of a lost node go to two hosts under anti-affinity",
    given: { nodes: [down("m1"), node("m2"), node("m3"), node("m4")], services: [{ name: "web", replicas: 3, spread: { maxPerNode: 1 } }], previous: { web: { m1: 1, m4: 1 } } },
    placement: { web: { m2: 1, m3: 1, m4: 1 } },
    lines: ["  m1: unavailable, its 1 replica moves to m2", "  m3: 1 new replica (scaling up 2 -> 3)", "  m4: kept 1 replica (already running)"],
  },
  {
    name: "a node no longer listed is named as gone",
    given: { nodes: [node("m2")], services: [{ name: "web" }], previous: { web: { m1: 1 } } },
    placement: { web: { m2: 1 } },
    lines: ["  m1: no longer a node, its 1 replica moves to m2"],
  },
  {
    name: "scaling up only adds",
    given: { nodes: zones("m1=a m2=a m3=a"), services: [{ name: "web", replicas: 5 }], previous: { web: { m1: 1, m2: 1, m3: 1 } } },
    placement: { web: { m1: 2, m2: 2, m3: 1 } },
    lines: ["  m1: kept 1 replica (already running), 1 new replica (scaling up 3 -> 5)"],
  },
  {
    name: "scaling down only removes: from the node with most replicas of the service, then most replicas overall, then the last name",
    given: {
      nodes: zones("m1=a m2=a m3=a"),
      services: [{ name: "web", replicas: 2 }, { name: "other", replicas: 1 }],
      previous: { web: { m1: 1, m2: 2, m3: 1 }, other: { m1: 1 } },
    },
    placement: { web: { m2: 1, m3: 1 }, other: { m1: 1 } },
    lines: ["  m1: 1 replica removed (scaling down 4 -> 2)", "  m2: kept 1 replica (already running), 1 replica removed (scaling down 4 -> 2)", "  m3: kept 1 replica (already running)"],
  },
  {
    name: "scaling down with every node alike: the node whose name sorts last goes first",
    given: { nodes: zones("m1=a m2=a m3=a"), services: [{ name: "web", replicas: 1 }], previous: { web: { m1: 1, m2: 1, m3: 1 } } },
    placement: { web: { m1: 1 } },
  },
  {
    name: "scaling down while a node is lost: the lost replica is not replaced",
    given: { nodes: [down("m1"), node("m2"), node("m3")], services: [{ name: "web", replicas: 2 }], previous: { web: { m1: 1, m2: 1, m3: 1 } } },
    placement: { web: { m2: 1, m3: 1 } },
    lines: ["  m1: unavailable, its 1 replica is not replaced (scaling down 3 -> 2)"],
    errors: [],
  },
  {
    name: "a changed selector moves the replicas that no longer match",
    given: { nodes: zones("m1=a m2=b"), services: [{ name: "web", nodeSelector: { zone: "b" } }], previous: { web: { m1: 1 } } },
    placement: { web: { m2: 1 } },
    lines: ["  m1: no, label zone=a does not match zone=b; its 1 replica moves to m2", "  m2: 1 new replica (moved from m1)"],
  },
  {
    name: "replicas: 0 removes them all",
    given: { nodes: zones("m1=a"), services: [{ name: "web", replicas: 0 }], previous: { web: { m1: 2 } } },
    placement: { web: {} },
    lines: ["  m1: 2 replicas removed (scaling down 2 -> 0)"],
    errors: [],
  },
  {
    name: "a service no longer listed is removed, and the render says so",
    given: { nodes: zones("m1=a m2=a"), services: [{ name: "web" }], previous: { web: { m1: 1 }, old: { m1: 1, m2: 2 } } },
    placement: { web: { m1: 1 } },
    lines: ["service old: removed, its 3 replicas on m1, m2 (2) stop"],
    errors: [],
  },
]);

table("input errors", [
  {
    name: "duplicate node and service names, and a bad previous count",
    given: { nodes: [node("m1"), node("m1")], services: [{ name: "web" }, { name: "web" }], previous: { web: { m1: 1.5 } } },
    errors: ["node m1 is listed twice", "service web is listed twice", "the previous placement of web on m1 must be a whole number of replicas, but 1.5 was provided"],
  },
  {
    name: "replicas must be a whole number",
    given: { nodes: [node("m1")], services: [{ name: "web", replicas: -1 }] },
    placement: { web: {} },
    errors: ["service web: `replicas` must be a whole number of at least 0, but -1 was provided"],
  },
]);

describe("renderPlacement", () => {
  it("shows only what changes with changesOnly, errors and notes always", () => {
    // given a cluster where web loses a node and api stays put
    const r = place({
      nodes: [down("m1"), node("m2"), node("m3")],
      services: [{ name: "api", pinned: ["m3"] }, { name: "web", replicas: 2, spread: { maxPerNode: 1 } }],
      previous: { api: { m3: 1 }, web: { m1: 1, m2: 1 } },
    });
    // when
    const lines = renderPlacement(r, { changesOnly: true });
    // then
    assert.deepEqual(lines, ["service web: 2 of 2 replicas on m2, m3 (was m1, m2)", "  m1: unavailable, its 1 replica moves to m3", "  m3: 1 new replica (moved from m1)"]);
  });

  it("renders one service when asked, and input errors on their own", () => {
    const r = place({ nodes: [node("m1")], services: [{ name: "a" }, { name: "b" }] });
    assert.deepEqual(renderPlacement(r, { services: ["b"] }), ["service b: 1 of 1 replica on m1 (was none)", "  m1: 1 new replica (new service)"]);
    assert.deepEqual(renderPlacement(place({ nodes: [node("m1"), node("m1")], services: [] })), ["error: node m1 is listed twice; node names must be unique"]);
  });

  it("the example in place()'s TSDoc", () => {
    const r = place({
      nodes: [
        { name: "m1", labels: { zone: "a" }, available: false },
        { name: "m2", labels: { zone: "a" }, available: true },
        { name: "m3", labels: { zone: "a" }, available: true },
      ],
      services: [{ name: "web", replicas: 2, nodeSelector: { zone: "a" }, spread: { maxPerNode: 1 } }],
      previous: { web: { m1: 1, m2: 1 } },
    });
    assert.deepEqual(r.placement, { web: { m2: 1, m3: 1 } });
    assert.deepEqual(renderPlacement(r), [
      "service web: 2 of 2 replicas on m2, m3 (was m1, m2)",
      "  m1: unavailable, its 1 replica moves to m3",
      "  m2: kept 1 replica (already running)",
      "  m3: 1 new replica (moved from m1)",
    ]);
  });

  it("the README's example", () => {
    // given m1 is down; web ran two replicas there, db one
    const r = place({
      nodes: [
        { name: "m1", labels: { zone: "a" }, available: false },
        { name: "m2", labels: { zone: "a" }, available: true },
        { name: "m3", labels: { zone: "a" }, available: true },
        { name: "m4", labels: { zone: "b" }, available: true },
      ],
      services: [
        { name: "web", replicas: 3, nodeSelector: { zone: "a" } },
        { name: "db", replicas: 3, nodeSelector: { zone: "a" }, spread: { maxPerNode: 1 } },
      ],
      previous: { web: { m1: 2, m2: 1 }, db: { m1: 1, m2: 1, m3: 1 } },
    });
    // then
    assert.equal(r.ok, false);
    assert.deepEqual(r.placement, { db: { m2: 1, m3: 1 }, web: { m2: 2, m3: 1 } });
    assert.deepEqual(renderPlacement(r), [
      "service db: 2 of 3 replicas on m2, m3 (was m1, m2, m3)",
      "  m1: unavailable, its 1 replica cannot be placed elsewhere (see the errors)",
      "  m2: kept 1 replica (already running)",
      "  m3: kept 1 replica (already running)",
      "  m4: no, label zone=b does not match zone=a",
      "  error: service db wants 3 replicas with maxPerNode 1 but only 2 nodes match zone=a: m2, m3 (m1 also qualifies but is unavailable). Either lower `replicas` to 2, or raise `spread.maxPerNode`, or add nodes that match zone=a",
      "service web: 3 of 3 replicas on m2 (2), m3 (was m1 (2), m2)",
      "  m1: unavailable, its 2 replicas move to m2, m3",
      "  m2: kept 1 replica (already running), 1 new replica (moved from m1)",
      "  m3: 1 new replica (moved from m1)",
      "  m4: no, label zone=b does not match zone=a",
    ]);
  });
});

// ------------------------------------------------------------------ properties

const NODE_NAMES = ["m0", "m1", "m2", "m3", "m4", "m5"];
const SERVICE_NAMES = ["s0", "s1", "s2", "s3", "s4"];

/** Present one time in `oneIn`. */
const sometimes = <T>(arb: fc.Arbitrary<T>, oneIn = 4): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: oneIn - 1 }, { arbitrary: arb, weight: 1 });
const arbLabels = fc.record({ zone: fc.constantFrom("a", "b", "c"), disk: fc.constantFrom("ssd", "hdd") }, { requiredKeys: [] });
const arbCapacity = sometimes(fc.record({ cpu: fc.constantFrom(1, 1.5, 2, 4), memoryMb: fc.constantFrom(512, 1024, 2048), replicas: fc.integer({ min: 0, max: 6 }) }, { requiredKeys: [] }), 3);
const arbNode = (name: string) =>
  fc.record({ labels: arbLabels, capacity: arbCapacity, available: fc.integer({ min: 0, max: 7 }).map((x) => x > 0) }).map(({ labels, capacity, available }) => ({ name, labels, available, ...(capacity ? { capacity } : {}) }) as PlacementNode);
const arbNodes = fc.subarray(NODE_NAMES, { minLength: 1 }).chain((names) => fc.tuple(...names.map(arbNode)));

const arbService = (name: string, others: readonly string[], nodes: readonly string[] = NODE_NAMES) =>
  fc
    .record({
      global: fc.integer({ min: 0, max: 6 }).map((x) => x === 0),
      replicas: sometimes(fc.integer({ min: 0, max: 6 }), 2),
      resources: sometimes(fc.record({ cpu: fc.constantFrom(0, 0.5, 1), memoryMb: fc.constantFrom(0, 256, 512) }, { requiredKeys: [] }), 3),
      nodeSelector: sometimes(fc.record({ zone: fc.constantFrom("a", "b") })),
      matchExpressions: sometimes(
        fc.array(
          fc.oneof(
            fc.record({ key: fc.constant("disk"), operator: fc.constantFrom("In" as const, "NotIn" as const), values: fc.subarray(["ssd", "hdd"], { minLength: 1 }) }),
            fc.record({ key: fc.constantFrom("disk", "zone"), operator: fc.constantFrom("Exists" as const, "DoesNotExist" as const) }),
          ),
          { minLength: 1, maxLength: 2 },
        ),
      ),
      maxPerNode: sometimes(fc.integer({ min: 1, max: 3 }), 3),
      acrossLabel: sometimes(fc.constant("zone")),
      pinned: sometimes(fc.oneof({ arbitrary: fc.subarray([...nodes], { minLength: 1 }), weight: 5 }, { arbitrary: fc.subarray([...nodes, "m9"], { minLength: 1 }), weight: 1 }), 5),
      colocateWith: sometimes(fc.constantFrom(...others), 4),
    })
    .map((r) => {
      const s: Record<string, unknown> = { name };
      if (r.global) s.global = true;
      else {
        if (r.replicas !== undefined) s.replicas = r.replicas;
        if (r.maxPerNode !== undefined || r.acrossLabel !== undefined) s.spread = { ...(r.maxPerNode !== undefined ? { maxPerNode: r.maxPerNode } : {}), ...(r.acrossLabel ? { acrossLabel: r.acrossLabel } : {}) };
      }
      for (const k of ["resources", "nodeSelector", "matchExpressions", "pinned", "colocateWith"] as const) if (r[k] !== undefined) s[k] = r[k];
      return s as unknown as PlacementService;
    });
const arbServices = (nodes: readonly string[]) =>
  fc.subarray(SERVICE_NAMES, { minLength: 1 }).chain((names) => fc.tuple(...names.map((n) => arbService(n, [...names.filter((x) => x !== n), ...names.filter((x) => x !== n), n, "nope"], nodes))));
const arbNoise = fc.dictionary(fc.constantFrom(...SERVICE_NAMES, "gone"), fc.dictionary(fc.constantFrom(...NODE_NAMES, "m9"), fc.integer({ min: 0, max: 3 }), { maxKeys: 4 }), { maxKeys: 5 });
/**
 * Inputs with what runs now: nothing, random counts (even ones no scheduler would choose),
 * or the placement of an earlier state of the same cluster (other replicas, other nodes up).
 */
const arbInput: fc.Arbitrary<PlacementInput> = arbNodes.chain((nodes) => arbServices(nodes.map((n) => n.name)).map((services) => ({ nodes, services }))).chain(({ nodes, services }) =>
  fc
    .oneof(
      fc.constant({}),
      arbNoise,
      fc
        .record({ flips: fc.array(fc.boolean(), { minLength: nodes.length, maxLength: nodes.length }), replicas: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: services.length, maxLength: services.length }) })
        .map(({ flips, replicas }) =>
          place({
            nodes: nodes.map((n, i) => ({ ...n, available: flips[i] ? !n.available : n.available })),
            services: services.map((s, i) => (s.global ? s : { ...s, replicas: replicas[i] })),
          }).placement,
        ),
    )
    .map((previous) => ({ nodes, services, previous })),
);

/** An independent reading of the label rules, for the properties. */
function labelsOk(s: PlacementService, labels: Readonly<Record<string, string>>): boolean {
  if (!Object.entries(s.nodeSelector ?? {}).every(([k, v]) => labels[k] === v)) return false;
  return (s.matchExpressions ?? []).every((e) => {
    const has = e.key in labels;
    if (e.operator === "In") return has && (e.values ?? []).includes(labels[e.key]);
    if (e.operator === "NotIn") return !has || !(e.values ?? []).includes(labels[e.key]);
    if (e.operator === "Exists") return has;
    return !has;
  });
}

/** Nodes a (valid) service may use given the final placement of the service it runs with. */
function allowed(input: PlacementInput, s: PlacementService, placement: Placement): string[] {
  return input.nodes
    .filter((n) => n.available && labelsOk(s, n.labels ?? {}) && (!s.pinned || s.pinned.includes(n.name)))
    .filter((n) => !s.spread?.acrossLabel || s.spread.acrossLabel in (n.labels ?? {}))
    .filter((n) => !s.colocateWith || (placement[s.colocateWith]?.[n.name] ?? 0) > 0)
    .map((n) => n.name);
}

const total = (p: Readonly<Record<string, number>> | undefined) => Object.values(p ?? {}).reduce((a, b) => a + b, 0);
const shuffle = <T>(xs: readonly T[], seed: number): T[] => {
  const out = [...xs];
  let x = seed || 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
};
const runs = { numRuns: 400 };

describe("placement properties (fast-check)", () => {
  it("is deterministic: the same input gives the same output, whatever the order of nodes and services", () => {
    fc.assert(
      fc.property(arbInput, fc.integer(), (input, seed) => {
        const a = place(input);
        const b = place({ ...input, nodes: shuffle(input.nodes, seed), services: shuffle(input.services, seed + 1) });
        assert.deepEqual(b, a);
        assert.deepEqual(renderPlacement(b), renderPlacement(a));
      }),
      runs,
    );
  });

  it("never exceeds a node's capacity, and places nothing on a node that is down", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const r = place(input);
        for (const n of input.nodes) {
          const used = { cpu: 0, memoryMb: 0, replicas: 0 };
          for (const s of input.services) {
            const c = r.placement[s.name]?.[n.name] ?? 0;
            used.cpu += c * Math.round((s.resources?.cpu ?? 0) * 1000);
            used.memoryMb += c * (s.resources?.memoryMb ?? 0);
            used.replicas += c;
          }
          if (!n.available) assert.equal(used.replicas, 0);
          if (n.capacity?.cpu !== undefined) assert.ok(used.cpu <= Math.round(n.capacity.cpu * 1000), `cpu on ${n.name}`);
          if (n.capacity?.memoryMb !== undefined) assert.ok(used.memoryMb <= n.capacity.memoryMb, `memory on ${n.name}`);
          if (n.capacity?.replicas !== undefined) assert.ok(used.replicas <= n.capacity.replicas, `replicas on ${n.name}`);
        }
      }),
      runs,
    );
  });

  it("never breaks a constraint: labels, pinning, maxPerNode, the spread label, co-location, one per node for global", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const r = place(input);
        for (const s of input.services) {
          const ok = new Set(allowed(input, s, r.placement));
          for (const [n, c] of Object.entries(r.placement[s.name] ?? {})) {
            assert.ok(c > 0);
            assert.ok(ok.has(n), `${s.name} on ${n} breaks a constraint`);
            if (s.global) assert.equal(c, 1);
            if (s.spread?.maxPerNode) assert.ok(c <= s.spread.maxPerNode);
          }
        }
      }),
      runs,
    );
  });

  it("is never silently short: a service without errors has exactly its replicas, a global one exactly one per node that qualifies", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const r = place(input);
        for (const s of input.services) {
          const e = r.services[s.name];
          const want = s.global ? allowed(input, s, r.placement).length : (s.replicas ?? 1);
          if (e.errors.length === 0) {
            assert.equal(total(r.placement[s.name]), want, `${s.name}: ${renderPlacement(r).join("\n")}`);
            if (s.global) assert.deepEqual(Object.keys(r.placement[s.name]).sort(), allowed(input, s, r.placement).sort());
          }
          assert.ok(total(r.placement[s.name]) <= want, `${s.name} has more than it wants`);
          assert.equal(r.ok, r.errors.length === 0);
        }
      }),
      runs,
    );
  });

  it("explains every node, with the counts before and after", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const r = place(input);
        if (!r.services[input.services[0].name]) return; // an input error
        for (const s of input.services) {
          const e = r.services[s.name];
          if (e.nodes.length === 0) {
            assert.ok(e.errors.length > 0);
            continue;
          }
          const prev = input.previous?.[s.name] ?? {};
          const names = [...new Set([...input.nodes.map((n) => n.name), ...Object.keys(prev).filter((n) => prev[n] > 0)])].sort();
          assert.deepEqual(e.nodes.map((n) => n.node), names);
          for (const n of e.nodes) {
            assert.equal(n.before, prev[n.node] ?? 0);
            assert.equal(n.after, r.placement[s.name][n.node] ?? 0);
            assert.ok(n.text.length > 0);
          }
        }
      }),
      runs,
    );
  });

  it("is stable: placing again from its own result changes nothing (a second preview shows no change)", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const first = place(input);
        const second = place({ ...input, previous: first.placement });
        assert.deepEqual(second.placement, first.placement);
        for (const s of Object.values(second.services)) for (const n of s.nodes) assert.equal(n.before, n.after);
      }),
      runs,
    );
  });

  it("adding a node moves no running replica", () => {
    fc.assert(
      fc.property(arbInput, arbNode("m7").map((n) => ({ ...n, available: true })), (input, extra) => {
        const first = place(input);
        const second = place({ ...input, nodes: [...input.nodes, extra], previous: first.placement });
        for (const [s, p] of Object.entries(first.placement)) {
          for (const [n, c] of Object.entries(p)) assert.ok((second.placement[s][n] ?? 0) >= c, `${s} lost a replica on ${n}`);
          const svc = input.services.find((x) => x.name === s) as PlacementService;
          if (first.ok && !svc.global) assert.deepEqual(second.placement[s], p);
        }
      }),
      runs,
    );
  });

  it("adding or removing an unrelated service moves no running replica", () => {
    fc.assert(
      fc.property(arbInput, arbService("s9", [...SERVICE_NAMES]), fc.boolean(), (input, extra, add) => {
        const referenced = new Set(input.services.map((s) => s.colocateWith));
        let before = input;
        let after: PlacementInput;
        if (add) after = { ...input, services: [...input.services, extra] };
        else {
          const gone = input.services.find((s) => !referenced.has(s.name));
          if (!gone) return;
          after = { ...input, services: input.services.filter((s) => s !== gone) };
          before = input;
        }
        const first = place(before);
        const second = place({ ...after, previous: first.placement });
        for (const s of after.services) {
          if (s === extra) continue;
          const p = first.placement[s.name] ?? {};
          for (const [n, c] of Object.entries(p)) assert.ok((second.placement[s.name]?.[n] ?? 0) >= c, `${s.name} lost a replica on ${n}`);
          if (first.ok) assert.deepEqual(second.placement[s.name], p);
        }
      }),
      runs,
    );
  });

  it("scaling up only adds, scaling down only removes", () => {
    fc.assert(
      fc.property(arbInput, fc.nat({ max: 10 }), fc.integer({ min: 0, max: 6 }), (input, pick, replicas) => {
        const candidates = input.services.filter((s) => !s.global);
        if (!candidates.length) return;
        const target = candidates[pick % candidates.length];
        const first = place(input);
        if (!first.services[target.name]) return;
        const scaled = input.services.map((s) => (s === target ? { ...s, replicas } : s));
        const second = place({ ...input, services: scaled, previous: first.placement });
        const was = first.placement[target.name];
        const now = second.placement[target.name];
        for (const n of new Set([...Object.keys(was), ...Object.keys(now)])) {
          if (replicas >= (target.replicas ?? 1)) assert.ok((now[n] ?? 0) >= (was[n] ?? 0), `scaling up removed a replica from ${n}`);
          else assert.ok((now[n] ?? 0) <= (was[n] ?? 0), `scaling down added a replica on ${n}`);
        }
        if (replicas < (target.replicas ?? 1) && first.services[target.name].errors.length === 0) assert.equal(total(now), replicas);
      }),
      runs,
    );
  });

  it("node loss: only the lost node's replicas move, to the others when possible, and the explanation says so", () => {
    fc.assert(
      fc.property(arbInput, fc.nat(), (input, pick) => {
        const up = input.nodes.filter((n) => n.available);
        if (!up.length) return;
        const lost = up[pick % up.length].name;
        const first = place(input);
        if (!first.ok) return;
        const second = place({ ...input, nodes: input.nodes.map((n) => (n.name === lost ? { ...n, available: false } : n)), previous: first.placement });
        for (const s of input.services) {
          const was = first.placement[s.name];
          const now = second.placement[s.name];
          assert.equal(now[lost] ?? 0, 0);
          for (const [n, c] of Object.entries(was)) if (n !== lost) assert.ok((now[n] ?? 0) >= c, `${s.name} lost a replica on ${n}, which is up`);
          const line = second.services[s.name].nodes.find((n) => n.node === lost);
          assert.ok(line?.text.startsWith("unavailable"));
          if ((was[lost] ?? 0) > 0 && !s.global) {
            if (second.services[s.name].errors.length === 0) {
              assert.equal(total(now), total(was));
              assert.match(line?.text ?? "", /moves? to /);
            } else assert.match(line?.text ?? "", /cannot be placed elsewhere/);
          }
        }
      }),
      runs,
    );
  });

  it("spreads a new service evenly across the label's values (no two values differ by more than one)", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const r = place({ ...input, previous: {} });
        for (const s of input.services) {
          if (!s.spread?.acrossLabel || r.services[s.name]?.errors.length !== 0) continue;
          const counts = new Map<string, number>();
          for (const n of allowed(input, s, r.placement)) {
            const v = (input.nodes.find((x) => x.name === n)?.labels ?? {})[s.spread.acrossLabel];
            counts.set(v, (counts.get(v) ?? 0) + (r.placement[s.name][n] ?? 0));
          }
          const c = [...counts.values()];
          assert.ok(Math.max(...c) - Math.min(...c) <= 1, `${s.name}: ${JSON.stringify([...counts])}`);
        }
      }),
      runs,
    );
  });
});
