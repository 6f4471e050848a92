/**
 * The scheduler: where each replica of each service runs.
 *
 * A pure, deterministic function of the nodes (their labels, capacity and
 * whether they answer), the services (replicas or global, label selectors,
 * spread, pinning, co-location, resources) and the placement that runs now.
 * It returns the new placement and, per service, an explanation of every node
 * it chose or rejected, for the preview. Nothing here touches SSH or Pulumi.
 *
 * The rules, in the order they apply:
 *
 * 1. **Keep what runs.** A replica that runs on an available node which still
 *    satisfies the service's constraints stays where it is, as long as the node
 *    has room for it (capacity is reserved for every running replica of every
 *    service before any new replica is placed, so a new service never pushes a
 *    running one out). Replicas over `maxPerNode`, or beyond `replicas` when a
 *    service scales down, are removed: from the fullest label value of
 *    `acrossLabel` first, then from the node that runs the most replicas of the
 *    service, then the most replicas overall, then the node whose name sorts last.
 * 2. **Place what is missing.** Each new replica goes to a node that satisfies
 *    every constraint and has room: within `acrossLabel`, to a value that holds
 *    the fewest replicas (strictly: if none of those has room, the service is in
 *    error); then to the node that runs the fewest replicas of the service, then
 *    the fewest replicas overall, then the node whose name sorts first.
 * 3. **Never silently short.** A service that cannot get all its replicas gets
 *    an error saying why and how to fix it; the placement returned then is the
 *    best one found, and the caller must not apply it.
 *
 * Services are placed in the order of `colocateWith` (a service after the one it
 * runs with), then by name; nodes are always taken by name. The input order of
 * nodes and services never changes the result.
 *
 * @module
 */

// ------------------------------------------------------------------ inputs

/**
 * What a node offers. Every key is optional; a resource the node does not list is unlimited.
 * `replicas` counts replicas of all services together; every other key is a
 * resource that services ask for in {@link PlacementResources} (`cpu`,
 * `memoryMb`, or any name you choose, like `gpu`).
 */
export interface PlacementCapacity {
  /** CPUs (fractions allowed: `0.5`). @default - unlimited */
  readonly cpu?: number;
  /** Memory in MiB. @default - unlimited */
  readonly memoryMb?: number;
  /** Replicas of all services together. A whole number. @default - unlimited */
  readonly replicas?: number;
  readonly [resource: string]: number | undefined;
}

/** A machine the scheduler may place replicas on. */
export interface PlacementNode {
  /** Unique among the nodes. */
  readonly name: string;
  /** Labels matched by `nodeSelector`, `matchExpressions` and `spread.acrossLabel`. @default {} */
  readonly labels?: Readonly<Record<string, string>>;
  /** What the node can hold. @default - unlimited */
  readonly capacity?: PlacementCapacity;
  /** False for a node that does not answer now (or, later, fails attestation): it gets no replica, and its replicas move. */
  readonly available: boolean;
}

/** A Kubernetes-style label requirement. */
export interface LabelRequirement {
  readonly key: string;
  /**
   * `In`: the label is set to one of `values`. `NotIn`: the label is unset or set to none of `values`.
   * `Exists`: the label is set. `DoesNotExist`: the label is unset.
   */
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  /** Required, non-empty, for `In` and `NotIn`; not allowed for `Exists` and `DoesNotExist`. */
  readonly values?: readonly string[];
}

/** How replicas spread. */
export interface PlacementSpread {
  /** At most this many replicas on one node; `1` is anti-affinity (no two replicas on one host). A whole number, at least 1. @default - no limit */
  readonly maxPerNode?: number;
  /**
   * Spread evenly across the values of this node label (`zone`): every new replica
   * goes to a value holding the fewest replicas, removals come from the fullest,
   * and a node without the label is not used. Running replicas are never moved
   * only to even out: see the note the explanation then carries.
   * @default - no spreading across labels
   */
  readonly acrossLabel?: string;
}

/** What one replica needs of a node's {@link PlacementCapacity}. */
export interface PlacementResources {
  /** @default 0 */
  readonly cpu?: number;
  /** @default 0 */
  readonly memoryMb?: number;
  readonly [resource: string]: number | undefined;
}

/** A service as the scheduler sees it. */
export interface PlacementService {
  /** Unique among the services. */
  readonly name: string;
  /** How many replicas. A whole number, 0 or more. Not with `global`. @default 1 */
  readonly replicas?: number;
  /** Exactly one replica on every available node that satisfies the constraints. @default false */
  readonly global?: boolean;
  /** What one replica needs. @default - nothing */
  readonly resources?: PlacementResources;
  /** Only nodes whose labels include every one of these. @default {} */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Only nodes that satisfy every one of these. @default [] */
  readonly matchExpressions?: readonly LabelRequirement[];
  /** Anti-affinity and spreading. Not with `global`. @default - none */
  readonly spread?: PlacementSpread;
  /** Only these nodes (by name). Non-empty. @default - any node */
  readonly pinned?: readonly string[];
  /** Only nodes that run a replica of this other service in the new placement. @default - none */
  readonly colocateWith?: string;
}

/** Replicas per node per service: `{ web: { m1: 2, m3: 1 } }`. Nodes with no replica are left out. */
export type Placement = Record<string, Record<string, number>>;

