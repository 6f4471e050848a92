/**
 * Faults in the middle of `pulumi up`, through the real CLI on a 3-machine lab.
 * Each run is held at a slow step the test controls (a oneshot unit waiting for
 * a file the test makes), so the fault lands while the run is known to be
 * there, never after a sleep: the SSH link to one machine cut, a machine
 * killed outright, the registry stopped. Each time the run fails only for
 * what depends on the broken part, naming the host; the other machines
 * converge; once healed, `pulumi refresh` and `up` converge to no changes,
 * and nothing is lost.
 *
 * Covered elsewhere: a machine lost at plan time (services.test.ts), pulumi
 * killed mid-run (locks.test.ts), an etcd member stopped (etcd.test.ts), a
 * crash-looping container (containers.test.ts).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { answersSsh } from "./service-checks";
import { join } from "node:path";
import { bootTestLab, type CliResult, eventually, expectMatch, expectOk, httpText, processAlive, sh, type TestLab, TestProject } from "./harness";
import { SshConnection } from "../src/ssh";
import type { ShellCommand } from "../src/quote";
import { pushWebImage, type TestImage } from "./fixtures";
import { labMachineCgroup, labUp } from "./lab/lab";
import { run } from "./lab/system";

const PREFIX = "drovefa";
const NET = 53;
let lab: TestLab;
let project: TestProject;
let v1: TestImage;

/**
 * Runs a command on a machine as root over a connection of its own: a connection
 * kept across a cut link can hang on or fail after the link is back (TCP's
 * backoff, SSH keepalives), so each check opens a new one.
 */
async function onMachine(machine: string, command: ShellCommand): Promise<{ code: number; stdout: string; stderr: string }> {
  const m = lab.machine(machine);
  const conn = await SshConnection.open({ host: m.address, user: m.user, privateKey: readFileSync(m.privateKeyPath, "utf8"), hostKey: m.hostKey });
  try {
    return await conn.exec(command);
  } finally {
    conn.close();
  }
}

/** What a machine holds at /etc/drovefa-<tag>.conf: its content, or ABSENT. */
async function fileOn(machine: string, tag: string): Promise<string> {
  return (await onMachine(machine, sh`cat ${`/etc/drovefa-${tag}.conf`} 2>/dev/null || echo ABSENT`)).stdout.trim();
}
const written = (machine: string, tag: string) => `written by drove, ${tag}, on ${machine}`;

/** systemd's view of a unit: `activating`, `active`... */
async function unitState(machine: string, unit: string): Promise<string> {
  return (await onMachine(machine, sh`systemctl is-active ${unit} 2>&1 || true`)).stdout.trim();
}

/** Starts `pulumi up --yes` in the background and waits until it is held at the slow step `gate` on `machine`. */
async function upHeldAt(machine: string, gate: string): Promise<{ done: Promise<CliResult> }> {
  const { done } = project.pulumiInBackground(["up", "--yes"]);
  const state = await eventually(() => unitState(machine, `drovefa-gate-${gate}.service`), "activating", 600);
  if (state !== "activating") {
    const r = await Promise.race([done, new Promise<undefined>((res) => setTimeout(() => res(undefined), 1000))]);
    assert.fail(`the up never reached its slow step on ${machine} (unit ${state}):\n${r?.output ?? "(still running)"}`);
  }
  // (wrapped: an async function returning the promise itself would wait for it)
  return { done };
}

async function openGate(machine: string, gate: string): Promise<void> {
  assert.equal((await onMachine(machine, sh`touch ${`/run/drovefa-gate-${gate}`}`)).code, 0);
}

/** Takes a machine off the lab's network (or puts it back): its link on the bridge goes down. */
function cut(machine: string, off: boolean): void {
  execFileSync("ip", ["link", "set", `${PREFIX}-${machine}`, off ? "down" : "up"]);
}

const pidIn = (file: string) => Number(readFileSync(file, "utf8").trim());

/** The machine's cgroup (every process of it: systemd-nspawn, its systemd, sshd...). */
function machineCgroup(machine: string): string {
  const dir = labMachineCgroup(machine);
  assert.ok(dir, "no cgroup v2 hierarchy on this machine");
  return dir;
}

/** The registry's repositories and the tags of `web`, as its HTTP API lists them. */
async function registryListing(): Promise<string> {
  const base = `http://${lab.inventory.lab!.registry}/v2`;
  return `${await httpText(`${base}/_catalog`, { trim: true })} ${await httpText(`${base}/web/tags/list`, { trim: true })}`;
}

