import { writeFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { Construct, type IConstruct } from "constructs";
import * as yaml from "js-yaml";
import { ValidationError } from "./errors";
import { traceEvent } from "./trace";
import { DroveResource, isResourceConstruct, isSecretInput, type IResourceConstruct, type ResourceSpec } from "./resource";

export interface AppProps {
  /**
   * Where `synth()` writes the desired state as YAML instead of deploying;
   * `drove synth` sets it through DROVE_SYNTH_OUT ("-" for stdout).
   * @default process.env.DROVE_SYNTH_OUT
   */
  readonly synthOut?: string;
}

const APP = Symbol.for("drove.app");

/**
 * The root of a drove program. Build the tree, then call `synth()`: it runs
 * every validation (before any SSH), then registers one Pulumi resource per
 * machine-side construct, or writes the desired state as YAML.
 */
export class App extends Construct {
  static isApp(x: unknown): x is App {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[APP] === true;
  }

  readonly synthOut: string | undefined;
  /** Under `synthOut`: settles when the YAML has been written. */
  written: Promise<void> | undefined;
  private readonly resources = new Map<IConstruct, pulumi.CustomResource>();
  private synthesized = false;

  constructor(props: AppProps = {}) {
    super(undefined as unknown as Construct, "");
    Object.defineProperty(this, APP, { value: true });
    this.synthOut = props.synthOut ?? process.env.DROVE_SYNTH_OUT;
  }

  /** Every validation message in the tree, each with its construct path. */
  validate(): string[] {
    const errors: string[] = [];
    for (const c of this.node.findAll()) {
      for (const msg of c.node.validate()) errors.push(`${c.node.path || "(app)"}: ${msg}`);
    }
    if (!errors.length) errors.push(...dependencyCycles(this.node.findAll().filter(isResourceConstruct)));
    return errors;
  }

  /**
   * Validates the tree, then deploys it (inside `pulumi up`/`preview`) or writes
   * it as YAML (under `drove synth`). Returns the Pulumi resources by path.
   */
  synth(): ReadonlyMap<string, pulumi.CustomResource> {
    if (this.synthesized) throw new ValidationError(["synth() was called twice on one App; call it once, after building the tree"]);
    this.synthesized = true;
    traceEvent(`synth begins, ${Math.round(performance.now())} ms after the program's start`);
    const errors = this.validate();
    if (errors.length) throw new ValidationError(errors);
    const specs = this.node
      .findAll()
      .filter(isResourceConstruct)
      .map((c) => ({ construct: c, spec: c._toSpec() }));
    if (this.synthOut !== undefined) {
      const out = this.synthOut;
      this.written = renderYaml(specs).then(
        (text) => {
          if (out === "-") process.stdout.write(text);
          else writeFileSync(out, text);
        },
        (err: unknown) => {
          console.error(`drove synth: ${err instanceof Error ? err.message : String(err)}`);
          process.exitCode = 1;
        },
      );
      return new Map();
    }
    const byPath = new Map<string, pulumi.CustomResource>();
    const order = registrationOrder(specs);
    // Pulumi's SDK takes a whole, source-mapped stack trace for every resource
    // it registers (and one for each of its promises), and the engine keeps
    // the resource's in the state: most of synth's time, about 1 KB of state
    // per resource (rewritten at every step of an `up`), all growing with the
    // fleet. A resource's place in drove's own code says nothing to its user,
    // so registration runs with stack traces that are empty and cost nothing;
    // the program's own settings are back as soon as it is done.
    const { stackTraceLimit, prepareStackTrace } = Error;
    Error.stackTraceLimit = 0;
    Error.prepareStackTrace = (err: Error) => `${err.name}: ${err.message}`;
    try {
      this.register(order, byPath);
      this.registerReachability(specs);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
      Error.prepareStackTrace = skipSdkPromiseStacks(prepareStackTrace);
    }
    traceEvent(`synth ends: ${this.resources.size} resources registered`);
    return byPath;
  }

  private register(order: ReturnType<typeof registrationOrder>, byPath: Map<string, pulumi.CustomResource>): void {
    for (const { construct, spec, waitsFor } of order) {
      const parent = spec.parent ? this.resources.get(spec.parent) : undefined;
      const props: pulumi.Inputs = { ...spec.props };
      for (const o of spec.outputs ?? []) if (!(o in props)) props[o] = undefined;
      const deps = [parent, ...waitsFor.map((c) => this.resources.get(c))].filter((r): r is pulumi.CustomResource => r !== undefined);
      const res = new DroveResource(spec.type, construct.node.path, props, parent ? { parent, dependsOn: deps } : { dependsOn: deps });
      this.resources.set(construct, res);
      (construct as { _registered?: (r: pulumi.CustomResource) => void })._registered?.(res);
      byPath.set(construct.node.path, res);
    }
  }

  /**
   * A `Reachability` for each Host lost at plan time (or refused by its
   * Attestation): it fails the run naming the machine. It is registered only
   * once the Host's outputs say so (from the refresh, or the plan's own
   * quote), so a fleet that answers costs the engine no resource for it (one
   * per machine was a seventh of a no-change run's resources); back again,
   * the machine's Reachability leaves the stack. Nothing depends on it, so
   * with `PULUMI_CONTINUE_ON_ERROR` (which `drove env` sets) everything else
   * converges around it. (No resource waits for all the others: one that
   * did would be skipped by any failure and keep, in its old state, a
   * dependency on what the same run deleted, and Pulumi would refuse the
   * stack from then on.)
   */
  private registerReachability(specs: { construct: IConstruct; spec: ResourceSpec }[]): void {
    for (const { construct, spec } of specs.filter(({ spec: s }) => s.type === "drove:index:Host")) {
      const res = this.resources.get(construct) as pulumi.CustomResource & { unreachable?: pulumi.Output<string | undefined> };
      const c = spec.props.connection as { host?: pulumi.Input<string>; port?: number } | undefined;
      const route = c?.host !== undefined ? pulumi.interpolate`${c.host}:${c.port ?? 22}` : undefined;
      // A host refused by its Attestation fails the run here too, naming the PCR.
      const attestation = specs.find(({ spec: s }) => s.type === "drove:index:Attestation" && s.parent === construct);
      const refusal = attestation ? (this.resources.get(attestation.construct) as unknown as { refusal?: pulumi.Output<unknown> }).refusal : undefined;
      // Known in a preview when the Host (and its Attestation) change nothing, which is when a
      // lost or refused machine is planned; a new Host that cannot be reached fails its own create.
      pulumi.all([res.unreachable, refusal]).apply(([unreachable, refused]) => {
        if (!unreachable && !refused) return;
        new DroveResource(
          "drove:index:Reachability",
          `${construct.node.path}/reachable`,
          { host: construct.node.path, route, unreachable, ...(refused ? { refused } : {}) },
          { parent: res },
        );
      });
    }
  }

  /** True once `synth()` has run. */
  get isSynthesized(): boolean {
    return this.synthesized;
  }

  /** Validates the tree and renders its desired state as YAML, without deploying or touching any machine. */
  async toYaml(): Promise<string> {
    const errors = this.validate();
    if (errors.length) throw new ValidationError(errors);
    return renderYaml(this.node.findAll().filter(isResourceConstruct).map((c) => ({ construct: c, spec: c._toSpec() })));
  }

  /** @internal The Pulumi resource a construct rendered to (after synth). */
  _resourceOf(c: IConstruct): pulumi.CustomResource | undefined {
    return this.resources.get(c);
  }
}

/** The desired state, per host, as reviewable YAML. Secrets and unknowns are marked, never shown. */
async function renderYaml(specs: { construct: IConstruct; spec: ResourceSpec }[]): Promise<string> {
  // No resource will be registered: what waits for one resolves as known only after apply.
  for (const { construct } of specs) (construct as { _unregistered?: () => void })._unregistered?.();
  const hosts: Record<string, unknown[]> = {};
  for (const { construct, spec } of specs) {
    const host = spec.parent ? spec.parent.node.path : construct.node.path;
    (hosts[host] ??= []).push({ path: construct.node.path, type: spec.type, props: await plain(spec.props) });
  }
  return yaml.dump({ apiVersion: "drove/v1", hosts }, { lineWidth: 120, noRefs: true, sortKeys: false });
}

/** Outside the engine, Outputs of config and literals resolve; secrets never show. */
async function plain(v: unknown): Promise<unknown> {
  if (isSecretInput(v)) return "[secret]";
  if (pulumi.Output.isInstance(v)) {
    const o = v as unknown as { isSecret: Promise<boolean>; isKnown: Promise<boolean>; promise(): Promise<unknown> };
    if (await o.isSecret) return "[secret]";
    if (!(await o.isKnown)) return "(known after apply)";
    return plain(await o.promise());
  }
  if (v instanceof Promise) return plain(await v);
  if (Array.isArray(v)) return Promise.all(v.map(plain));
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = await plain(x);
    return out;
  }
  return v;
}

