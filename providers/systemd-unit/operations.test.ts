import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import type { FileFact } from "../file/facts";
import { sha256 } from "../file/operations";
import { parseUnitFact, unitFactCommand, type UnitFact } from "./facts";
import { ConflictError, planUnit, planUnitRemoval, type UnitDesired, type UnitStep } from "./operations";

const RUNS_SYSTEMD = existsSync("/run/systemd/system");

const HELLO = "[Unit]\nDescription=hello\n\n[Service]\nExecStart=/usr/local/bin/hello\n\n[Install]\nWantedBy=multi-user.target\n";
const HELLO2 = HELLO.replace("/usr/local/bin/hello", "/usr/local/bin/hello --loud");

const desired = (over: Partial<UnitDesired> = {}): UnitDesired => ({ name: "hello.service", content: HELLO, enabled: true, active: true, ...over });

const fileWith = (content: string): FileFact => ({ state: "file", mode: "0644", owner: "root", group: "root", size: Buffer.byteLength(content), sha256: sha256(content), content });

/** A unit installed as drove leaves it: file in place, enabled, running, loaded. */
const installed = (over: Partial<UnitFact> = {}): UnitFact => ({ file: fileWith(HELLO), enablement: "enabled", activity: "active", needDaemonReload: false, ...over });

/** Nothing of the unit on the machine. */
const nothing: UnitFact = { file: { state: "absent" }, enablement: "", activity: "inactive", needDaemonReload: false };

type PlainStep = { description: string; command: string; stdin?: string; starts?: string };

/** Steps as plain data, so a table can compare them whole. */
function plain(steps: UnitStep[]): PlainStep[] {
  return steps.map((s) => ({
    description: s.description,
    command: s.command.text,
    ...(s.stdin !== undefined ? { stdin: s.stdin } : {}),
    ...(s.starts !== undefined ? { starts: s.starts } : {}),
  }));
}

const WRITE = `umask 077 && tmp=$(mktemp /etc/systemd/system/.drove.XXXXXXXX) && { cat > "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" /etc/systemd/system/hello.service; } || { rm -f "$tmp"; exit 1; }`;
const RELOAD = "systemctl daemon-reload";
const START = "systemctl start hello.service && sleep 1 && systemctl is-active --quiet hello.service";
const RESTART = "systemctl restart hello.service && sleep 1 && systemctl is-active --quiet hello.service";