/** The lines of a failed run that say why (for the log). */
const why = (r: CliResult) => r.output.split("\n").filter((l) => /error|Unable/.test(l)).slice(0, 8).join("\n");

/** Refresh, then up, then a preview that must show no changes: what a user does once the fault is healed. */
async function converges(what: string): Promise<void> {
  expectOk(await project.pulumi(["refresh", "--yes"]), `the refresh after ${what}`);
  expectOk(await project.pulumi(["up", "--yes"]), `the up after ${what}`);
  expectOk(await project.pulumi(["preview", "--expect-no-changes"]), `the preview after ${what}`);
}

describe("Faults in the middle of a run, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab(PREFIX, NET, 3);
    v1 = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello v1\n");
    project = await TestProject.create("faults.ts");
    expectOk(await project.config({ tags: "base" }), "config");
    expectOk(await project.pulumi(["up", "--yes"]), "the first up");
    for (const m of ["m1", "m2", "m3"]) assert.equal(await fileOn(m, "base"), written(m, "base"));
  });

  after(async () => {
    if (lab) {
      for (const m of ["m1", "m2", "m3"]) {
        try {
          cut(m, false);
        } catch {
          // the link may be gone with its machine
        }
      }
      if (project) {
        for (const [m, g] of [["m2", "c1"], ["m2", "k1"], ["m2", "r1"]]) await onMachine(m, sh`touch ${`/run/drovefa-gate-${g}`}`).catch(() => undefined);
        await project.pulumi(["destroy", "--yes"]);
      }
      assert.deepEqual(await lab.down(), [], "the lab left something behind");
    }
  });

  test("the SSH link to one machine cut mid-run: that machine's step fails naming it, the others converge; once back, refresh and up converge, nothing lost", async (t) => {
    // given an up of new files everywhere, held at a slow step on m2
    expectOk(await project.config({ tags: "base,cut", gateOn: "m2", gate: "c1" }), "config");
    const up = await upHeldAt("m2", "c1");
    // when m2's traffic is dropped (its link on the lab's bridge goes down)
    cut("m2", true);
    let result: CliResult;
    try {
      result = await up.done;
    } finally {
      cut("m2", false);
    }
    // then the run fails for m2, naming it, and m1 and m3 converged
    assert.notEqual(result.code, 0, `the up should have failed:\n${result.output}`);
    t.diagnostic(why(result));
    expectMatch(result.output, /m2\/gate \*\*creating failed\*\*[^\n]*Unable to run a command on root@10\.213\.53\.12: /, result.output);
    assert.doesNotMatch(result.output, /10\.213\.53\.1[13]/, `m1 or m3 named in the failure:\n${result.output}`);
    for (const m of ["m1", "m3"]) assert.equal(await fileOn(m, "cut"), written(m, "cut"));
    // when m2 is back and its slow step is let through
    await answersSsh(lab.machine("m2").address);
    await openGate("m2", "c1");
    // then nothing it had is lost, and refresh and up converge
    assert.equal(await fileOn("m2", "base"), written("m2", "base"));
    await converges("the link came back");
    for (const m of ["m1", "m2", "m3"]) assert.equal(await fileOn(m, "cut"), written(m, "cut"));
    assert.equal(await unitState("m2", "drovefa-gate-c1.service"), "active");
  });

  test("a machine killed mid-run: that machine fails naming it, the others converge; rebooted with its identity (the lab wipes its disk), refresh and up recreate what it had", async (t) => {
    // given an up of new files everywhere, held at a slow step on m2
    expectOk(await project.config({ tags: "base,cut,kill", gateOn: "m2", gate: "k1" }), "config");
    const up = await upHeldAt("m2", "k1");
    const supervisor = pidIn(join(lab.stateDir, "lab", "machines", "m2", "nspawn.pid"));
    assert.ok(processAlive(supervisor), "m2's supervisor is not running");
    // when every process of m2 is killed at once (systemd-nspawn, its systemd, sshd...)
    writeFileSync(join(machineCgroup("m2"), "cgroup.kill"), "1");
    const result = await up.done;
    // then the run fails for m2, naming it, and m1 and m3 converged
    assert.notEqual(result.code, 0, `the up should have failed:\n${result.output}`);
    t.diagnostic(why(result));
    expectMatch(result.output, /m2\/gate \*\*creating failed\*\*[^\n]*Unable to run a command on root@10\.213\.53\.12: /, result.output);
    assert.doesNotMatch(result.output, /10\.213\.53\.1[13]/, `m1 or m3 named in the failure:\n${result.output}`);
    for (const m of ["m1", "m3"]) assert.equal(await fileOn(m, "kill"), written(m, "kill"));
    assert.equal(await eventually(async () => processAlive(supervisor), false), false, "m2's supervisor outlived its machine");
    // when the machine is booted again (same address, host key and machine-id)
    const hostKey = lab.machine("m2").hostKey;
    const inventory = await labUp(3, () => undefined);
    assert.equal(inventory.machines.find((m) => m.name === "m2")?.hostKey, hostKey);
    await answersSsh(lab.machine("m2").address);
    // then the lab gave it a fresh disk (it keeps identity, not its upper dir): what drove made there is gone
    assert.equal(await fileOn("m2", "base"), "ABSENT");
    // and refresh and up make it all again
    await openGate("m2", "k1");
    await converges("m2 was booted again");
    for (const m of ["m1", "m2", "m3"]) {
      for (const tag of ["base", "cut", "kill"]) assert.equal(await fileOn(m, tag), written(m, tag), `${tag} on ${m}`);
    }
    assert.equal(await unitState("m2", "drovefa-gate-k1.service"), "active");
  });

  test("the registry stopped mid-run: the pull fails naming the host, the rest converges; restarted, no image is lost and up starts the container", async (t) => {
    // given an up of new files everywhere and a container on m2 pulled after a slow step there
    assert.match(await registryListing(), /"web".*"v1"/);
    // (on m2, where the earlier slow steps were; a failed run that also deletes is the next test)
    expectOk(await project.config({ tags: "base,cut,kill,reg", gateOn: "m2", gate: "r1", image: v1.digestRef }), "config");
    const up = await upHeldAt("m2", "r1");
    // when the registry stops, then the slow step is let through
    const registry = pidIn(join(lab.stateDir, "lab", "registry", "pid"));
    assert.ok(processAlive(registry), "the registry is not running");
    process.kill(registry, "SIGTERM");
    assert.equal(await eventually(async () => processAlive(registry), false), false, "the registry did not stop");
    assert.match(await registryListing(), /unreachable/);
    await openGate("m2", "r1");
    const result = await up.done;
    // then the run fails for the container on m2, naming it, and every file converged
    assert.notEqual(result.code, 0, `the up should have failed:\n${result.output}`);
    t.diagnostic(why(result));
    expectMatch(result.output, /m2\/docker\/web \*\*creating failed\*\*[^\n]*Unable to run container web on root@10\.213\.53\.12: [^\n]*10\.213\.53\.1:5000/, result.output);
    assert.doesNotMatch(result.output, /10\.213\.53\.1[13]/, `m1 or m3 named in the failure:\n${result.output}`);
    for (const m of ["m1", "m2", "m3"]) assert.equal(await fileOn(m, "reg"), written(m, "reg"));
    // when the registry is started again (over the same storage)
    await labUp(3, () => undefined);
    // then its image is still there, byte for byte the same digest
    assert.match(await registryListing(), /"web".*"v1"/);
    const inspect = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${v1.tag}`]);
    assert.equal((JSON.parse(inspect.stdout) as { Digest: string }).Digest, v1.digestRef.split("@")[1]);
    // and refresh and up start the container
    await converges("the registry came back");
    assert.equal(await eventually(() => httpText(`http://${lab.machine("m2").address}:8080/`), "hello v1\n"), "hello v1\n");
  });

  test("a run that fails on one machine while it deletes something on all of them leaves a stack Pulumi still reads, and the next up converges", async () => {
    // given: the file `reg` leaves the program, and m2's container asks for an image the registry does not have
    const missing = v1.digestRef.replace(/@sha256:[0-9a-f]+$/, `@sha256:${"0".repeat(64)}`);
    expectOk(await project.config({ tags: "base,cut,kill", gateOn: "m2", gate: "r1", image: missing }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then the container fails, naming m2, and the files go everywhere
    assert.notEqual(up.code, 0, up.output);
    expectMatch(up.output, /m2\/docker\/web[^\n]*failed/);
    for (const m of ["m1", "m2", "m3"]) assert.equal(await fileOn(m, "reg"), "ABSENT");
    // and the state is one Pulumi reads (no resource that was skipped still depends on one deleted)
    const preview = await project.pulumi(["preview"]);
    expectOk(preview, "the preview after a failed run that deleted");
    assert.doesNotMatch(preview.output, /snapshot integrity/);
    // and with the image back, up converges
    expectOk(await project.config({ image: v1.digestRef }), "config");
    await converges("the failed run that deleted");
  });
});
