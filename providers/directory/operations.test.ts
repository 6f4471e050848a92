import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { directoryFactCommand, parseDirectoryFact, type DirectoryFact } from "./facts";
import { ConflictError, planDirectory, planDirectoryRemoval, type DirectoryDesired, type DirectoryRemoval, type Step } from "./operations";

const desired = (over: Partial<DirectoryDesired> = {}): DirectoryDesired => ({ path: "/srv/app", mode: "0755", createParents: false, ...over });

const present = (over: Partial<Extract<DirectoryFact, { state: "directory" }>> = {}): DirectoryFact => ({
  state: "directory",
  mode: "0755",
  owner: "root",
  group: "root",
  entries: 0,
  ...over,
});

/** Steps as plain data, so a table can compare them whole. */
function plain(steps: Step[]): { description: string; command: string }[] {
  return steps.map((s) => ({ description: s.description, command: s.command.text }));
}

describe("planDirectory", () => {
  const table: { name: string; desired: DirectoryDesired; fact: DirectoryFact; steps: { description: string; command: string }[] }[] = [
    {
      name: "absent -> made with mode 0700, then given its mode",
      desired: desired(),
      fact: { state: "absent" },
      steps: [{ description: "create directory /srv/app", command: "(umask 077 && mkdir /srv/app) && { chmod 00755 /srv/app || { rmdir /srv/app; exit 1; }; }" }],
    },
    {
      name: "absent -> made with its parents",
      desired: desired({ path: "/srv/app/data/cache", mode: "0750", createParents: true }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create directory /srv/app/data/cache",
          command: "mkdir -p /srv/app/data && (umask 077 && mkdir /srv/app/data/cache) && { chmod 00750 /srv/app/data/cache || { rmdir /srv/app/data/cache; exit 1; }; }",
        },
      ],
    },
    {
      name: "absent, right under / -> no mkdir -p of /",
      desired: desired({ path: "/data", createParents: true }),
      fact: { state: "absent" },
      steps: [{ description: "create directory /data", command: "(umask 077 && mkdir /data) && { chmod 00755 /data || { rmdir /data; exit 1; }; }" }],
    },
    {
      name: "absent -> made with owner and group, removed again if chown fails",
      desired: desired({ mode: "2775", owner: "www-data", group: "adm" }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create directory /srv/app",
          command: "(umask 077 && mkdir /srv/app) && { chmod 02775 /srv/app && chown www-data:adm /srv/app || { rmdir /srv/app; exit 1; }; }",
        },
      ],
    },
    {
      name: "absent -> made with group only",
      desired: desired({ group: "adm" }),
      fact: { state: "absent" },
      steps: [{ description: "create directory /srv/app", command: "(umask 077 && mkdir /srv/app) && { chmod 00755 /srv/app && chown :adm /srv/app || { rmdir /srv/app; exit 1; }; }" }],
    },
    {
      name: "absent, at a path that needs quoting",
      desired: desired({ path: "/srv/my app/it's", createParents: true }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create directory /srv/my app/it's",
          command: `mkdir -p '/srv/my app' && (umask 077 && mkdir '/srv/my app/it'\\''s') && { chmod 00755 '/srv/my app/it'\\''s' || { rmdir '/srv/my app/it'\\''s'; exit 1; }; }`,
        },
      ],
    },
    {
      name: "mode differs -> chmod with a fifth digit, so set-group-ID goes too",
      desired: desired({ mode: "0755" }),
      fact: present({ mode: "2755" }),
      steps: [{ description: "chmod /srv/app 2755 -> 0755", command: "chmod 00755 /srv/app" }],
    },
    {
      name: "owner differs -> chown only",
      desired: desired({ owner: "www-data", group: "root" }),
      fact: present(),
      steps: [{ description: "chown /srv/app root:root -> www-data:root", command: "chown www-data:root /srv/app" }],
    },
    {
      name: "mode and group differ -> chmod then chown",
      desired: desired({ mode: "0750", group: "adm" }),
      fact: present({ mode: "0755", group: "root" }),
      steps: [
        { description: "chmod /srv/app 0755 -> 0750", command: "chmod 00750 /srv/app" },
        { description: "chown /srv/app root:root -> :adm", command: "chown :adm /srv/app" },
      ],
    },
    {
      name: "everything equal -> no-op",
      desired: desired({ owner: "root", group: "root" }),
      fact: present({ entries: 12 }),
      steps: [],
    },
    {
      name: "owner and group not asked for -> whatever they are is fine (no-op)",
      desired: desired(),
      fact: present({ owner: "nobody", group: "nogroup" }),
      steps: [],
    },
  ];

  for (const row of table) {
    it(row.name, () => {
      // given
      const { desired: d, fact } = row;

      // when
      const steps = planDirectory(d, fact);

      // then
      assert.deepEqual(plain(steps), row.steps);
    });
  }

  for (const type of ["regular file", "symbolic link"]) {
    it(`refuses to replace a ${type}`, () => {
      // given
      const fact: DirectoryFact = { state: "other", type };

      // when / then
      assert.throws(
        () => planDirectory(desired(), fact),
        (err: unknown) => {
          assert.ok(err instanceof ConflictError);
          assert.equal(err.message, `/srv/app is a ${type}, not a directory, and drove does not replace it`);
          return true;
        },
      );
    });
  }
});