/** Everything {@link place} needs. */
export interface PlacementInput {
  readonly nodes: readonly PlacementNode[];
  readonly services: readonly PlacementService[];
  /** What runs now, in the same shape as the result. @default {} */
  readonly previous?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

// ------------------------------------------------------------------ outputs

/**
 * How a node fared for one service:
 * `placed` (it holds replicas after this plan), `eligible` (it could, but holds none),
 * `rejected` (a constraint rules it out), `unavailable` (it does not answer),
 * `gone` (a node the previous placement names but the input no longer lists).
 */
export type NodeVerdict = "placed" | "eligible" | "rejected" | "unavailable" | "gone";

/** One line of a service's explanation. */
export interface NodeExplanation {
  readonly node: string;
  /** Replicas of the service on the node now. */
  readonly before: number;
  /** Replicas of the service on the node after this plan. */
  readonly after: number;
  readonly verdict: NodeVerdict;
  /** Why, for a person: "kept 1 replica (already running)", "no, label zone=b does not match zone=a". */
  readonly text: string;
}

/** Why a service is placed where it is. */
export interface ServiceExplanation {
  readonly service: string;
  readonly global: boolean;
  /** Replicas wanted: `replicas`, or for a global service the number of nodes that qualify. */
  readonly desired: number;
  /** Replicas running now. */
  readonly previous: number;
  /** Replicas in the new placement. Less than `desired` only with errors. */
  readonly placed: number;
  /** Every node, by name, plus the nodes the previous placement names that are gone. */
  readonly nodes: readonly NodeExplanation[];
  /** Things a user should know that are not errors (an uneven spread kept to avoid moving replicas). */
  readonly notes: readonly string[];
  /** Why the service cannot be placed as asked. Non-empty means: do not apply. */
  readonly errors: readonly string[];
}

/** What {@link place} returns. */
export interface PlacementResult {
  /** The new placement, for every service given (services and nodes in name order). */
  readonly placement: Placement;
  /** Per service, by name. */
  readonly services: Readonly<Record<string, ServiceExplanation>>;
  /** Services the previous placement has that the input no longer lists: all their replicas go. */
  readonly removed: readonly { readonly service: string; readonly nodes: Readonly<Record<string, number>> }[];
  /** Every error: the input's, then each service's, in service order. */
  readonly errors: readonly string[];
  /** True when there is no error: the placement is complete and may be applied. */
  readonly ok: boolean;
}

// ------------------------------------------------------------------ helpers

const SCALE = 1000; // resources are compared in thousandths, so 0.1 + 0.2 fits in 0.3

function cmp(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function sum(m: ReadonlyMap<string, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

function isWhole(n: unknown, min: number): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= min;
}

function isAmount(n: unknown): n is number {
  return typeof n === "number" && Number.isFinite(n) && n >= 0;
}

function fmt(scaled: number): string {
  return String(scaled / SCALE);
}

/** "m2, m3" or, with repeats, "m2 (2), m3". */
function nodeList(names: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const n of [...names].sort()) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c === 1 ? n : `${n} (${c})`)).join(", ");
}

function requirementText(r: LabelRequirement): string {
  switch (r.operator) {
    case "In":
      return `${r.key} in (${(r.values ?? []).join(", ")})`;
    case "NotIn":
      return `${r.key} notin (${(r.values ?? []).join(", ")})`;
    case "Exists":
      return r.key;
    case "DoesNotExist":
      return `!${r.key}`;
  }
}

/** Why a node's labels fail a requirement, or undefined when they satisfy it. */
function requirementMiss(r: LabelRequirement, labels: Readonly<Record<string, string>>): string | undefined {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = labels[r.key];
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      if (!has) return `has no label ${r.key} (wants ${requirementText(r)})`;
      return values.includes(v) ? undefined : `label ${r.key}=${v} is not in (${values.join(", ")})`;
    case "NotIn":
      return has && values.includes(v) ? `label ${r.key}=${v} is excluded (wants ${requirementText(r)})` : undefined;
    case "Exists":
      return has ? undefined : `has no label ${r.key}`;
    case "DoesNotExist":
      return has ? `has label ${r.key}=${v} (wants no ${r.key} label)` : undefined;
  }
}

// ------------------------------------------------------------------ capacity

type Amounts = Map<string, number>; // resource -> thousandths; "replicas" counts replicas (whole, not scaled)

class Ledger {
  private readonly used = new Map<string, Amounts>();
  constructor(private readonly limits: ReadonlyMap<string, Amounts>) {}

  /** Why one more replica needing `req` does not fit on `node`, or "" when it does. */
  shortage(node: string, req: Amounts): string {
    const limit = this.limits.get(node);
    if (!limit) return "";
    const used = this.used.get(node);
    const out: string[] = [];
    for (const [k, cap] of [...limit].sort((a, b) => cmp(a[0], b[0]))) {
      const u = used?.get(k) ?? 0;
      const need = req.get(k) ?? 0;
      if (need === 0 || u + need <= cap) continue;
      out.push(k === "replicas" ? `${u} of ${cap} replicas already` : `${k} ${fmt(u)} of ${fmt(cap)} used, needs ${fmt(need)}`);
    }
    return out.join(", ");
  }

  fits(node: string, req: Amounts): boolean {
    return this.shortage(node, req) === "";
  }

  add(node: string, req: Amounts, times: number): void {
    let used = this.used.get(node);
    if (!used) this.used.set(node, (used = new Map()));
    for (const [k, v] of req) used.set(k, (used.get(k) ?? 0) + v * times);
  }

  replicas(node: string): number {
    return this.used.get(node)?.get("replicas") ?? 0;
  }
}

// ------------------------------------------------------------------ working state

type LossKind = "gone" | "unavailable" | "rejected" | "maxPerNode" | "capacity" | "extra";

interface Loss {
  readonly node: string;
  count: number;
  readonly kind: LossKind;
  /** "label zone=b does not match zone=a", "cpu 2 of 2 used, needs 1". */
  readonly reason: string;
}

