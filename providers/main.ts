/**
 * The `drove` resource provider plugin (`pulumi-resource-drove`): one process
 * per Pulumi run serves every drove resource, over one SSH connection per host.
 */
import * as provider from "@pulumi/pulumi/provider";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isConnectError } from "../src/errors";
import { isWireSecret, unwrapSecrets, wrapSecret } from "../src/secrets";
import type { AnyKind } from "./kind";
import { fileKind } from "./file/provider";
import { hostKind } from "./host/provider";
import { pool } from "./common";

const kinds: readonly AnyKind[] = [hostKind, fileKind];
const byToken = new Map(kinds.map((k) => [k.token, k]));

function kindOf(urn: string): AnyKind {
  const qualified = urn.split("::")[2] ?? "";
  const token = qualified.split("$").pop() ?? "";
  const kind = byToken.get(token);
  if (!kind) throw new Error(`drove does not know the resource type ${token}; this provider serves ${[...byToken.keys()].join(", ")}`);
  return kind;
}

/** Wraps the kind's secret paths, wherever a value is present. */
function protect(kind: AnyKind, value: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!value) return value;
  const out = structuredClone(value);
  for (const path of kind.secretPaths) {
    const parts = path.split(".");
    let node: Record<string, unknown> | undefined = out;
    for (const p of parts.slice(0, -1)) node = node?.[p] as Record<string, unknown> | undefined;
    const last = parts[parts.length - 1];
    if (node && node[last] !== undefined && !isWireSecret(node[last])) node[last] = wrapSecret(node[last]);
  }
  return out;
}

const version = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")).version as string;

const drove: provider.Provider = {
  version,
  async check(urn, _olds, news) {
    const kind = kindOf(urn);
    const { inputs, failures } = kind.check(unwrapSecrets(news));
    return { inputs: protect(kind, inputs as Record<string, unknown>), failures };
  },
  async diff(_id, urn, olds, news) {
    return kindOf(urn).diff(unwrapSecrets(olds), unwrapSecrets(news));
  },
  async create(urn, inputs) {
    const kind = kindOf(urn);
    const { id, outs } = await kind.create(unwrapSecrets(inputs));
    return { id, outs: protect(kind, outs) };
  },
  async read(id, urn, props) {
    const kind = kindOf(urn);
    let r: Awaited<ReturnType<AnyKind["read"]>>;
    try {
      r = await kind.read(id, unwrapSecrets(props));
    } catch (err) {
      // The machine is out of reach: keep what is known of it. Its Host says
      // so, and the next change to it fails, for it alone, with the reason.
      if (!isConnectError(err)) throw err;
      const known = unwrapSecrets<Record<string, unknown>>(props);
      const inputs = Object.fromEntries(Object.entries(known).filter(([k]) => !kind.outputOnly.includes(k)));
      return { id, props: protect(kind, known), inputs: protect(kind, inputs) };
    }
    if (!r) return { id: "", props: {} };
    return { id, props: protect(kind, r.outs), inputs: protect(kind, r.inputs) };
  },
  async update(id, urn, olds, news) {
    const kind = kindOf(urn);
    return { outs: protect(kind, await kind.update(id, unwrapSecrets(olds), unwrapSecrets(news))) };
  },
  async delete(id, urn, props) {
    await kindOf(urn).delete(id, unwrapSecrets(props));
  },
};

process.on("exit", () => pool.closeAll());
void provider.main(drove, process.argv.slice(2));