describe("planDirectoryRemoval", () => {
  const removal = (over: Partial<DirectoryRemoval> = {}): DirectoryRemoval => ({ path: "/srv/app", created: true, recursive: false, ...over });
  const table: { name: string; removal: DirectoryRemoval; fact: DirectoryFact; steps: { description: string; command: string }[]; reason?: RegExp }[] = [
    {
      name: "made by drove and empty -> rmdir",
      removal: removal(),
      fact: present(),
      steps: [{ description: "remove directory /srv/app", command: "rmdir /srv/app" }],
    },
    {
      name: "made by drove, not empty, recursive -> rm -rf",
      removal: removal({ recursive: true }),
      fact: present({ entries: 3 }),
      steps: [{ description: "remove directory /srv/app and its 3 entries", command: "rm -rf /srv/app" }],
    },
    {
      name: "made by drove, not empty, not recursive -> left, saying how to remove it",
      removal: removal(),
      fact: present({ entries: 1 }),
      steps: [],
      reason: /^\/srv\/app holds 1 entry and `recursive` is false, so drove leaves it; set `recursive: true`/,
    },
    {
      name: "there before drove -> left, even when empty and recursive",
      removal: removal({ created: false, recursive: true }),
      fact: present(),
      steps: [],
      reason: /^\/srv\/app was there before drove managed it, and drove removes only directories it made$/,
    },
    {
      name: "already gone -> nothing to do, nothing to say",
      removal: removal(),
      fact: { state: "absent" },
      steps: [],
    },
    {
      name: "replaced by a file -> left",
      removal: removal({ recursive: true }),
      fact: { state: "other", type: "regular file" },
      steps: [],
      reason: /is now a regular file, not the directory drove made/,
    },
  ];

  for (const row of table) {
    it(row.name, () => {
      // given
      const { removal: r, fact } = row;

      // when
      const plan = planDirectoryRemoval(r, fact);

      // then
      assert.deepEqual(plain(plan.steps), row.steps);
      if (row.reason) assert.match(plan.reason ?? "", row.reason);
      else assert.equal(plan.reason, undefined);
    });
  }

  it("quotes the path it removes", () => {
    // given
    const fact = present({ entries: 2 });

    // when
    const plan = planDirectoryRemoval(removal({ path: "/tmp/a b;rm -rf ~", recursive: true }), fact);

    // then
    assert.deepEqual(plain(plan.steps), [{ description: "remove directory /tmp/a b;rm -rf ~ and its 2 entries", command: "rm -rf '/tmp/a b;rm -rf ~'" }]);
  });
});