interface Work {
  readonly svc: PlacementService;
  readonly name: string;
  readonly global: boolean;
  readonly replicas: number;
  readonly maxPerNode: number;
  readonly acrossLabel?: string;
  readonly req: Amounts;
  readonly prev: Map<string, number>;
  readonly counts: Map<string, number>;
  readonly losses: Loss[];
  readonly trimmed: Map<string, number>;
  readonly adds: string[];
  readonly errors: string[];
  readonly notes: string[];
  target?: Work;
  /** Replicas kept by rule 1. */
  kept: number;
  valid: boolean;
  /** The service could not be spread evenly: why a node with room got nothing. */
  spreadBlocked?: boolean;
}

// ------------------------------------------------------------------ validation

function nodeErrors(nodes: readonly PlacementNode[]): string[] {
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const n of nodes) {
    if (typeof n.name !== "string" || n.name === "") {
      errors.push(`every node needs a name, but ${JSON.stringify(n.name)} was provided`);
      continue;
    }
    if (seen.has(n.name)) errors.push(`node ${n.name} is listed twice; node names must be unique`);
    seen.add(n.name);
    for (const [k, v] of Object.entries(n.capacity ?? {})) {
      if (v === undefined) continue;
      if (k === "replicas" ? !isWhole(v, 0) : !isAmount(v)) {
        errors.push(`node ${n.name}: \`capacity.${k}\` must be ${k === "replicas" ? "a whole number" : "a number"} of at least 0, but ${JSON.stringify(v)} was provided`);
      }
    }
  }
  return errors;
}

function serviceErrors(s: PlacementService): string[] {
  const errors: string[] = [];
  const e = (m: string) => errors.push(`service ${s.name}: ${m}`);
  if (s.global && s.replicas !== undefined) e("`replicas` and `global` exclude each other: a global service runs one replica on every node that qualifies; remove one of them");
  if (s.replicas !== undefined && !isWhole(s.replicas, 0)) e(`\`replicas\` must be a whole number of at least 0, but ${JSON.stringify(s.replicas)} was provided`);
  if (s.global && s.spread) e("`spread` does not apply to a global service (it runs one replica per node); remove it");
  const m = s.spread?.maxPerNode;
  if (m !== undefined && !isWhole(m, 1)) e(`\`spread.maxPerNode\` must be a whole number of at least 1, but ${JSON.stringify(m)} was provided`);
  const a = s.spread?.acrossLabel;
  if (a !== undefined && (typeof a !== "string" || a === "")) e(`\`spread.acrossLabel\` must be a label name like "zone", but ${JSON.stringify(a)} was provided`);
  for (const [k, v] of Object.entries(s.resources ?? {})) {
    if (v === undefined) continue;
    if (k === "replicas") e("`resources.replicas` is not a resource: limit replicas per node with the node's `capacity.replicas` or `spread.maxPerNode`");
    else if (!isAmount(v)) e(`\`resources.${k}\` must be a number of at least 0, but ${JSON.stringify(v)} was provided`);
  }
  if (s.pinned !== undefined && s.pinned.length === 0) e("`pinned` is empty, so no node may run it; name at least one node, or remove `pinned`");
  for (const r of s.matchExpressions ?? []) {
    const ops = ["In", "NotIn", "Exists", "DoesNotExist"];
    if (!ops.includes(r.operator)) e(`matchExpressions: operator ${JSON.stringify(r.operator)} for ${r.key} is not one of ${ops.join(", ")}`);
    else if ((r.operator === "In" || r.operator === "NotIn") && !(r.values && r.values.length)) e(`matchExpressions: ${r.key} ${r.operator} needs at least one value`);
    else if ((r.operator === "Exists" || r.operator === "DoesNotExist") && r.values && r.values.length) e(`matchExpressions: ${r.key} ${r.operator} takes no values, but ${JSON.stringify(r.values)} were provided`);
  }
  return errors;
}

function amounts(from: Readonly<Record<string, number | undefined>> | undefined, withReplica: boolean): Amounts {
  const m: Amounts = new Map();
  for (const [k, v] of Object.entries(from ?? {})) {
    if (v === undefined) continue;
    m.set(k, k === "replicas" ? v : Math.round(v * SCALE));
  }
  if (withReplica) m.set("replicas", 1);
  return m;
}

// ------------------------------------------------------------------ the scheduler

/**
 * Places every service's replicas on the nodes.
 *
 * Pure and deterministic: the same input gives the same result whatever the
 * order of `nodes` and `services`. Replicas that run on an available node which
 * still qualifies stay; adding a node, or adding or removing an unrelated service,
 * moves no running replica; scaling up only adds, scaling down only removes.
 * Capacity is never exceeded and no constraint is ever broken: when the ask cannot
 * be met the result carries errors (and `ok: false`) rather than fewer replicas
 * in silence.
 *
 * @example
 * const r = place({
 *   nodes: [
 *     { name: "m1", labels: { zone: "a" }, available: false },
 *     { name: "m2", labels: { zone: "a" }, available: true },
 *     { name: "m3", labels: { zone: "a" }, available: true },
 *   ],
 *   services: [{ name: "web", replicas: 2, nodeSelector: { zone: "a" }, spread: { maxPerNode: 1 } }],
 *   previous: { web: { m1: 1, m2: 1 } },
 * });
 * r.placement; // { web: { m2: 1, m3: 1 } }
 * renderPlacement(r);
 * // service web: 2 of 2 replicas on m2, m3 (was m1, m2)
 * //   m1: unavailable, its 1 replica moves to m3
 * //   m2: kept 1 replica (already running)
 * //   m3: 1 new replica (moved from m1)
 */