/**
 * Cycles among what resources wait for (`node.addDependency`, on a resource
 * or on a construct holding resources): each named once with its path, since
 * no order could create them (the engine would wait forever, or drop the edge).
 */
export function dependencyCycles(constructs: readonly IResourceConstruct[]): string[] {
  const edges = new Map<IConstruct, IConstruct[]>();
  const members = new Set<IConstruct>(constructs);
  for (const c of constructs) {
    // What waits for what, as the program said it (rendered specs add more, but never a cycle on their own).
    edges.set(c, [...new Set(c.node.dependencies.flatMap((d) => dependencyTargets(c, d, members)))]);
  }
  const state = new Map<IConstruct, 1 | 2>();
  const errors: string[] = [];
  const seen = new Set<string>();
  const stack: IConstruct[] = [];
  const visit = (c: IConstruct): void => {
    state.set(c, 1);
    stack.push(c);
    for (const d of edges.get(c) ?? []) {
      if (state.get(d) === 1) {
        const cycle = [...stack.slice(stack.indexOf(d)), d].map((x) => x.node.path);
        const key = [...cycle.slice(0, -1)].sort().join("|");
        if (!seen.has(key)) {
          seen.add(key);
          errors.push(`${d.node.path}: resources wait for each other in a cycle (${cycle.join(" -> ")}), so none can be made first; remove one of these dependencies`);
        }
      } else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(c, 2);
  };
  for (const c of constructs) if (!state.has(c)) visit(c);
  return errors;
}

/** The App a construct belongs to. */
export function appOf(c: IConstruct): App {
  const root = c.node.root;
  if (!App.isApp(root)) throw new ValidationError([`${c.node.path}: drove constructs must live in a drove App (new App())`]);
  return root;
}

/**
 * The id a new construct takes under `scope`, checked first so that a second
 * construct with a sibling's id is refused with the path and the fix (the
 * constructs package would throw its own bare error, with a stack trace).
 */
export function freeId(scope: IConstruct, id: string): string {
  const taken = scope.node.tryFindChild(id);
  if (taken) {
    const path = scope.node.path ? `${scope.node.path}/${id}` : id;
    const where = scope.node.path ? `under ${scope.node.path}` : "at the top of the App";
    throw new ValidationError([`${path}: a ${kindOf(taken)} with the id "${id}" already exists ${where}; give each construct an id of its own among its siblings`]);
  }
  return id;
}

function kindOf(c: IConstruct): string {
  return c.constructor?.name && c.constructor.name !== "Object" ? c.constructor.name : "construct";
}

/**
 * The resource constructs that a dependency of `c` on `d` stands for: `d`
 * itself if it renders to a resource, else (as in the AWS CDK) every resource
 * inside it (a Registry, a Cluster, any group of constructs). Waiting for a
 * group one belongs to adds nothing (so siblings doing so make no cycle).
 */
export function dependencyTargets(c: IConstruct, d: IConstruct, members: ReadonlySet<IConstruct>): IConstruct[] {
  // A resource, even an ancestor that is not the Pulumi parent (a Container waits for its ContainerRuntime).
  if (members.has(d)) return d === c ? [] : [d];
  if (c.node.scopes.includes(d)) return [];
  return d.node.findAll().filter((x) => members.has(x));
}

/**
 * The specs in an order Pulumi can register them in: each after its parent
 * and after everything it waits for (its spec's `dependsOn` and its
 * `node.addDependency` calls, groups expanded), with what it waits for
 * resolved to resource constructs. Pulumi takes a dependency only on a
 * resource already registered, so an edge to one registered later would be
 * lost without this order.
 */
export function registrationOrder(specs: { construct: IConstruct; spec: ResourceSpec }[]): { construct: IConstruct; spec: ResourceSpec; waitsFor: IConstruct[] }[] {
  const members = new Set(specs.map((s) => s.construct));
  const byConstruct = new Map(specs.map((s) => [s.construct, s]));
  const waits = new Map<IConstruct, IConstruct[]>();
  for (const { construct, spec } of specs) {
    const all = [...(spec.dependsOn ?? []), ...construct.node.dependencies].flatMap((d) => dependencyTargets(construct, d, members));
    waits.set(construct, [...new Set(all)]);
  }
  const out: { construct: IConstruct; spec: ResourceSpec; waitsFor: IConstruct[] }[] = [];
  const state = new Map<IConstruct, 1 | 2>();
  const visit = (c: IConstruct, path: IConstruct[]): void => {
    if (state.get(c) === 2) return;
    if (state.get(c) === 1) {
      const cycle = [...path.slice(path.indexOf(c)), c].map((x) => x.node.path);
      throw new ValidationError([`${c.node.path}: resources wait for each other in a cycle (${cycle.join(" -> ")}), so none can be made first; remove one of these dependencies`]);
    }
    state.set(c, 1);
    const s = byConstruct.get(c)!;
    for (const d of [...(s.spec.parent && members.has(s.spec.parent) ? [s.spec.parent] : []), ...waits.get(c)!]) visit(d, [...path, c]);
    state.set(c, 2);
    out.push({ ...s, waitsFor: waits.get(c)! });
  };
  for (const { construct } of specs) visit(construct, []);
  return out;
}

/** Pulumi's SDK file that stamps each of its promises with a stack trace, for a leak report. */
const SDK_PROMISE_STACKS = /[\\/]@pulumi[\\/]pulumi[\\/]runtime[\\/]debuggable\.js$/;

/**
 * Long after synth, every promise of Pulumi's SDK (several per resource, as
 * its outputs resolve) is stamped with a stack trace for a leak report that
 * only `PULUMI_DEBUG_PROMISE_LEAKS` prints, and a TypeScript program formats
 * each one through source maps: a tenth of a 50-machine program's CPU. This
 * formats those, and only those, as nothing; every other stack, the
 * program's own errors included, is formatted as before.
 */
export function skipSdkPromiseStacks(
  previous: ErrorConstructor["prepareStackTrace"] | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ErrorConstructor["prepareStackTrace"] {
  // (an unset prepareStackTrace is a valid value, whatever its type says)
  if (env.PULUMI_DEBUG_PROMISE_LEAKS) return previous as ErrorConstructor["prepareStackTrace"];
  if ((previous as { droveSkipsSdkStacks?: boolean } | undefined)?.droveSkipsSdkStacks) return previous as ErrorConstructor["prepareStackTrace"];
  const format = (err: Error, sites: NodeJS.CallSite[]): unknown => {
    if (sites.length > 0 && SDK_PROMISE_STACKS.test(sites[0].getFileName() ?? "")) return "";
    if (previous) return previous(err, sites);
    // V8's own format, which an unset prepareStackTrace stands for.
    return [String(err), ...sites.map((s) => `    at ${s}`)].join("\n");
  };
  return Object.assign(format, { droveSkipsSdkStacks: true });
}