describe("parseDirectoryFact", () => {
  const table: [string, string, DirectoryFact][] = [
    ["absent", "absent\n", { state: "absent" }],
    ["a regular file", "other regular file\n", { state: "other", type: "regular file" }],
    ["a directory, padding the mode", "directory 755 root adm\n0\n", { state: "directory", mode: "0755", owner: "root", group: "adm", entries: 0 }],
    ["a set-group-ID directory with entries", "directory 2775 www-data www-data\n17\n", { state: "directory", mode: "2775", owner: "www-data", group: "www-data", entries: 17 }],
  ];
  for (const [name, stdout, expected] of table) {
    it(`parses ${name}`, () => {
      // given: the probe's answer

      // when
      const fact = parseDirectoryFact(stdout);

      // then
      assert.deepEqual(fact, expected);
    });
  }

  for (const [name, stdout] of [
    ["empty output", ""],
    ["an error message", "stat: cannot stat '/srv': Permission denied\n"],
    ["a directory line without the count", "directory 755 root root\n"],
    ["a symbolic mode", "directory rwxr-xr-x root root\n0\n"],
  ]) {
    it(`throws on ${name}, quoting what it got`, () => {
      // when / then
      assert.throws(() => parseDirectoryFact(stdout), /unexpected answer from the directory probe/);
    });
  }
});

describe("the directory probe and commands, run by a local shell", () => {
  let dir: string;
  const isRoot = process.getuid?.() === 0;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "drove-dir-ops-test-"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function run(step: { command: { text: string } }): string {
    return execFileSync("sh", ["-c", step.command.text], { stdio: ["pipe", "pipe", "pipe"] }).toString("utf8");
  }
  const probe = (path: string) => parseDirectoryFact(run({ command: directoryFactCommand(path) }));

  it("probes absent, a file, a link to a directory and a directory with its entries", () => {
    // given
    const sub = join(dir, "probe");
    mkdirSync(sub);
    chmodSync(sub, 0o750);
    writeFileSync(join(sub, "a"), "");
    writeFileSync(join(sub, ".hidden"), "");
    mkdirSync(join(sub, "child"));
    symlinkSync(sub, join(dir, "link"));

    // when
    const absent = probe(join(dir, "nothing"));
    const file = probe(join(sub, "a"));
    const link = probe(join(dir, "link"));
    const directory = probe(sub);

    // then
    assert.deepEqual(absent, { state: "absent" });
    assert.equal(file.state === "other" && file.type, "regular empty file");
    assert.deepEqual(link, { state: "other", type: "symbolic link" });
    assert.equal(directory.state, "directory");
    assert.equal(directory.state === "directory" && directory.mode, "0750");
    assert.equal(directory.state === "directory" && directory.entries, 3, "hidden entries count too");
  });

  it("makes a directory with its parents and exact mode, then plans nothing", () => {
    // given
    const path = join(dir, "made", "deep", "er");
    const d = desired({ path, mode: "0705", createParents: true });

    // when
    for (const s of planDirectory(d, probe(path))) run(s);

    // then
    assert.equal(statSync(path).mode & 0o7777, 0o705);
    assert.deepEqual(planDirectory(d, probe(path)), []);
  });

  it("clears a set-group-ID bit someone added, which a four-digit chmod would keep", () => {
    // given
    const path = join(dir, "sgid");
    const d = desired({ path, mode: "0755" });
    for (const s of planDirectory(d, probe(path))) run(s);
    chmodSync(path, 0o2755);
    assert.equal(statSync(path).mode & 0o7777, 0o2755, "the test machine's chmod set the bit");

    // when
    for (const s of planDirectory(d, probe(path))) run(s);

    // then
    assert.equal(statSync(path).mode & 0o7777, 0o755);
  });

  it("removes the directory it made again when chown fails, and fails", { skip: isRoot ? false : "needs root to chown" }, () => {
    // given
    const path = join(dir, "badowner");
    const d = desired({ path, owner: "drove-no-such-user-x" });

    // when / then
    assert.throws(() => run(planDirectory(d, probe(path))[0]));
    assert.equal(existsSync(path), false);
  });

  it("removes an empty directory it made, and leaves one with contents", () => {
    // given
    const empty = join(dir, "empty");
    const full = join(dir, "full");
    mkdirSync(empty);
    mkdirSync(full);
    writeFileSync(join(full, "keep"), "data");

    // when
    for (const s of planDirectoryRemoval({ path: empty, created: true, recursive: false }, probe(empty)).steps) run(s);
    const kept = planDirectoryRemoval({ path: full, created: true, recursive: false }, probe(full));

    // then
    assert.equal(existsSync(empty), false);
    assert.deepEqual(kept.steps, []);
    assert.ok(existsSync(join(full, "keep")));
  });
});