export function place(input: PlacementInput): PlacementResult {
  const nodes = [...input.nodes].sort((a, b) => cmp(a.name, b.name));
  const inputErrors = nodeErrors(nodes);
  const serviceNames = new Set<string>();
  for (const s of input.services) {
    if (typeof s.name !== "string" || s.name === "") inputErrors.push(`every service needs a name, but ${JSON.stringify(s.name)} was provided`);
    else if (serviceNames.has(s.name)) inputErrors.push(`service ${s.name} is listed twice; service names must be unique`);
    serviceNames.add(s.name);
  }
  const previous = input.previous ?? {};
  for (const s of Object.keys(previous).sort()) {
    for (const [n, c] of Object.entries(previous[s]).sort((a, b) => cmp(a[0], b[0]))) {
      if (!isWhole(c, 0)) inputErrors.push(`the previous placement of ${s} on ${n} must be a whole number of replicas, but ${JSON.stringify(c)} was provided`);
    }
  }
  if (inputErrors.length) return { placement: {}, services: {}, removed: [], errors: inputErrors, ok: false };

  const byName = new Map(nodes.map((n) => [n.name, n]));
  const labelsOf = (n: string): Readonly<Record<string, string>> => byName.get(n)?.labels ?? {};
  const ledger = new Ledger(new Map(nodes.map((n) => [n.name, amounts(n.capacity, false)])));
  const services = [...input.services].sort((a, b) => cmp(a.name, b.name));

  // Load per node in the previous placement (services still listed): "most loaded" for scale-down.
  const prevLoad = new Map<string, number>();
  for (const s of services) for (const [n, c] of Object.entries(previous[s.name] ?? {})) prevLoad.set(n, (prevLoad.get(n) ?? 0) + c);

  const works = new Map<string, Work>();
  for (const s of services) {
    const prev = new Map<string, number>();
    for (const [n, c] of Object.entries(previous[s.name] ?? {}).sort((a, b) => cmp(a[0], b[0]))) if (c > 0) prev.set(n, c);
    const errors = serviceErrors(s);
    works.set(s.name, {
      svc: s,
      name: s.name,
      global: s.global === true,
      replicas: s.replicas ?? 1,
      maxPerNode: s.global ? 1 : (s.spread?.maxPerNode ?? Infinity),
      acrossLabel: s.global ? undefined : s.spread?.acrossLabel,
      req: amounts(s.resources, true),
      prev,
      counts: new Map(),
      losses: [],
      trimmed: new Map(),
      adds: [],
      errors,
      notes: [],
      kept: 0,
      valid: errors.length === 0,
    });
  }
  for (const w of works.values()) {
    for (const p of w.svc.pinned ?? []) {
      if (!byName.has(p)) w.errors.push(`service ${w.name} is pinned to ${p}, which is not a node. Either add node ${p}, or remove it from \`pinned\``);
    }
  }

  const order = colocationOrder(works);

  // Static constraints: labels, pinning, the spread label. (Availability and co-location are checked where used.)
  const staticMisses = (w: Work, node: string): string[] => {
    const labels = labelsOf(node);
    const out: string[] = [];
    for (const [k, v] of Object.entries(w.svc.nodeSelector ?? {}).sort((a, b) => cmp(a[0], b[0]))) {
      if (!Object.prototype.hasOwnProperty.call(labels, k)) out.push(`has no label ${k} (wants ${k}=${v})`);
      else if (labels[k] !== v) out.push(`label ${k}=${labels[k]} does not match ${k}=${v}`);
    }
    for (const r of w.svc.matchExpressions ?? []) {
      const miss = requirementMiss(r, labels);
      if (miss) out.push(miss);
    }
    if (w.svc.pinned && !w.svc.pinned.includes(node)) out.push(`not pinned (pinned to ${[...new Set(w.svc.pinned)].sort().join(", ")})`);
    if (w.acrossLabel && !Object.prototype.hasOwnProperty.call(labels, w.acrossLabel)) out.push(`has no label ${w.acrossLabel} to spread across`);
    return out;
  };
  const colocationMiss = (w: Work, node: string): string | undefined => {
    const t = w.target;
    if (!t || (t.counts.get(node) ?? 0) > 0) return undefined;
    return (t.prev.get(node) ?? 0) > 0 ? `${t.name} no longer runs here` : `does not run ${t.name}`;
  };
  const misses = (w: Work, node: string): string[] => {
    const c = colocationMiss(w, node);
    return c ? [...staticMisses(w, node), c] : staticMisses(w, node);
  };
  const qualifies = (w: Work, node: string): boolean => byName.get(node)?.available === true && misses(w, node).length === 0;
  const domainOf = (w: Work, node: string): string => labelsOf(node)[w.acrossLabel as string];
  const domainCounts = (w: Work): Map<string, number> => {
    const d = new Map<string, number>();
    for (const n of nodes) if (qualifies(w, n.name)) d.set(domainOf(w, n.name), (d.get(domainOf(w, n.name)) ?? 0) + (w.counts.get(n.name) ?? 0));
    return new Map([...d].sort((a, b) => cmp(a[0], b[0])));
  };

  // Rule 1: keep what runs (colocation order, so a service sees what its partner kept).
  for (const w of order) {
    for (const [node, p] of w.prev) {
      const n = byName.get(node);
      if (!n) {
        w.losses.push({ node, count: p, kind: "gone", reason: "no longer a node" });
        continue;
      }
      if (!n.available) {
        w.losses.push({ node, count: p, kind: "unavailable", reason: "unavailable" });
        continue;
      }
      const why = misses(w, node);
      if (why.length) {
        w.losses.push({ node, count: p, kind: "rejected", reason: why.join("; ") });
        continue;
      }
      let k = Math.min(p, w.maxPerNode);
      if (p > k) w.losses.push({ node, count: p - k, kind: w.global ? "extra" : "maxPerNode", reason: w.global ? "one per node" : `over maxPerNode ${w.maxPerNode}` });
      let fit = 0;
      while (fit < k && ledger.fits(node, w.req)) {
        ledger.add(node, w.req, 1);
        fit++;
      }
      if (fit < k) w.losses.push({ node, count: k - fit, kind: "capacity", reason: ledger.shortage(node, w.req) });
      k = fit;
      if (k > 0) w.counts.set(node, k);
    }
    if (!w.global) {
      // Replicas on a node now: the other services' running ones, and this one's as trimmed so far.
      const loadNow = (w: Work, n: string) => (prevLoad.get(n) ?? 0) - (w.prev.get(n) ?? 0) + (w.counts.get(n) ?? 0);
      let total = sum(w.counts);
      while (total > w.replicas) {
        const doms = w.acrossLabel ? domainCounts(w) : undefined;
        const victim = [...w.counts.keys()]
          .filter((n) => (w.counts.get(n) ?? 0) > 0)
          .sort(
            (a, b) =>
              (doms ? cmp(doms.get(domainOf(w, b)) ?? 0, doms.get(domainOf(w, a)) ?? 0) : 0) ||
              cmp(w.counts.get(b) ?? 0, w.counts.get(a) ?? 0) ||
              cmp(loadNow(w, b), loadNow(w, a)) ||
              cmp(b, a),
          )[0];
        const left = (w.counts.get(victim) ?? 0) - 1;
        if (left > 0) w.counts.set(victim, left);
        else w.counts.delete(victim);
        w.trimmed.set(victim, (w.trimmed.get(victim) ?? 0) + 1);
        ledger.add(victim, w.req, -1);
        total--;
      }
    }
    w.kept = sum(w.counts);
  }

  // Rule 2: place what is missing.
  for (const w of order) {
    if (w.global) {
      const full: string[] = [];
      for (const n of nodes) {
        if (!qualifies(w, n.name) || w.counts.has(n.name)) continue;
        const short = ledger.shortage(n.name, w.req);
        if (short) {
          full.push(`${n.name} (${short})`);
          continue;
        }
        ledger.add(n.name, w.req, 1);
        w.counts.set(n.name, 1);
        w.adds.push(n.name);
      }
      if (full.length) {
        w.errors.push(
          `service ${w.name} is global but ${full.length === 1 ? "a node that qualifies has" : "nodes that qualify have"} no room for it: ${full.join(", ")}. Either lower its \`resources\`, or free or add capacity on ${full.length === 1 ? "that node" : "those nodes"}`,
        );
      }
      continue;
    }
    while (sum(w.counts) < w.replicas) {
      const fitting = nodes.map((n) => n.name).filter((n) => qualifies(w, n) && (w.counts.get(n) ?? 0) < w.maxPerNode && ledger.fits(n, w.req));
      let candidates = fitting;
      if (w.acrossLabel) {
        const doms = domainCounts(w);
        const least = Math.min(...doms.values());
        candidates = fitting.filter((n) => doms.get(domainOf(w, n)) === least);
      }
      if (candidates.length === 0) {
        w.errors.push(shortfallError(w, nodes, qualifies, staticMisses, ledger, fitting, domainOf, domainCounts));
        break;
      }
      const best = candidates.sort(
        (a, b) => cmp(w.counts.get(a) ?? 0, w.counts.get(b) ?? 0) || cmp(ledger.replicas(a), ledger.replicas(b)) || cmp(a, b),
      )[0];
      ledger.add(best, w.req, 1);
      w.counts.set(best, (w.counts.get(best) ?? 0) + 1);
      w.adds.push(best);
    }
    if (w.acrossLabel) {
      const doms = domainCounts(w);
      const vals = [...doms.values()];
      if (vals.length && Math.max(...vals) - Math.min(...vals) > 1) {
        w.notes.push(
          `the spread across ${w.acrossLabel} is uneven (${[...doms].map(([v, c]) => `${w.acrossLabel}=${v}: ${c}`).join(", ")}): running replicas are not moved only to even it out; new replicas go to the emptiest values first`,
        );
      }
    }
  }

  // The result, in name order.
  const placement: Placement = {};
  const explained: Record<string, ServiceExplanation> = {};
  const errors: string[] = [];
  for (const s of services) {
    const w = works.get(s.name) as Work;
    const counts: Record<string, number> = {};
    for (const [n, c] of [...w.counts].sort((a, b) => cmp(a[0], b[0]))) if (c > 0) counts[n] = c;
    placement[s.name] = counts;
    explained[s.name] = explain(w, nodes, qualifies, misses, ledger, domainCounts);
    errors.push(...w.errors);
  }
  const removed = Object.keys(previous)
    .filter((s) => !serviceNames.has(s))
    .sort()
    .map((service) => {
      const ns: Record<string, number> = {};
      for (const [n, c] of Object.entries(previous[service]).sort((a, b) => cmp(a[0], b[0]))) if (c > 0) ns[n] = c;
      return { service, nodes: ns };
    })
    .filter((r) => Object.keys(r.nodes).length > 0);
  return { placement, services: explained, removed, errors, ok: errors.length === 0 };
}

