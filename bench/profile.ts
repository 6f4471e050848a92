/**
 * `node --import tsx bench/profile.ts <machines>`: a lab of the benchmark's
 * workload left running, for looking into where a no-change run spends its
 * time (CPU profiles, strace...). Prints the project folder and the
 * environment to run `pulumi` in it; `--down` tears the lab down.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BenchLab } from "./lab";
import { installTools, TOOLS } from "./tools";

const stateDir = "/tmp/drove-profile";
const lab = new BenchLab({ prefix: "drovepf", net: 60, stateDir });

async function main(): Promise<void> {
  if (process.argv.includes("--down")) {
    console.log((await lab.down()).join("\n") || "lab down, nothing left");
    return;
  }
  const machines = Number(process.argv[2] ?? 10);
  const installed = installTools();
  await lab.fresh(machines);
  const dir = join(stateDir, "project");
  // A new stack on the new lab: the last one's state names machines that are gone.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const run = TOOLS.find((t) => t.name === "drove")!.start({ inventory: lab.inventory, image: lab.image, dir, installed, timeoutMs: 30 * 60_000 });
  await run.prepare();
  const r = await run.apply(1);
  if (r.code !== 0) throw new Error(r.output);
  const env = {
    PULUMI_BACKEND_URL: `file://${join(dir, "backend")}`,
    PULUMI_CONFIG_PASSPHRASE: "drove-bench",
    PULUMI_HOME: installed.PULUMI_HOME,
    PULUMI_STACK: "bench",
    DROVE_STATE: stateDir,
  };
  writeFileSync(join(stateDir, "env.sh"), Object.entries(env).map(([k, v]) => `export ${k}='${v}'`).join("\n") + "\n");
  console.log(`applied in ${r.seconds.toFixed(1)} s; project ${dir}; eval "$(npx drove env)"; . ${join(stateDir, "env.sh")}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
