/**
 * `drove`: the command line. `drove env`, `drove setup`, `drove synth`, `drove ssh-stop`, `drove lab up|status|down`.
 */
import { Command, InvalidArgumentError } from "commander";
import { DroveError } from "./errors";
import { ensurePulumi, offlineEnv, renderEnv } from "./toolchain";
import { synth } from "./synth";
import { labDown, labStatus, labUp } from "../integration/lab/lab";

const program = new Command("drove").description("Infrastructure as code for machines you run yourself.").showHelpAfterError();

program
  .command("env")
  .description('print the environment for the plain `pulumi` command: eval "$(npx drove env)"')
  .option("--no-setup", "do not build or fetch the Pulumi toolchain first")
  .action((opts: { setup: boolean }) => {
    if (opts.setup) ensurePulumi();
    process.stdout.write(renderEnv(offlineEnv()) + "\n");
  });

program
  .command("setup")
  .description("fetch or build the pinned Pulumi CLI and language host (cached)")
  .action(() => {
    console.log(ensurePulumi());
  });

program
  .command("synth")
  .description("render the program's desired state per host as YAML, touching no machine")
  .argument("[program]", "the program (default: Pulumi.yaml's main)")
  .option("-o, --out <file>", 'where to write the YAML ("-" for stdout)', "-")
  .option("-s, --stack <name>", "whose config the program sees (Pulumi.<stack>.yaml)")
  .action((programPath: string | undefined, opts: { out: string; stack?: string }) => {
    synth({ program: programPath, out: opts.out, stack: opts.stack });
  });

program
  .command("ssh-stop")
  .description("close the SSH connections kept for the next run (DROVE_SSH_PERSIST), as `ssh -O exit` does")
  .action(async () => {
    const { stopKeeper } = await import("./ssh/keeper");
    console.log((await stopKeeper()) ? "drove: the kept SSH connections are closed" : "drove: no SSH connections were kept");
  });

const wholeNumber = (v: string): number => {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`expected a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
};

const lab = program.command("lab").description("real machines on this box: systemd, sshd, runtimes, a TPM each");
lab
  .command("up")
  .description("boot the lab (idempotent) and write its inventory")
  .option("-m, --machines <n>", "how many machines", wholeNumber, 3)
  .action(async (opts: { machines: number }) => {
    const inv = await labUp(opts.machines);
    for (const m of inv.machines) console.log(`${m.name}\t${m.address}\t${m.hostKey}`);
  });
lab
  .command("status")
  .description("show the lab's machines")
  .action(async () => {
    const s = await labStatus();
    if (!s.machines.length) console.log("no lab machines");
    for (const m of s.machines) console.log(`${m.name}\t${m.address}\t${m.running ? "running" : "stopped"}\tssh ${m.ssh ? "ok" : "no answer"}`);
    console.log(`registry\t${s.registry ? "ok" : "not answering"}`);
  });
lab
  .command("down")
  .description("stop the lab and remove every process, mount, namespace and link it made")
  .action(async () => {
    await labDown();
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof DroveError) console.error(`drove: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
