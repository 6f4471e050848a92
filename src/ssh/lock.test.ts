import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { describeHolder, sudoFixes, HOLDER_FILE, LOCK_DIR, LOCK_FILE, LockError, lockCommand, parseLockAnswer, pulumiCommandOf, runHolder, sameRun, type LockHolder } from "./lock";

const HOLDER: LockHolder = { stack: "dev", project: "web", command: "up", controller: "root@ctl", pid: 1234, since: "2026-11-30T19:40:00.000Z" };
const TARGET = { host: "10.213.52.11", user: "root" };

/** The lock shell with its paths moved into a scratch folder, so it runs here as it runs on a machine. */
function localLockScript(dir: string, holder: LockHolder, waitS = 0, expiryS = 30): string {
  return lockCommand(holder, { waitS, expiryS }).text.split(LOCK_DIR).join(dir);
}

const hasFlock = spawnSync("sh", ["-c", "command -v flock && command -v timeout"]).status === 0;

describe("describeHolder", () => {
  it("names the stack, project, command, controller, pid and start", () => {
    assert.equal(describeHolder(HOLDER), "stack dev of project web, `pulumi up` by root@ctl pid 1234, since 2026-11-30T19:40:00.000Z");
  });

  it("leaves out what is not known", () => {
    assert.equal(describeHolder({ controller: "ann@laptop", pid: 7, since: "2026-01-01T00:00:00.000Z" }), "by ann@laptop pid 7, since 2026-01-01T00:00:00.000Z");
    assert.equal(describeHolder({ project: "web", controller: "ann@laptop", pid: 7, since: "t" }), "project web, by ann@laptop pid 7, since t");
  });
});

describe("LockError", () => {
  it("names the machine, its address, the holder, and what to do", () => {
    // given / when
    const err = new LockError(TARGET, "m1", HOLDER);
    // then
    assert.equal(
      err.message,
      "Unable to lock m1 (10.213.52.11:22): another drove run holds it (stack dev of project web, `pulumi up` by root@ctl pid 1234, since 2026-11-30T19:40:00.000Z). " +
        "Either wait for it to finish, or if that run was killed, run again: its lock is released when its SSH session ends (within 30 s).",
    );
    assert.equal(err.name, "LockError");
    assert.equal(err.host, "root@10.213.52.11");
  });

  it("says so when the holder has not recorded itself yet, and names the bastion route", () => {
    const err = new LockError({ host: "10.0.0.5", port: 2222, jump: { host: "bastion" } }, "db1", undefined);
    assert.match(err.message, /^Unable to lock db1 \(10\.0\.0\.5:2222 via bastion:22\): another drove run holds it \(it has not recorded who it is yet\)\. Either/);
  });
});

describe("sudoFixes", () => {
  it("says how to let a login user use sudo, as every other step does", () => {
    assert.deepEqual(sudoFixes({ host: "h", user: "deploy" }, "sudo: a password is required"), [
      "let deploy run commands without a password (`echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy` as root on the machine)",
      'log in as root (`user: "root"`)',
    ]);
    assert.deepEqual(sudoFixes({ host: "h", user: "deploy" }, "mkdir: Permission denied"), []);
  });
});