/**
 * Services in the order they are placed: a service after the one it runs with,
 * then by name. Marks services in a `colocateWith` cycle, or co-located with one
 * that is missing or cannot be placed, as invalid with an error.
 */
function colocationOrder(works: Map<string, Work>): Work[] {
  const depth = new Map<string, number>();
  const names = [...works.keys()].sort();
  for (const name of names) {
    const w = works.get(name) as Work;
    const t = w.svc.colocateWith;
    if (t === undefined) continue;
    const target = works.get(t);
    if (!target) {
      w.errors.push(`service ${name} is to run with service ${t}, which is not a service. Either add service ${t}, or remove \`colocateWith\``);
      w.valid = false;
    } else w.target = target;
  }
  // colocateWith points at one service at most, so a cycle is found by walking the chain.
  const inCycle = new Set<string>();
  for (const name of names) {
    const path: string[] = [];
    let cur: Work | undefined = works.get(name);
    while (cur && !path.includes(cur.name) && !inCycle.has(cur.name)) {
      path.push(cur.name);
      cur = cur.target;
    }
    if (cur && path.includes(cur.name)) {
      const cycle = path.slice(path.indexOf(cur.name));
      // Rotate so the message starts at the first name in order: one message per cycle, whoever found it.
      const start = cycle.indexOf([...cycle].sort()[0]);
      const ring = [...cycle.slice(start), ...cycle.slice(0, start)];
      const msg =
        ring.length === 1
          ? `service ${ring[0]} is to run with itself (\`colocateWith: "${ring[0]}"\`). Remove \`colocateWith\``
          : `services ${ring.join(", ")} are to run with each other in a cycle (${[...ring, ring[0]].join(" -> ")}), so none can be placed first. Remove \`colocateWith\` from one of them`;
      for (const c of ring) {
        const cw = works.get(c) as Work;
        inCycle.add(c);
        cw.valid = false;
        cw.errors.push(msg);
      }
    }
  }
  const depthOf = (w: Work): number => {
    const known = depth.get(w.name);
    if (known !== undefined) return known;
    if (inCycle.has(w.name) || !w.target) {
      depth.set(w.name, 0);
      return 0;
    }
    const d = depthOf(w.target) + 1;
    depth.set(w.name, d);
    if (!w.target.valid && w.valid) {
      w.valid = false;
      w.errors.push(`service ${w.name} is to run with service ${w.target.name}, which cannot be placed (see its errors)`);
    }
    return d;
  };
  for (const name of names) depthOf(works.get(name) as Work);
  return names
    .map((n) => works.get(n) as Work)
    .filter((w) => w.valid)
    .sort((a, b) => cmp(depth.get(a.name) ?? 0, depth.get(b.name) ?? 0) || cmp(a.name, b.name));
}

