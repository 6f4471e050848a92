/**
 * Directory and SystemdUnit end to end, through the real `pulumi` CLI, on lab
 * machines (systemd as PID 1): create; no changes; drift (a unit stopped by
 * hand, a directory chmod-ed by hand) shown per property and repaired; an
 * ExecStart change updated in place; a rename replaces the unit; a unit whose
 * program is missing fails clearly while the rest converges; destroy leaves
 * no unit behind, and no directory drove made.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";

let lab: TestLab;
let project: TestProject;
const MACHINES = ["m1", "m2"];
const DIR = "/srv/drove-hello";
const UNIT = "drove-hello.service";
const UNIT2 = "drove-hello2.service";
const OUT = "/run/drove-hello.out";


/** Runs a command on a machine; its stdout, trimmed. */
async function on(machine: string, command: ReturnType<typeof sh>): Promise<string> {
  return (await lab.ssh(machine, command)).stdout.trim();
}

/** `enabled active` as systemctl reports them. */
function unitState(machine: string, name: string): Promise<string> {
  return on(machine, sh`echo "$(systemctl is-enabled ${name} 2>&1) $(systemctl is-active ${name} 2>&1)"`);
}

/** `mode owner`, or ABSENT. */
function dirState(machine: string, path: string): Promise<string> {
  return on(machine, sh`if [ -d ${path} ]; then stat -c '%a %U' ${path}; else echo ABSENT; fi`);
}

/** How many times systemd has reloaded its units since boot. */
async function reloads(machine: string): Promise<number> {
  return Number(await on(machine, sh`journalctl _PID=1 -o cat --no-pager | grep -c '^Reloading'`));
}

/** Calls `get` (every 0.5 s, up to 10 s) until `done` holds for its answer; returns the last answer. */
async function waitFor<T>(get: () => Promise<T>, done: (x: T) => boolean): Promise<T> {
  let last = await get();
  for (let i = 0; i < 20 && !done(last); i++) {
    await new Promise((r) => setTimeout(r, 500));
    last = await get();
  }
  return last;
}

/** Waits (up to 10 s) for a file on a machine to hold `expected`; returns what it last held. */
async function waitForContent(machine: string, path: string, expected: RegExp): Promise<string> {
  return waitFor(() => on(machine, sh`cat ${path} 2>/dev/null`), (x) => expected.test(x));
}

