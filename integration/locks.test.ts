/**
 * Host locks through the real `pulumi` CLI, with two stacks of one program on
 * the same lab machines: a run is refused on a machine another run holds,
 * naming that run, before anything of it changes there (on a first run its
 * other machines converge; a run that must first refresh what it has there
 * stops before any change); once the first run is done the second succeeds;
 * a preview takes no lock. A run killed
 * outright (SIGKILL of `pulumi up`) leaves no lock behind: the next run goes
 * through without any cleanup, and the killed stack recovers.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { type BackgroundRun, bootTestLab, eventually, expectMatch, expectOk, processAlive, sh, type TestLab, TestProject } from "./harness";
import { HOLDER_FILE } from "../src/ssh/lock";

let lab: TestLab;
let a: TestProject;
let b: TestProject;
const A_PATH = "/etc/drovelk-a.conf";
const B_PATH = "/etc/drovelk-b.conf";
const B_PATH2 = "/etc/drovelk-b2.conf";
const B_PATH3 = "/etc/drovelk-b3.conf";

/** What a machine holds at `path`: its content, or ABSENT. */
async function fileOn(machine: string, path: string): Promise<string> {
  return (await lab.ssh(machine, sh`cat ${path} 2>/dev/null || echo ABSENT`)).stdout.trim();
}

/** The stack named by the lock record on a machine, or NONE. */
async function lockStack(machine: string): Promise<string> {
  const text = (await lab.ssh(machine, sh`cat ${HOLDER_FILE} 2>/dev/null`)).stdout.trim();
  return text ? ((JSON.parse(text) as { stack?: string }).stack ?? "?") : "NONE";
}

/** systemd's view of a unit: `activating`, `active`... */
async function unitState(machine: string, unit: string): Promise<string> {
  return (await lab.ssh(machine, sh`systemctl is-active ${unit} 2>&1 || true`)).stdout.trim();
}

/** Starts `pulumi up --yes` of a project's stack in the background, as a second terminal would. */
function startUp(project: TestProject, stack: string): BackgroundRun {
  return project.pulumiInBackground(["up", "--yes"], { PULUMI_STACK: stack });
}

/** The processes a `pulumi` started (its language host, its provider plugins). */
function childrenOf(pid: number): { pid: number; args: string }[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(pid)], { encoding: "utf8" });
  } catch {
    return []; // ps says nothing, and fails, when there are none
  }
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => ({ pid: Number(l.trim().split(/\s+/)[0]), args: l.trim().replace(/^\d+\s+/, "") }));
}