describe("planUnit", () => {
  const table: { name: string; desired: UnitDesired; fact: UnitFact; steps: PlainStep[] }[] = [
    {
      name: "everything as asked -> no-op: no write, no daemon-reload, no restart",
      desired: desired(),
      fact: installed(),
      steps: [],
    },
    {
      name: "new unit -> write, enable, daemon-reload (once), start",
      desired: desired(),
      fact: nothing,
      steps: [
        { description: "create /etc/systemd/system/hello.service", command: WRITE, stdin: HELLO },
        { description: "enable hello.service", command: "systemctl enable --no-reload hello.service" },
        { description: "reload systemd: hello.service changed", command: RELOAD },
        { description: "start hello.service", command: START, starts: "start" },
      ],
    },
    {
      name: "content changed, running -> write, daemon-reload, restart (enablement untouched)",
      desired: desired({ content: HELLO2 }),
      fact: installed(),
      steps: [
        { description: "write new content to /etc/systemd/system/hello.service", command: WRITE, stdin: HELLO2 },
        { description: "reload systemd: hello.service changed", command: RELOAD },
        { description: "restart hello.service: its definition changed", command: RESTART, starts: "restart" },
      ],
    },
    {
      name: "content changed, stopped -> write, daemon-reload, start",
      desired: desired({ content: HELLO2 }),
      fact: installed({ activity: "failed" }),
      steps: [
        { description: "write new content to /etc/systemd/system/hello.service", command: WRITE, stdin: HELLO2 },
        { description: "reload systemd: hello.service changed", command: RELOAD },
        { description: "start hello.service", command: START, starts: "start" },
      ],
    },
    {
      name: "content changed, meant to be stopped -> write, daemon-reload, no restart",
      desired: desired({ content: HELLO2, active: false }),
      fact: installed({ activity: "inactive" }),
      steps: [
        { description: "write new content to /etc/systemd/system/hello.service", command: WRITE, stdin: HELLO2 },
        { description: "reload systemd: hello.service changed", command: RELOAD },
      ],
    },
    {
      name: "[Install] section changed on an enabled unit -> enable again, so the old links go",
      desired: desired({ content: HELLO.replace("multi-user.target", "graphical.target") }),
      fact: installed(),
      steps: [
        { description: "write new content to /etc/systemd/system/hello.service", command: WRITE, stdin: HELLO.replace("multi-user.target", "graphical.target") },
        { description: "enable hello.service again: its [Install] section changed", command: "systemctl reenable --no-reload hello.service" },
        { description: "reload systemd: hello.service changed", command: RELOAD },
        { description: "restart hello.service: its definition changed", command: RESTART, starts: "restart" },
      ],
    },
    {
      name: "only enabled changed -> enable only, without the daemon-reload systemctl enable would do by itself",
      desired: desired(),
      fact: installed({ enablement: "disabled" }),
      steps: [{ description: "enable hello.service", command: "systemctl enable --no-reload hello.service" }],
    },
    {
      name: "enabled at runtime only -> enable for good",
      desired: desired(),
      fact: installed({ enablement: "enabled-runtime" }),
      steps: [{ description: "enable hello.service", command: "systemctl enable --no-reload hello.service" }],
    },
    {
      name: "only active changed (someone stopped it) -> start only",
      desired: desired(),
      fact: installed({ activity: "inactive" }),
      steps: [{ description: "start hello.service", command: START, starts: "start" }],
    },
    {
      name: "already on its way up (activating) -> no-op",
      desired: desired(),
      fact: installed({ activity: "activating" }),
      steps: [],
    },
    {
      name: "inactive and disabled desired, unit enabled and running -> disable, stop",
      desired: desired({ enabled: false, active: false }),
      fact: installed(),
      steps: [
        { description: "disable hello.service", command: "systemctl disable --no-reload hello.service" },
        { description: "stop hello.service", command: "systemctl stop hello.service" },
      ],
    },
    {
      name: "inactive and disabled desired, unit already so -> no-op",
      desired: desired({ enabled: false, active: false }),
      fact: installed({ enablement: "disabled", activity: "inactive" }),
      steps: [],
    },
    {
      name: "inactive and disabled desired, new unit -> write and daemon-reload only",
      desired: desired({ enabled: false, active: false }),
      fact: nothing,
      steps: [
        { description: "create /etc/systemd/system/hello.service", command: WRITE, stdin: HELLO },
        { description: "reload systemd: hello.service changed", command: RELOAD },
      ],
    },
    {
      name: "static unit (no [Install]) meant to be disabled -> nothing to disable",
      desired: desired({ enabled: false }),
      fact: installed({ enablement: "static" }),
      steps: [],
    },
    {
      name: "same content but systemd has not loaded it (a run stopped half-way) -> daemon-reload and restart",
      desired: desired(),
      fact: installed({ needDaemonReload: true }),
      steps: [
        { description: "reload systemd: it has not loaded the current /etc/systemd/system/hello.service yet", command: RELOAD },
        { description: "restart hello.service: its definition changed", command: RESTART, starts: "restart" },
      ],
    },
    {
      name: "content too big for the probe to send, digest equal -> no-op",
      desired: desired(),
      fact: installed({ file: { ...(fileWith(HELLO) as Extract<FileFact, { state: "file" }>), content: undefined } }),
      steps: [],
    },
    {
      name: "a name that needs quoting is quoted everywhere",
      desired: desired({ name: "my\\x2dapp.service", active: false }),
      fact: installed({ enablement: "disabled", activity: "inactive" }),
      steps: [{ description: "enable my\\x2dapp.service", command: "systemctl enable --no-reload 'my\\x2dapp.service'" }],
    },
  ];

  for (const row of table) {
    it(row.name, () => {
      // given
      const { desired: d, fact } = row;

      // when
      const steps = planUnit(d, fact);

      // then
      assert.deepEqual(plain(steps), row.steps);
    });
  }

  it("refuses to write through a symbolic link (a masked unit)", () => {
    // given
    const fact = installed({ file: { state: "other", type: "symbolic link" }, enablement: "masked" });

    // when / then
    assert.throws(
      () => planUnit(desired(), fact),
      (err: unknown) => {
        assert.ok(err instanceof ConflictError);
        assert.equal(err.message, "/etc/systemd/system/hello.service is a symbolic link, not a regular file, and drove does not replace it");
        return true;
      },
    );
  });
});