/** "match zone=a and run db", or for one node "matches zone=a and runs db"; undefined without constraints. */
function constraintPhrase(w: Work, one: boolean): string | undefined {
  const s = w.svc;
  const labels = [
    ...Object.entries(s.nodeSelector ?? {})
      .sort((a, b) => cmp(a[0], b[0]))
      .map(([k, v]) => `${k}=${v}`),
    ...(s.matchExpressions ?? []).map(requirementText),
  ];
  const parts: string[] = [];
  if (labels.length) parts.push(`${one ? "matches" : "match"} ${labels.join(", ")}`);
  if (s.pinned) parts.push(`${one ? "is" : "are"} pinned`);
  if (w.target) parts.push(`${one ? "runs" : "run"} ${w.target.name}`);
  if (w.acrossLabel) parts.push(`${one ? "has" : "have"} label ${w.acrossLabel}`);
  return parts.length ? parts.join(" and ") : undefined;
}

/** Why a replicated service got fewer replicas than it wants, and how to fix it. */
function shortfallError(
  w: Work,
  nodes: readonly PlacementNode[],
  qualifies: (w: Work, n: string) => boolean,
  staticMisses: (w: Work, n: string) => string[],
  ledger: Ledger,
  fitting: readonly string[],
  domainOf: (w: Work, n: string) => string,
  domainCounts: (w: Work) => Map<string, number>,
): string {
  const placed = sum(w.counts);
  const wants = `service ${w.name} wants ${plural(w.replicas, "replica")}`;
  const qualified = nodes.map((n) => n.name).filter((n) => qualifies(w, n));
  const down = nodes.filter((n) => !n.available && staticMisses(w, n.name).length === 0).map((n) => n.name);
  const downNote = down.length ? ` (${down.join(", ")} ${down.length === 1 ? "also qualifies but is" : "also qualify but are"} unavailable)` : "";
  const phrase = constraintPhrase(w, false);
  if (qualified.length === 0) {
    return phrase
      ? `${wants} but no available node ${constraintPhrase(w, true)}${downNote}. Either label or bring up a node that ${constraintPhrase(w, true)}, or change the service's constraints`
      : `${wants} but no node is available${downNote}. Bring a node up, or add one`;
  }
  if (qualified.length * w.maxPerNode < w.replicas) {
    const one = qualified.length === 1;
    const only = `only ${plural(qualified.length, "node")} ${constraintPhrase(w, one) ?? (one ? "is available" : "are available")}`;
    return `${wants} with maxPerNode ${w.maxPerNode} but ${only}: ${qualified.join(", ")}${downNote}. Either lower \`replicas\` to ${qualified.length * w.maxPerNode}, or raise \`spread.maxPerNode\`, or add nodes that ${phrase ?? "are available"}`;
  }
  const why = (n: string): string => ((w.counts.get(n) ?? 0) >= w.maxPerNode ? `at maxPerNode ${w.maxPerNode}` : ledger.shortage(n, w.req));
  if (w.acrossLabel && fitting.length > 0) {
    const doms = domainCounts(w);
    const least = Math.min(...doms.values());
    const starved = [...doms].filter(([, c]) => c === least).map(([v]) => v);
    const blocked = qualified.filter((n) => starved.includes(domainOf(w, n)));
    w.spreadBlocked = true;
    return (
      `service ${w.name} cannot spread ${plural(w.replicas, "replica")} evenly across ${w.acrossLabel}: ` +
      `${starved.map((v) => `${w.acrossLabel}=${v}`).join(", ")} ${starved.length === 1 ? "has" : "have"} no room for another (${blocked.map((n) => `${n}: ${why(n)}`).join("; ")}); ` +
      `${placed} placed (${[...doms].map(([v, c]) => `${w.acrossLabel}=${v}: ${c}`).join(", ")}). ` +
      `Either make room on a node with ${starved.map((v) => `${w.acrossLabel}=${v}`).join(" or ")}, or lower \`replicas\` to ${placed}, or remove \`spread.acrossLabel\``
    );
  }
  return (
    `${wants} but only ${placed} fit on the nodes that ${phrase ?? "are available"}: ${qualified.map((n) => `${n} (${why(n)}, ${w.counts.get(n) ?? 0} placed)`).join(", ")}${downNote}. ` +
    `Either lower \`replicas\` or \`resources\`, or add capacity or nodes`
  );
}

