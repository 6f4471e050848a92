import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as yaml from "js-yaml";
import { DroveError } from "./errors";
import { packageRoot, projectDir } from "./paths";

export interface SynthOptions {
  /** The program; default: Pulumi.yaml's `main`, else index.ts, in the project. */
  readonly program?: string;
  /** Whose config the program sees: Pulumi.<stack>.yaml. @default PULUMI_STACK, else the only stack file */
  readonly stack?: string;
  /** Where to write the YAML; "-" for stdout. */
  readonly out: string;
}

/** The stack's config as the Pulumi engine would hand it to the program; secure values stay secret. */
function stackConfig(dir: string, project: string, stack: string | undefined): { config: Record<string, string>; secretKeys: string[]; stack: string } {
  const files = existsSync(dir) ? readdirSync(dir).filter((f: string) => /^Pulumi\.[^.]+\.ya?ml$/.test(f)) : [];
  const name = stack ?? process.env.PULUMI_STACK ?? (files.length === 1 ? files[0].split(".")[1] : undefined);
  if (!name) return { config: {}, secretKeys: [], stack: "synth" };
  const file = files.find((f: string) => f.split(".")[1] === name);
  const doc = file ? ((yaml.load(readFileSync(join(dir, file), "utf8")) as { config?: Record<string, unknown> }) ?? {}) : {};
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(doc.config ?? {})) {
    const key = k.includes(":") ? k : `${project}:${k}`;
    if (typeof v === "object" && v !== null && "secure" in v) {
      config[key] = "[secret]";
      secretKeys.push(key);
    } else config[key] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return { config, secretKeys, stack: name };
}

/**
 * Runs a drove program without the Pulumi engine and without touching any
 * machine, and writes its desired state per host as YAML.
 */
export function synth(options: SynthOptions): void {
  const dir = projectDir();
  const pulumiYaml = ["Pulumi.yaml", "Pulumi.yml"].map((f) => join(dir, f)).find(existsSync);
  const meta = pulumiYaml ? ((yaml.load(readFileSync(pulumiYaml, "utf8")) as { name?: string; main?: string }) ?? {}) : {};
  const program = resolve(options.program ?? join(dir, meta.main ?? "index.ts"));
  if (!existsSync(program)) {
    throw new DroveError(`There is no program at ${program}`, { fixes: ["name it: `drove synth path/to/cluster.ts`", "set `main:` in Pulumi.yaml"] });
  }
  const { config, secretKeys, stack } = stackConfig(dir, meta.name ?? "project", options.stack);
  const r = spawnSync(process.execPath, ["--require", require.resolve("tsx/cjs", { paths: [packageRoot] }), program], {
    cwd: dir,
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      DROVE_SYNTH_OUT: options.out === "-" ? "-" : resolve(options.out),
      PULUMI_CONFIG: JSON.stringify(config),
      PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(secretKeys),
      PULUMI_NODEJS_STACK: stack,
      PULUMI_NODEJS_PROJECT: meta.name ?? "project",
    },
  });
  if (r.status !== 0) throw new DroveError(`The program ${program} failed while synthesising (see above)`);
}