describe("parseLockAnswer", () => {
  const table: { name: string; stdout: string; exited?: { code: number; stderr: string }; expected: ReturnType<typeof parseLockAnswer> }[] = [
    { name: "nothing yet", stdout: "", expected: undefined },
    { name: "a partial first line", stdout: "LOCK", expected: undefined },
    { name: "locked (the shell lives on)", stdout: "LOCKED m1\n", expected: { state: "locked", machine: "m1" } },
    { name: "busy, still being read", stdout: "BUSY m1\n{", expected: undefined },
    {
      name: "busy, with the holder's record",
      stdout: `BUSY m1\n${JSON.stringify(HOLDER)}\n`,
      exited: { code: 0, stderr: "" },
      expected: { state: "busy", machine: "m1", holder: HOLDER },
    },
    { name: "busy, the holder not recorded yet", stdout: "BUSY m1\n", exited: { code: 0, stderr: "" }, expected: { state: "busy", machine: "m1", holder: undefined } },
    { name: "busy, a record that is not drove's", stdout: 'BUSY m1\n{"who":"else"}\n', exited: { code: 0, stderr: "" }, expected: { state: "busy", machine: "m1", holder: undefined } },
    {
      name: "no flock on the machine",
      stdout: "",
      exited: { code: 127, stderr: "flock: command not found\n" },
      expected: { state: "failed", reason: "flock (util-linux) is not installed there", fixes: ["install util-linux on the machine (`apt-get install util-linux`, `dnf install util-linux`)"] },
    },
    {
      name: "another failure, with the shell's last error",
      stdout: "",
      exited: { code: 2, stderr: "mkdir: cannot create directory '/run/drove': Read-only file system\n" },
      expected: { state: "failed", reason: "mkdir: cannot create directory '/run/drove': Read-only file system", fixes: [] },
    },
    { name: "a silent failure", stdout: "", exited: { code: 1, stderr: "" }, expected: { state: "failed", reason: "the lock shell ended with exit status 1", fixes: [] } },
  ];
  for (const row of table) {
    it(row.name, () => assert.deepEqual(parseLockAnswer(row.stdout, row.exited), row.expected));
  }
});

describe("lockCommand", () => {
  it("quotes the holder's record: a stack name cannot become code", () => {
    // given a stack name made of shell syntax
    const hostile: LockHolder = { ...HOLDER, stack: "x'; touch /tmp/pwned; echo '$(id)" };
    // when
    const text = lockCommand(hostile).text;
    // then the record reaches the shell as one quoted word
    assert.ok(text.includes(`'{"stack":"x'\\''; touch /tmp/pwned; echo '\\''$(id)"`), text);
    assert.ok(text.includes(`flock -w 2 9`));
    assert.ok(text.includes(`exec 9>>${LOCK_FILE}`));
    assert.ok(text.includes(`> ${HOLDER_FILE}.tmp && mv -f ${HOLDER_FILE}.tmp ${HOLDER_FILE}`));
  });

  it("takes the lock, records the holder, holds while heartbeats come, and lets go at end of input", { skip: hasFlock ? false : "flock or timeout is not installed here" }, () => {
    // given a lock shell run here (paths in a scratch folder), fed two heartbeats then end of input
    const dir = mkdtempSync(join(tmpdir(), "drove-lock-"));
    const stdout = execFileSync("sh", ["-c", localLockScript(dir, HOLDER)], { input: "\n\n", encoding: "utf8" });
    // then it said LOCKED, and on its way out removed its record and released the lock
    assert.match(stdout, /^LOCKED \S+\n$/);
    assert.throws(() => readFileSync(join(dir, "lock.json")));
    assert.equal(spawnSync("flock", ["-n", join(dir, "lock"), "true"]).status, 0, "the lock is still held");
  });

  it("reports BUSY and the holder's record when another holds the lock", { skip: hasFlock ? false : "flock or timeout is not installed here" }, async () => {
    // given a first holder that keeps the lock while its input stays open
    const dir = mkdtempSync(join(tmpdir(), "drove-lock-"));
    const first = spawn("sh", ["-c", localLockScript(dir, HOLDER)], { stdio: ["pipe", "ignore", "ignore"] });
    try {
      for (let i = 0; i < 50 && !existsSync(join(dir, "lock.json")); i++) await new Promise((r) => setTimeout(r, 100));
      // when a second one tries
      const second: LockHolder = { ...HOLDER, stack: "prod", pid: 99 };
      const out = execFileSync("sh", ["-c", localLockScript(dir, second)], { input: "", encoding: "utf8" });
      // then it is told who holds it
      const answer = parseLockAnswer(out, { code: 0, stderr: "" });
      assert.equal(answer?.state, "busy");
      assert.deepEqual(answer?.state === "busy" ? answer.holder : undefined, HOLDER);
    } finally {
      // and the first lets go at the end of its input
      first.stdin.end();
      await new Promise((r) => first.on("close", r));
    }
    assert.equal(spawnSync("flock", ["-n", join(dir, "lock"), "true"]).status, 0, "the lock is still held");
  });
  it("lets go by itself when no heartbeat comes (the run's machine or network died silently)", { skip: hasFlock ? false : "flock or timeout is not installed here" }, async () => {
    // given a holder whose input stays open but silent, with a 1 s expiry
    const dir = mkdtempSync(join(tmpdir(), "drove-lock-"));
    const holder = spawn("sh", ["-c", localLockScript(dir, HOLDER, 0, 1)], { stdio: ["pipe", "pipe", "ignore"] });
    let out = "";
    holder.stdout.on("data", (d: Buffer) => (out += d.toString()));
    // when it is left alone, it ends on its own, its input still open
    const code = await new Promise((r) => holder.on("close", r));
    // then it had the lock, and no longer holds it nor its record
    assert.equal(code, 0);
    assert.match(out, /^LOCKED /);
    assert.ok(!existsSync(join(dir, "lock.json")));
    assert.equal(spawnSync("flock", ["-n", join(dir, "lock"), "true"]).status, 0, "the lock is still held");
    holder.stdin.end();
  });
});