describe("Host locks: two runs at once against the same machines, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovelk", 52, 2);
    a = await TestProject.create("locks.ts", "lka");
    expectOk(await a.config({ path: A_PATH, only: "m1", gateOn: "m1", gate: "a1" }), "config of lka");
    b = await TestProject.create("locks.ts", "lkb");
    expectOk(await b.config({ path: B_PATH }), "config of lkb");
  });

  after(async () => {
    if (lab) await lab.ssh("m1", sh`touch /run/drovelk-gate-a1 /run/drovelk-gate-a2 /run/drovelk-gate-a3 /run/drovelk-gate-a4`).catch(() => undefined);
    if (a) await a.pulumi(["destroy", "--yes"]);
    if (b) await b.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("a run is refused on the machine another run holds, naming it, and changes nothing there; its other machine converges; once the first run is done it succeeds", async () => {
    // given stack lka's up, at its slow step on m1 (so holding m1's lock)
    const upA = startUp(a, "lka");
    assert.equal(await eventually(() => unitState("m1", "drovelk-gate-a1.service"), "activating", 400), "activating", "lka's up never reached its slow step");
    assert.equal(await lockStack("m1"), "lka");
    // when stack lkb's up runs against m1 and m2
    const upB = await b.pulumi(["up", "--yes"]);
    // then it fails for m1, naming the machine and the run that holds it
    assert.notEqual(upB.code, 0, `lkb's up should have failed:\n${upB.output}`);
    assert.match(
      upB.output,
      new RegExp(`Unable to lock m1 \\(10\\.213\\.52\\.11:22\\): another drove run holds it \\(stack lka of project drove-it, \`pulumi up\` by \\S+@\\S+ pid ${upA.pid}, since \\d{4}-`),
    );
    expectMatch(upB.output, /Either wait for it to finish, or if that run was killed, run again: its lock is released when its SSH session ends \(within 30 s\)/);
    // and nothing of lkb changed on m1, while m2 (free) converged
    assert.equal(await fileOn("m1", B_PATH), "ABSENT");
    assert.equal(await fileOn("m2", B_PATH), "written by stack lkb");
    // and lka's run was not disturbed: once its slow step is done, it succeeds
    await lab.ssh("m1", sh`touch /run/drovelk-gate-a1`);
    expectOk(await upA.done, "lka's up");
    assert.equal(await fileOn("m1", A_PATH), "written by stack lka");
    assert.equal(await lockStack("m1"), "NONE", "a finished run left its lock record");
    // when lkb runs again, it converges m1 too
    expectOk(await b.pulumi(["up", "--yes"]), "lkb's second up");
    assert.equal(await fileOn("m1", B_PATH), "written by stack lkb");
    // and a second preview of each stack shows no changes
    expectOk(await a.pulumi(["preview", "--expect-no-changes"]), "lka's preview");
    expectOk(await b.pulumi(["preview", "--expect-no-changes"]), "lkb's preview");
  });

  test("a preview takes no lock: it runs while another stack's up holds the machine", async () => {
    // given lka's up at a new slow step on m1
    expectOk(await a.config({ gate: "a2" }), "config of lka");
    const upA = startUp(a, "lka");
    assert.equal(await eventually(() => unitState("m1", "drovelk-gate-a2.service"), "activating", 400), "activating", "lka's up never reached its slow step");
    // when lkb previews (and refreshes) the same machines
    const preview = await b.pulumi(["preview", "--refresh", "--expect-no-changes"]);
    // then it reads them and says there is nothing to do
    expectOk(preview, "lkb's preview while lka's up holds m1");
    await lab.ssh("m1", sh`touch /run/drovelk-gate-a2`);
    expectOk(await upA.done, "lka's up");
  });

  test("a run that must first refresh what it has on a held machine stops before changing anything, on any machine", async () => {
    // given lkb deployed on m1 and m2, and lka's up at a new slow step on m1
    expectOk(await a.config({ gate: "a3" }), "config of lka");
    const upA = startUp(a, "lka");
    assert.equal(await eventually(() => unitState("m1", "drovelk-gate-a3.service"), "activating", 400), "activating", "lka's up never reached its slow step");
    // when lkb moves its files (its project refreshes before every up)
    expectOk(await b.config({ path: B_PATH2 }), "config of lkb");
    const upB = await b.pulumi(["up", "--yes"]);
    // then it stops at the refresh of m1, naming the holder, and nothing moved on m1 or m2
    assert.notEqual(upB.code, 0, `lkb's up should have failed:\n${upB.output}`);
    expectMatch(upB.output, new RegExp(`Unable to lock m1 \\(10\\.213\\.52\\.11:22\\): another drove run holds it \\(stack lka of project drove-it, \`pulumi up\` by \\S+ pid ${upA.pid}, `));
    for (const m of ["m1", "m2"]) {
      assert.equal(await fileOn(m, B_PATH), "written by stack lkb");
      assert.equal(await fileOn(m, B_PATH2), "ABSENT");
    }
    // and once lka is done, lkb's up goes through
    await lab.ssh("m1", sh`touch /run/drovelk-gate-a3`);
    expectOk(await upA.done, "lka's up");
    expectOk(await b.pulumi(["up", "--yes"]), "lkb's up after lka's");
    assert.equal(await fileOn("m1", B_PATH2), "written by stack lkb");
    assert.equal(await fileOn("m1", B_PATH), "ABSENT");
  });

  test("a run killed outright (SIGKILL) leaves no lock: the next run on that machine succeeds without cleanup, and the killed stack recovers", async () => {
    // given lka's up at a new slow step on m1, killed there
    expectOk(await a.config({ gate: "a4" }), "config of lka");
    const upA = startUp(a, "lka");
    assert.equal(await eventually(() => unitState("m1", "drovelk-gate-a4.service"), "activating", 400), "activating", "lka's up never reached its slow step");
    assert.equal(await lockStack("m1"), "lka");
    const plugins = childrenOf(upA.pid);
    const providers = plugins.filter((p) => /pulumi-resource-drove/.test(p.args));
    assert.ok(providers.length > 0, `no drove provider under pulumi up: ${JSON.stringify(plugins)}`);
    upA.kill();
    const killed = await upA.done;
    assert.ok(!processAlive(upA.pid), "pulumi up is still running");
    assert.notEqual(killed.code, 0);
    // and its provider, orphaned, exits and lets go of m1 (no one touched m1)
    assert.equal(await eventually(async () => providers.filter((p) => processAlive(p.pid)).length, 0), 0, "the killed run's provider lives on");
    assert.equal(await eventually(() => lockStack("m1"), "NONE"), "NONE", "the killed run's lock is still held");
    // (Pulumi's language host outlives a killed CLI too; it holds nothing of drove's: the test ends it)
    for (const p of plugins) if (processAlive(p.pid)) process.kill(p.pid, "SIGKILL");
    // when lkb changes its files on m1 and m2 (no cleanup of any kind before)
    expectOk(await b.config({ path: B_PATH3 }), "config of lkb");
    const upB = await b.pulumi(["up", "--yes"]);
    // then it succeeds: the killed run's lock went with its provider
    expectOk(upB, "lkb's up after lka's run was killed");
    assert.equal(await fileOn("m1", B_PATH3), "written by stack lkb");
    assert.equal(await fileOn("m1", B_PATH2), "ABSENT");
    // and the killed stack recovers as a user would do it: its slow step is let through, Pulumi's
    // own lock on the stack (left by the killed CLI, nothing of drove's) is cancelled, then up
    await lab.ssh("m1", sh`touch /run/drovelk-gate-a4`);
    expectOk(await a.pulumi(["cancel", "--yes"]), "pulumi cancel of lka");
    const recover = await a.pulumi(["up", "--yes"]);
    expectOk(recover, "lka's up after it was killed");
    assert.equal(await unitState("m1", "drovelk-gate-a4.service"), "active");
    expectOk(await a.pulumi(["preview", "--expect-no-changes"]), "lka's preview");
    expectOk(await b.pulumi(["preview", "--expect-no-changes"]), "lkb's preview");
  });
});