describe("Directory and SystemdUnit on lab machines, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droveun", 32, 2);
    project = await TestProject.create("units.ts");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up makes the directory and an enabled, running unit on every machine; a second preview shows no changes", async () => {
    // given a program with a directory, an adopted /srv and a unit per machine
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "pulumi up");
    assert.match(up.stdout, /\+ 9 created/);
    for (const m of MACHINES) {
      assert.equal(await unitState(m, UNIT), "enabled active", `on ${m}`);
      assert.equal(await dirState(m, DIR), "750 root", `on ${m}`);
      assert.equal(await on(m, sh`cat /etc/systemd/system/${UNIT}`), "[Unit]\nDescription=drove integration test: says hello\n\n[Service]\nType=exec\nExecStart=/bin/sh -c 'while true; do date > /run/drove-hello.out; sleep 1; done'\n\n[Install]\nWantedBy=multi-user.target");
      assert.match(await waitForContent(m, OUT, /\d\d:\d\d:\d\d/), /\d\d:\d\d:\d\d/, `the service writes the date on ${m}`);
    }
    const again = await project.pulumi(["preview", "--expect-no-changes"]);
    expectOk(again, "the second preview");
    assert.match(again.stdout, /9 unchanged/);
  });

  test("a unit stopped and disabled by hand and a directory chmod-ed by hand show as drift per property; up repairs them without a daemon-reload", async () => {
    // given on m2: the unit stopped and disabled, the directory opened up
    await lab.ssh("m2", sh`systemctl stop ${UNIT} && systemctl disable ${UNIT} && chmod 0777 ${DIR}`);
    assert.equal(await unitState("m2", UNIT), "disabled inactive");
    const reloadsBefore = { m1: await reloads("m1"), m2: await reloads("m2") };
    const startedOnM1 = await on("m1", sh`systemctl show -p ExecMainStartTimestampMonotonic --value ${UNIT}`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    // then the drift is shown property by property, for m2 alone
    expectOk(preview, "preview --refresh");
    assert.match(preview.stdout, /active\s*: false => true/);
    assert.match(preview.stdout, /enabled\s*: false => true/);
    assert.match(preview.stdout, /mode\s*: "0777" => "0750"/);
    assert.match(preview.stdout, /~ 2 to update/);
    assert.notEqual((await project.pulumi(["preview", "--expect-no-changes"])).code, 0, "drift must count as a change");
    // and up repairs it: enabled and started (not reloaded), chmod-ed back; m1 untouched
    const up = await project.pulumi(["up", "--yes"]);
    expectOk(up, "the repairing up");
    assert.match(up.stdout, /~ 2 updated/);
    assert.equal(await unitState("m2", UNIT), "enabled active");
    assert.equal(await dirState("m2", DIR), "750 root");
    assert.deepEqual({ m1: await reloads("m1"), m2: await reloads("m2") }, reloadsBefore, "enabling and starting a unit whose file did not change needs no daemon-reload");
    assert.equal(await on("m1", sh`systemctl show -p ExecMainStartTimestampMonotonic --value ${UNIT}`), startedOnM1, "m1's unit was not restarted");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("changing ExecStart updates the unit in place: the diff shows the line, the unit runs the new command, systemd needs no reload", async () => {
    // given
    const reloadsBefore = await reloads("m1");
    expectOk(await project.config({ execStart: "/bin/sh -c 'while true; do echo changed > /run/drove-hello.out; sleep 1; done'" }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:SystemdUnit: \(update\)/);
    assert.doesNotMatch(preview.stdout, /replace/);
    assert.match(preview.stdout, /- ExecStart=\/bin\/sh -c 'while true; do date > \/run\/drove-hello\.out; sleep 1; done'/);
    assert.match(preview.stdout, /\+ ExecStart=\/bin\/sh -c 'while true; do echo changed > \/run\/drove-hello\.out; sleep 1; done'/);
    expectOk(up, "up");
    assert.match(up.stdout, /~ 2 updated/);
    for (const m of MACHINES) {
      assert.equal(await waitForContent(m, OUT, /^changed$/), "changed", `the unit on ${m} runs the new command`);
      assert.equal(await on(m, sh`systemctl show -p NeedDaemonReload ${UNIT}`), "NeedDaemonReload=no", `on ${m}`);
      assert.equal(await unitState(m, UNIT), "enabled active", `on ${m}`);
    }
    assert.equal(await reloads("m1"), reloadsBefore + 1, "one daemon-reload for one changed file");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the update");
  });

  test("renaming the unit replaces it: the old one is stopped and gone, the new one runs", async () => {
    // given
    expectOk(await project.config({ unitName: UNIT2 }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:SystemdUnit: \(replace\)/);
    expectOk(up, "up");
    assert.match(up.stdout, /\+-2 replaced/);
    for (const m of MACHINES) {
      assert.equal(await on(m, sh`ls /etc/systemd/system/${UNIT} /etc/systemd/system/multi-user.target.wants/${UNIT} 2>&1 | grep -c 'No such file'`), "2", `the old unit's file and link are gone on ${m}`);
      assert.notEqual((await lab.ssh(m, sh`systemctl cat ${UNIT}`)).code, 0, `systemd no longer has the old unit on ${m}`);
      assert.equal(await on(m, sh`systemctl is-active ${UNIT}`), "inactive", `on ${m}`);
      assert.equal(await unitState(m, UNIT2), "enabled active", `on ${m}`);
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the replacement");
  });

  test("a unit whose program is missing fails up, naming host and unit, with its log and a fix; the rest converges; removing it leaves nothing", async () => {
    // given a broken unit on m1, and a new directory mode everywhere
    expectOk(await project.config({ brokenOn: "m1", dirMode: "0700" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then the run fails for that unit, saying where, why and what to do
    assert.notEqual(up.code, 0, up.output);
    assert.match(
      up.output,
      /Unable to start unit drove-broken\.service on root@10\.213\.32\.11: Job for drove-broken\.service failed because the control process exited with error code\. Either check ExecStart= in drove-broken\.service/,
    );
    expectMatch(up.output, /Its last log lines \(journalctl -u drove-broken\.service -n 5 --no-pager\):/);
    expectMatch(up.output, /drove-missing-program: No such file or directory/);
    assert.doesNotMatch(up.output, /BEGIN OPENSSH PRIVATE KEY/);
    // and everything else converged, on both machines
    for (const m of MACHINES) {
      assert.equal(await dirState(m, DIR), "700 root", `on ${m}`);
      assert.equal(await unitState(m, UNIT2), "enabled active", `on ${m}`);
    }
    assert.equal(await on("m2", sh`ls /etc/systemd/system/drove-broken.service 2>&1 | grep -c 'No such file'`), "1");
    // when the broken unit leaves the program
    expectOk(await project.pulumi(["config", "rm", "brokenOn"]), "config rm");
    const fixed = await project.pulumi(["up", "--yes"]);
    // then it is removed from m1 entirely: file, link, loaded (failed) unit
    expectOk(fixed, "the up without the broken unit");
    assert.match(fixed.stdout, /- 1 deleted/);
    assert.equal(await on("m1", sh`ls /etc/systemd/system/drove-broken.service /etc/systemd/system/multi-user.target.wants/drove-broken.service 2>&1 | grep -c 'No such file'`), "2");
    assert.equal(await on("m1", sh`systemctl list-units --all --no-legend drove-broken.service`), "", "the failed unit is forgotten");
    assert.notEqual((await lab.ssh("m1", sh`systemctl cat drove-broken.service`)).code, 0);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after convergence");
  });

  test("destroy stops and removes the unit, removes the directory drove made, and leaves the adopted one, saying why", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    assert.match(down.stdout, /- 9 deleted/);
    expectMatch(down.output, /left directory \/srv on root@10\.213\.32\.1[12] in place: \/srv was there before drove managed it/);
    for (const m of MACHINES) {
      assert.equal(await on(m, sh`ls /etc/systemd/system/${UNIT2} /etc/systemd/system/multi-user.target.wants/${UNIT2} 2>&1 | grep -c 'No such file'`), "2", `on ${m}`);
      // systemd forgets a stopped unit asynchronously (in the lab, once its last process is gone), and
      // asking about a unit by name loads a placeholder for a moment: so ask for the list first, and wait.
      assert.equal(await waitFor(() => on(m, sh`systemctl list-units --all --no-legend 'drove-*'`), (x) => x === ""), "", `no drove unit is loaded on ${m}`);
      const cat = await lab.ssh(m, sh`systemctl cat ${UNIT2}`);
      assert.notEqual(cat.code, 0, `systemd still has ${UNIT2} on ${m}: ${cat.stdout}`);
      assert.equal(await on(m, sh`systemctl is-active ${UNIT2}`), "inactive", `on ${m}`);
      assert.equal(await dirState(m, DIR), "ABSENT", `on ${m}`);
      assert.equal(await dirState(m, "/srv"), "755 root", `the adopted /srv stays on ${m}`);
    }
  });
});