describe("pulumiCommandOf and runHolder", () => {
  const table: [string, string[], string | undefined][] = [
    ["up", ["pulumi", "up", "--yes"], "up"],
    ["a full path and global flags with values", ["/opt/pulumi/bin/pulumi", "-C", "/srv/infra", "--color=never", "-v", "9", "destroy", "--yes"], "destroy"],
    ["preview", ["pulumi", "preview", "--diff"], "preview"],
    ["not pulumi", ["node", "up"], undefined],
    ["nothing", [], undefined],
  ];
  for (const [name, argv, expected] of table) it(`finds the command: ${name}`, () => assert.equal(pulumiCommandOf(argv), expected));

  const env = { PULUMI_STACK: "dev", PULUMI_PROJECT: "web", PULUMI_CONFIG_PASSPHRASE: "hunter2" };
  const now = new Date("2026-11-30T19:40:00.000Z");

  it("locks in a run that may change machines, naming stack, project and command, and no secret", () => {
    // given / when
    const h = runHolder(["pulumi", "up", "--yes", "--config", "db:password=hunter2"], env, now);
    // then
    assert.ok(h);
    assert.equal(h.stack, "dev");
    assert.equal(h.project, "web");
    assert.equal(h.command, "up");
    assert.equal(h.since, "2026-11-30T19:40:00.000Z");
    assert.match(h.controller, /^\S+@\S+$/);
    assert.doesNotMatch(JSON.stringify(h), /hunter2/);
    assert.ok(runHolder(["pulumi", "destroy", "--yes"], env, now));
  });

  it("takes no lock in preview or refresh, nor outside Pulumi", () => {
    assert.equal(runHolder(["pulumi", "preview"], env, now), undefined);
    assert.equal(runHolder(["pulumi", "pre"], env, now), undefined);
    assert.equal(runHolder(["pulumi", "refresh", "--yes"], env, now), undefined);
    assert.equal(runHolder(["node", "--test"], env, now), undefined);
    assert.equal(runHolder([], env, now), undefined);
  });

  it("tells a run's own passes from another run", () => {
    assert.ok(sameRun(HOLDER, { ...HOLDER, since: "later" }));
    assert.ok(!sameRun(HOLDER, { ...HOLDER, pid: 1235 }));
    assert.ok(!sameRun(HOLDER, { ...HOLDER, controller: "root@other" }));
  });
});
