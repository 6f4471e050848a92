import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Construct, IConstruct } from "constructs";
import { packageRoot } from "./paths";

const SPEC = Symbol.for("drove.resource");

/**
 * What a construct renders to: one resource on one machine. Rendered lazily, at
 * synth, so that `add*()` calls made after construction still count.
 */
export interface ResourceSpec {
  /** The provider's type token, `drove:index:<Kind>`. */
  readonly type: string;
  /** Properties as the provider receives them (Pulumi inputs allowed). */
  readonly props: Record<string, pulumi.Input<unknown>>;
  /** Output property names the program may read. */
  readonly outputs?: readonly string[];
  /** The construct whose resource is this one's parent (its host). */
  readonly parent?: IConstruct;
  /** Other constructs whose resources must exist first (a container's runtime). */
  readonly dependsOn?: readonly IConstruct[];
}

/** A construct that renders to a machine-side resource. */
export interface IResourceConstruct extends IConstruct {
  /** @internal */
  _toSpec(): ResourceSpec;
}

const SECRETS = new WeakSet<object>();

/** A Pulumi secret that synth renders as `[secret]`. */
export function secretInput(value: pulumi.Input<string>): pulumi.Output<string> {
  const out = pulumi.secret(value);
  SECRETS.add(out);
  return out;
}

export function isSecretInput(x: unknown): boolean {
  return typeof x === "object" && x !== null && SECRETS.has(x);
}

export function markResource(c: Construct): void {
  Object.defineProperty(c, SPEC, { value: true });
  // Checked at synth, before anything is registered or connects: the engine would refuse the whole program with a bare gRPC error.
  c.node.addValidation({ validate: () => illFormedStrings((c as unknown as IResourceConstruct)._toSpec().props) });
}

/**
 * Where `value` (props, walked through plain objects and arrays, keys too)
 * holds a string that is not well-formed Unicode: a lone surrogate, which no
 * Pulumi program can send (its gRPC carries UTF-8 only).
 */
export function illFormedStrings(value: unknown, at = ""): string[] {
  const lone = (s: string) => s.search(/\p{Cs}/u);
  if (typeof value === "string") {
    const i = lone(value);
    return i < 0 ? [] : [`\`${at}\` must be well-formed Unicode text, but it has a lone surrogate (\\u${value.charCodeAt(i).toString(16)}) at index ${i}, which Pulumi cannot carry (UTF-8 only); remove it, or pair it`];
  }
  if (typeof value !== "object" || value === null || (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype)) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const here = Array.isArray(value) ? `${at}[${k}]` : at ? `${at}.${k}` : k;
    const key = lone(k) < 0 ? [] : [`\`${at || "props"}\` has the key ${JSON.stringify(k)}, which must be well-formed Unicode text, but it has a lone surrogate, which Pulumi cannot carry (UTF-8 only); remove it, or pair it`];
    return [...key, ...illFormedStrings(v, here)];
  });
}

/** Cross-package safe check, as `Construct.isConstruct` does. */
export function isResourceConstruct(x: unknown): x is IResourceConstruct {
  return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[SPEC] === true;
}

/** The Pulumi custom resource every drove resource is, served by `pulumi-resource-drove`. */
export class DroveResource extends pulumi.CustomResource {
  constructor(type: string, name: string, props: pulumi.Inputs, opts: pulumi.CustomResourceOptions = {}) {
    super(type, name, props, { version: PROVIDER_VERSION, ...opts });
  }
}

/** The provider plugin's version: drove's own, so the engine runs the provider this package ships. */
const PROVIDER_VERSION: string = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")).version;