/** The explanation of one service, node by node. */
function explain(
  w: Work,
  nodes: readonly PlacementNode[],
  qualifies: (w: Work, n: string) => boolean,
  misses: (w: Work, n: string) => string[],
  ledger: Ledger,
  domainCounts: (w: Work) => Map<string, number>,
): ServiceExplanation {
  const previous = sum(w.prev);
  const placed = sum(w.counts);
  const desired = w.global ? nodes.filter((n) => qualifies(w, n.name)).length : w.replicas;
  const base = { service: w.name, global: w.global, desired, previous, placed, notes: w.notes, errors: w.errors };
  if (!w.valid) return { ...base, desired: w.global ? 0 : w.replicas, placed: 0, nodes: [] };

  // A node that lost replicas and got some back (possible only for a co-located service whose
  // partner arrives on it) simply kept them.
  const losses = w.losses.map((l) => ({ ...l }));
  const adds = [...w.adds];
  for (const l of losses) {
    while (l.count > 0 && adds.includes(l.node)) {
      adds.splice(adds.indexOf(l.node), 1);
      l.count--;
    }
  }
  const moving = w.global ? [] : losses.filter((l) => l.count > 0);

  // Which new replica replaces which lost one: in node order, the first additions replace.
  const replaceable = w.global ? 0 : Math.min(moving.reduce((s, l) => s + l.count, 0), Math.max(0, w.replicas - w.kept));
  const origin: string[] = []; // per addition: the node it replaces, or "" for a scale-up
  const fate = new Map<Loss, { to: string[]; dropped: number; failed: number }>();
  let budget = replaceable;
  let next = 0;
  for (const l of moving) {
    const f = { to: [] as string[], dropped: 0, failed: 0 };
    for (let i = 0; i < l.count; i++) {
      if (budget === 0) f.dropped++;
      else {
        budget--;
        if (next < adds.length) {
          f.to.push(adds[next]);
          origin[next++] = l.node;
        } else f.failed++;
      }
    }
    fate.set(l, f);
  }
  for (let i = next; i < adds.length; i++) origin[i] = "";
  const scale = `scaling ${previous > w.replicas ? "down" : "up"} ${previous} -> ${w.replicas}`;

  /** What happens to lost replicas, as a predicate for `subject`: "moves to m3", ": 1 moves to m3, 1 is not replaced (...)". */
  const fateText = (subject: string, l: Loss): string => {
    const f = fate.get(l);
    if (!f) return `${subject} ${l.count === 1 ? "is" : "are"} removed (global: one per node that qualifies)`;
    const parts: string[] = [];
    const all = (k: number) => k === l.count;
    if (f.to.length) parts.push(`${all(f.to.length) ? "" : `${f.to.length} `}${f.to.length === 1 ? "moves" : "move"} to ${nodeList(f.to)}`);
    if (f.dropped) parts.push(`${all(f.dropped) ? "" : `${f.dropped} `}${f.dropped === 1 ? "is" : "are"} not replaced (${scale})`);
    if (f.failed) parts.push(`${all(f.failed) ? "" : `${f.failed} `}cannot be placed elsewhere (see the errors)`);
    return parts.length === 1 ? `${subject} ${parts[0]}` : `${subject}: ${parts.join(", ")}`;
  };
  const its = (l: Loss) => `its ${plural(l.count, "replica")}`;

  const addText = (node: string): string | undefined => {
    const mine = adds.map((n, i) => (n === node ? origin[i] : undefined)).filter((o): o is string => o !== undefined);
    if (!mine.length) return undefined;
    const from = mine.filter((o) => o !== "");
    const up = mine.length - from.length;
    const why: string[] = [];
    if (w.global) why.push("global: one per node that qualifies");
    else {
      if (from.length) why.push(`${from.length === mine.length ? "" : `${from.length} `}moved from ${nodeList(from)}`);
      if (up) why.push(`${up === mine.length ? "" : `${up} `}${w.kept === 0 && moving.length === 0 && previous === 0 ? "new service" : scale}`);
    }
    return `${plural(mine.length, "new replica")} (${why.join("; ")})`;
  };

  const universe = [...new Set([...nodes.map((n) => n.name), ...w.prev.keys()])].sort();
  const byNode = new Map(nodes.map((n) => [n.name, n]));
  const out: NodeExplanation[] = universe.map((node) => {
    const before = w.prev.get(node) ?? 0;
    const after = w.counts.get(node) ?? 0;
    const here = losses.filter((l) => l.node === node && l.count > 0);
    const n = byNode.get(node);
    if (!n) return { node, before, after, verdict: "gone", text: `no longer a node, ${here.map((l) => fateText(its(l), l)).join("; ")}` };
    if (!n.available) return { node, before, after, verdict: "unavailable", text: here.length ? `unavailable, ${here.map((l) => fateText(its(l), l)).join("; ")}` : "unavailable" };
    if (after === 0 && !qualifies(w, node)) {
      const reason = here.find((l) => l.kind === "rejected")?.reason ?? misses(w, node).join("; ");
      return { node, before, after, verdict: "rejected", text: `no, ${reason}${here.length ? `; ${here.map((l) => fateText(its(l), l)).join("; ")}` : ""}` };
    }
    const parts: string[] = [];
    const kept = after - adds.filter((a) => a === node).length;
    if (kept > 0) parts.push(`kept ${plural(kept, "replica")} (already running)`);
    const added = addText(node);
    if (added) parts.push(added);
    for (const l of here) {
      if (l.kind === "extra") parts.push(`${plural(l.count, "extra replica")} removed (global: one per node)`);
      else if (l.kind === "maxPerNode") parts.push(fateText(`${plural(l.count, "replica")} over maxPerNode ${w.maxPerNode}`, l));
      else if (l.kind === "capacity") parts.push(fateText(`${plural(l.count, "replica")} without room (${l.reason})`, l));
      else parts.push(`${l.reason}: ${fateText(its(l), l)}`);
    }
    const trimmed = w.trimmed.get(node) ?? 0;
    if (trimmed) parts.push(`${plural(trimmed, "replica")} removed (${scale}${w.acrossLabel ? `; from the fullest ${w.acrossLabel} first` : ""})`);
    if (parts.length === 0) {
      const short = ledger.shortage(node, w.req);
      if (short) parts.push(`eligible, no room: ${short}`);
      else if (w.spreadBlocked) {
        const doms = domainCounts(w);
        parts.push(`eligible, not chosen: ${w.acrossLabel}=${(n.labels ?? {})[w.acrossLabel as string]} already holds its share (${[...doms].map(([v, c]) => `${v}: ${c}`).join(", ")})`);
      } else parts.push(`eligible, not needed (${placed} of ${plural(desired, "replica")} placed)`);
    }
    return { node, before, after, verdict: after > 0 ? "placed" : "eligible", text: parts.join(", ") };
  });
  return { ...base, nodes: out };
}