describe("planUnitRemoval", () => {
  const table: { name: string; fact: UnitFact; steps: PlainStep[] }[] = [
    {
      name: "present, enabled and running -> stop, disable, remove, daemon-reload",
      fact: installed(),
      steps: [
        { description: "stop hello.service", command: "systemctl stop hello.service" },
        { description: "disable hello.service", command: "systemctl disable --no-reload hello.service" },
        { description: "remove /etc/systemd/system/hello.service", command: "rm -f /etc/systemd/system/hello.service" },
        { description: "reload systemd: hello.service is gone", command: RELOAD },
      ],
    },
    {
      name: "present, disabled and stopped -> remove, daemon-reload",
      fact: installed({ enablement: "disabled", activity: "inactive" }),
      steps: [
        { description: "remove /etc/systemd/system/hello.service", command: "rm -f /etc/systemd/system/hello.service" },
        { description: "reload systemd: hello.service is gone", command: RELOAD },
      ],
    },
    {
      name: "present and failed -> disable, remove, daemon-reload, forget the failure",
      fact: installed({ activity: "failed" }),
      steps: [
        { description: "disable hello.service", command: "systemctl disable --no-reload hello.service" },
        { description: "remove /etc/systemd/system/hello.service", command: "rm -f /etc/systemd/system/hello.service" },
        { description: "reload systemd: hello.service is gone", command: RELOAD },
        { description: "forget that hello.service failed", command: "systemctl reset-failed hello.service" },
      ],
    },
    {
      name: "absent -> no-op",
      fact: nothing,
      steps: [],
    },
    {
      name: "not drove's file (a link) -> no-op",
      fact: installed({ file: { state: "other", type: "symbolic link" } }),
      steps: [],
    },
  ];

  for (const row of table) {
    it(row.name, () => {
      // given
      const { fact } = row;

      // when
      const steps = planUnitRemoval("hello.service", fact);

      // then
      assert.deepEqual(plain(steps), row.steps);
    });
  }
});

describe("parseUnitFact", () => {
  const b64 = Buffer.from(HELLO).toString("base64");
  const fileLines = `file 644 root root ${Buffer.byteLength(HELLO)}\ncontent ${b64}\n`;

  it("parses an installed, enabled, running unit", () => {
    // given
    const stdout = `${fileLines}@systemd\nenabled=enabled\nActiveState=active\nNeedDaemonReload=no\n`;

    // when
    const fact = parseUnitFact(stdout);

    // then
    assert.deepEqual(fact, { file: fileWith(HELLO), enablement: "enabled", activity: "active", needDaemonReload: false });
  });

  it("parses a unit systemd does not know, with an empty is-enabled answer", () => {
    // given
    const stdout = "absent\n@systemd\nenabled=\nActiveState=inactive\nNeedDaemonReload=no\n";

    // when
    const fact = parseUnitFact(stdout);

    // then
    assert.deepEqual(fact, nothing);
  });

  it("parses a unit whose file changed since systemd loaded it", () => {
    // given
    const stdout = `${fileLines}@systemd\nenabled=disabled\nActiveState=failed\nNeedDaemonReload=yes\n`;

    // when
    const fact = parseUnitFact(stdout);

    // then
    assert.equal(fact.needDaemonReload, true);
    assert.equal(fact.activity, "failed");
    assert.equal(fact.enablement, "disabled");
  });

  for (const [name, stdout] of [
    ["empty output", ""],
    ["no systemd part", "absent\n"],
    ["no ActiveState", "absent\n@systemd\nenabled=\nActiveState=\nNeedDaemonReload=no\n"],
    ["no NeedDaemonReload", "absent\n@systemd\nenabled=\nActiveState=inactive\n"],
    ["a garbled file part", "file 644\n@systemd\nenabled=\nActiveState=inactive\nNeedDaemonReload=no\n"],
  ]) {
    it(`throws on ${name}, quoting what it got`, () => {
      // when / then
      assert.throws(() => parseUnitFact(stdout), /unexpected answer from the (unit|file) probe/);
    });
  }

  it("the probe refuses, saying why, on a machine where systemd is not running", { skip: RUNS_SYSTEMD ? "this test machine runs systemd, so the probe would answer for real" : false }, () => {
    // given this test machine, which does not run systemd as PID 1 (a container or VM without it)

    // when
    let stderr = "";
    try {
      execFileSync("sh", ["-c", unitFactCommand("hello.service").text], { stdio: ["pipe", "pipe", "pipe"] });
    } catch (err) {
      stderr = String((err as { stderr?: Buffer }).stderr ?? "");
    }

    // then
    assert.match(stderr, /systemd is not running on this machine/);
  });
});
