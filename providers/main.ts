/**
 * The `drove` resource provider plugin (`pulumi-resource-drove`): one process
 * per Pulumi run serves every drove resource, over one SSH connection per host.
 */
import * as provider from "@pulumi/pulumi/provider";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths";
import { isConnectError } from "../src/errors";
import { isWireSecret, redactError, secretStringsIn, unwrapSecrets, wrapSecret } from "../src/secrets";
import type { AnyKind } from "./kind";
import { directoryKind } from "./directory/provider";
import { fileKind } from "./file/provider";
import { barrierKind, hostKind, reachabilityKind } from "./host/provider";
import { unitKind } from "./systemd-unit/provider";
import { packageKind } from "./package/provider";
import { containerKind } from "./container/provider";
import { runtimeKind } from "./container/runtime";
import { imageKind } from "./container/image";
import { networkKind } from "./network/provider";
import { volumeKind } from "./volume/provider";
import { serviceKind } from "./service/provider";
import { etcdClusterKind } from "./etcd/provider";
import { swarmKind, swarmServiceKind } from "./swarm/provider";
import { caKind, certificateKind } from "./tls/provider";
import { attestationKind } from "./attestation/provider";
import { osImageKind } from "./os-image/provider";
import { pool } from "./common";
import { traceEvent, traced, tracing } from "../src/trace";

traceEvent(`provider loaded, ${Math.round(performance.now())} ms after start`);

const kinds: readonly AnyKind[] = [hostKind, reachabilityKind, barrierKind, fileKind, packageKind, directoryKind, unitKind, runtimeKind, containerKind, imageKind, serviceKind, networkKind, volumeKind, etcdClusterKind, swarmKind, swarmServiceKind, caKind, certificateKind, attestationKind, osImageKind];
const byToken = new Map(kinds.map((k) => [k.token, k]));

function kindOf(urn: string): AnyKind {
  const qualified = urn.split("::")[2] ?? "";
  const token = qualified.split("$").pop() ?? "";
  const kind = byToken.get(token);
  if (!kind) throw new Error(`drove does not know the resource type ${token}; this provider serves ${[...byToken.keys()].join(", ")}`);
  return kind;
}

/** The paths (like `env.TOKEN`) at which a value arrived as a secret. */
function secretPathsIn(value: unknown, prefix: string[] = [], out: string[] = []): string[] {
  if (isWireSecret(value)) out.push(prefix.join("."));
  else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) secretPathsIn(v, [...prefix, k], out);
  }
  return out;
}

/**
 * Wraps the kind's secret paths, and every path that arrived as a secret,
 * wherever a value is present: a secret in is a secret out.
 */
function protect(kind: AnyKind, value: Record<string, unknown> | undefined, arrived: readonly string[] = []): Record<string, unknown> | undefined {
  if (!value) return value;
  const out = structuredClone(value);
  for (const path of [...kind.secretPaths, ...arrived]) {
    const parts = path.split(".");
    let node: Record<string, unknown> | undefined = out;
    for (const p of parts.slice(0, -1)) node = node?.[p] as Record<string, unknown> | undefined;
    const last = parts[parts.length - 1];
    if (node && node[last] !== undefined && !isWireSecret(node[last])) node[last] = wrapSecret(node[last]);
  }
  return out;
}

/**
 * Runs one call of a kind. The error it may throw never carries a value that
 * arrived as a secret, or sits at one of the kind's secret paths: a
 * container's last log lines, quoted in a crash report, may print one, and the
 * engine keeps only config secrets out of what it shows.
 */
async function keepingSecrets<T>(kind: AnyKind, args: readonly unknown[], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw redactError(err, args.flatMap((a) => [...secretStringsIn(a), ...secretStringsIn(protect(kind, unwrapSecrets<Record<string, unknown> | undefined>(a)))]));
  }
}

const version = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")).version as string;

const calls: provider.Provider = {
  version,
  async check(urn, olds, news) {
    const kind = kindOf(urn);
    const { inputs, failures } = await keepingSecrets(kind, [olds, news], async () =>
      kind.plan ? await kind.plan(unwrapSecrets(news), olds && Object.keys(olds).length ? unwrapSecrets(olds) : undefined) : kind.check(unwrapSecrets(news)),
    );
    return { inputs: protect(kind, inputs as Record<string, unknown>, secretPathsIn(news)), failures };
  },
  async diff(_id, urn, olds, news) {
    const kind = kindOf(urn);
    return keepingSecrets(kind, [olds, news], async () => kind.diff(unwrapSecrets(olds), unwrapSecrets(news)));
  },
  async create(urn, inputs) {
    const kind = kindOf(urn);
    const { id, outs } = await keepingSecrets(kind, [inputs], () => kind.create(unwrapSecrets(inputs)));
    return { id, outs: protect(kind, outs, secretPathsIn(inputs)) };
  },
  async read(id, urn, props) {
    const kind = kindOf(urn);
    let r: Awaited<ReturnType<AnyKind["read"]>>;
    try {
      r = await keepingSecrets(kind, [props], () => kind.read(id, unwrapSecrets(props)));
    } catch (err) {
      // The machine is out of reach: keep what is known of it. Its Host says
      // so, and the next change to it fails, for it alone, with the reason.
      if (!isConnectError(err)) throw err;
      const known = unwrapSecrets<Record<string, unknown>>(props);
      const inputs = Object.fromEntries(Object.entries(known).filter(([k]) => !kind.outputOnly.includes(k)));
      return { id, props: protect(kind, known, secretPathsIn(props)), inputs: protect(kind, inputs, secretPathsIn(props)) };
    }
    if (!r) return { id: "", props: {} };
    const arrived = secretPathsIn(props);
    return { id, props: protect(kind, r.outs, arrived), inputs: protect(kind, r.inputs, arrived) };
  },
  async update(id, urn, olds, news) {
    const kind = kindOf(urn);
    return { outs: protect(kind, await keepingSecrets(kind, [olds, news], () => kind.update(id, unwrapSecrets(olds), unwrapSecrets(news))), secretPathsIn(news)) };
  },
  async delete(id, urn, props) {
    const kind = kindOf(urn);
    await keepingSecrets(kind, [props], () => kind.delete(id, unwrapSecrets(props)));
  },
};

/** With DROVE_TRACE, each call's start and end are recorded (type and name only). */
function withTrace(p: provider.Provider): provider.Provider {
  if (!tracing) return p;
  const out: Record<string, unknown> = { ...p };
  for (const op of ["check", "diff", "create", "read", "update", "delete"] as const) {
    const f = p[op] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (!f) continue;
    out[op] = (...args: unknown[]) => {
      const urn = String(args[op === "check" || op === "create" ? 0 : 1]);
      return traced(`${op} ${urn.split("::").slice(2).join("::")}`, () => f.apply(p, args));
    };
  }
  return out as unknown as provider.Provider;
}

const drove = withTrace(calls);
process.on("exit", () => {
  pool.closeAll();
  traceEvent("provider exits");
});
void provider.main(drove, process.argv.slice(2));