// ------------------------------------------------------------------ rendering

/** Options for {@link renderPlacement}. */
export interface RenderOptions {
  /** Only the services and nodes whose replicas change, plus every error and note. @default false */
  readonly changesOnly?: boolean;
  /** Only these services. @default - all */
  readonly services?: readonly string[];
}

function onNodes(counts: ReadonlyMap<string, number> | Readonly<Record<string, number>>): string {
  const entries = counts instanceof Map ? [...counts] : Object.entries(counts);
  const names: string[] = [];
  for (const [n, c] of entries.sort((a, b) => cmp(a[0], b[0]))) for (let i = 0; i < c; i++) names.push(n);
  return names.length ? nodeList(names) : "no node";
}

/**
 * The explanation as plain text lines, for a Pulumi preview or diff message:
 * one header per service, one indented line per node, then notes and errors.
 *
 * @example
 * // service web: 2 of 2 replicas on m2, m3 (was m1, m2)
 * //   m1: unavailable, its 1 replica moves to m3
 * //   m2: kept 1 replica (already running)
 * //   m3: 1 new replica (moved from m1)
 */
export function renderPlacement(result: PlacementResult, options: RenderOptions = {}): string[] {
  const lines: string[] = [];
  const wanted = options.services ? new Set(options.services) : undefined;
  const serviceErrors = new Set(Object.values(result.services).flatMap((s) => s.errors));
  for (const e of result.errors) if (!serviceErrors.has(e)) lines.push(`error: ${e}`);
  for (const name of Object.keys(result.services).sort()) {
    if (wanted && !wanted.has(name)) continue;
    const s = result.services[name];
    const changed = s.nodes.filter((n) => n.before !== n.after);
    if (options.changesOnly && changed.length === 0 && !s.errors.length && !s.notes.length) continue;
    const now = result.placement[name] ?? {};
    const before: Record<string, number> = {};
    for (const n of s.nodes) if (n.before) before[n.node] = n.before;
    const was = onNodes(before);
    const head = s.global ? `service ${name}: global, ${plural(s.placed, "replica")} on ${onNodes(now)}` : `service ${name}: ${s.placed} of ${plural(s.desired, "replica")} on ${onNodes(now)}`;
    lines.push(changed.length ? `${head} (was ${was === "no node" ? "none" : was})` : head);
    for (const n of options.changesOnly ? changed : s.nodes) lines.push(`  ${n.node}: ${n.text}`);
    for (const note of s.notes) lines.push(`  note: ${note}`);
    for (const e of s.errors) lines.push(`  error: ${e}`);
  }
  for (const r of result.removed) {
    if (wanted && !wanted.has(r.service)) continue;
    const total = Object.values(r.nodes).reduce((a, b) => a + b, 0);
    lines.push(`service ${r.service}: removed, its ${plural(total, "replica")} on ${onNodes(r.nodes)} stop`);
  }
  return lines;
}
