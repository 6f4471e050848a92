import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CONTENT_LIMIT, fileFactCommand, parseFileFact, type FileFact } from "./facts";
import { ConflictError, planFile, planFileRemoval, sha256, type FileDesired, type Step } from "./operations";

const MOTD = "managed by drove\n";

const desired = (over: Partial<FileDesired> = {}): FileDesired => ({
  path: "/etc/motd",
  content: MOTD,
  mode: "0644",
  createParents: false,
  ...over,
});

const present = (over: Partial<Extract<FileFact, { state: "file" }>> = {}): FileFact => ({
  state: "file",
  mode: "0644",
  owner: "root",
  group: "root",
  size: Buffer.byteLength(MOTD),
  sha256: sha256(MOTD),
  content: MOTD,
  ...over,
});

/** Steps as plain data, so a table can compare them whole. */
function plain(steps: Step[]): { description: string; command: string; stdin?: string }[] {
  return steps.map((s) => ({ description: s.description, command: s.command.text, ...(s.stdin !== undefined ? { stdin: s.stdin } : {}) }));
}

const WRITE_MOTD = `umask 077 && tmp=$(mktemp /etc/.drove.XXXXXXXX) && { cat > "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" /etc/motd; } || { rm -f "$tmp"; exit 1; }`;

describe("planFile", () => {
  const table: {
    name: string;
    desired: FileDesired;
    fact: FileFact;
    steps: { description: string; command: string; stdin?: string }[];
  }[] = [
    {
      name: "absent -> create",
      desired: desired(),
      fact: { state: "absent" },
      steps: [{ description: "create /etc/motd", command: WRITE_MOTD, stdin: MOTD }],
    },
    {
      name: "absent -> create, making parents",
      desired: desired({ path: "/etc/drove/conf.d/a.conf", mode: "0600", createParents: true }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create /etc/drove/conf.d/a.conf",
          command: `mkdir -p /etc/drove/conf.d && umask 077 && tmp=$(mktemp /etc/drove/conf.d/.drove.XXXXXXXX) && { cat > "$tmp" && chmod 0600 "$tmp" && mv -f "$tmp" /etc/drove/conf.d/a.conf; } || { rm -f "$tmp"; exit 1; }`,
          stdin: MOTD,
        },
      ],
    },
    {
      name: "absent -> create with owner and group",
      desired: desired({ owner: "www-data", group: "adm" }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create /etc/motd",
          command: `umask 077 && tmp=$(mktemp /etc/.drove.XXXXXXXX) && { cat > "$tmp" && chmod 0644 "$tmp" && chown www-data:adm "$tmp" && mv -f "$tmp" /etc/motd; } || { rm -f "$tmp"; exit 1; }`,
          stdin: MOTD,
        },
      ],
    },
    {
      name: "absent -> create with owner only (group left as it is)",
      desired: desired({ owner: "www-data" }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create /etc/motd",
          command: `umask 077 && tmp=$(mktemp /etc/.drove.XXXXXXXX) && { cat > "$tmp" && chmod 0644 "$tmp" && chown www-data "$tmp" && mv -f "$tmp" /etc/motd; } || { rm -f "$tmp"; exit 1; }`,
          stdin: MOTD,
        },
      ],
    },
    {
      name: "absent -> create with group only",
      desired: desired({ group: "adm" }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create /etc/motd",
          command: `umask 077 && tmp=$(mktemp /etc/.drove.XXXXXXXX) && { cat > "$tmp" && chmod 0644 "$tmp" && chown :adm "$tmp" && mv -f "$tmp" /etc/motd; } || { rm -f "$tmp"; exit 1; }`,
          stdin: MOTD,
        },
      ],
    },
    {
      name: "absent -> create, with parents, owner and group, at a path that needs quoting",
      desired: desired({ path: "/srv/my site/it's.html", createParents: true, owner: "www-data", group: "www-data" }),
      fact: { state: "absent" },
      steps: [
        {
          description: "create /srv/my site/it's.html",
          command: `mkdir -p '/srv/my site' && umask 077 && tmp=$(mktemp '/srv/my site'/.drove.XXXXXXXX) && { cat > "$tmp" && chmod 0644 "$tmp" && chown www-data:www-data "$tmp" && mv -f "$tmp" '/srv/my site/it'\\''s.html'; } || { rm -f "$tmp"; exit 1; }`,
          stdin: MOTD,
        },
      ],
    },
    {
      name: "content differs -> write (mode and owner come with it)",
      desired: desired({ content: "new\n" }),
      fact: present({ mode: "0600" }),
      steps: [{ description: "write new content to /etc/motd", command: WRITE_MOTD, stdin: "new\n" }],
    },
    {
      name: "empty desired content over a non-empty file -> write",
      desired: desired({ content: "" }),
      fact: present(),
      steps: [{ description: "write new content to /etc/motd", command: WRITE_MOTD, stdin: "" }],
    },
    {
      name: "same content, mode differs -> chmod only",
      desired: desired({ mode: "0644" }),
      fact: present({ mode: "0600" }),
      steps: [{ description: "chmod /etc/motd 0600 -> 0644", command: "chmod 0644 /etc/motd" }],
    },
    {
      name: "same content, owner differs -> chown only",
      desired: desired({ owner: "www-data", group: "adm" }),
      fact: present({ owner: "root", group: "adm" }),
      steps: [{ description: "chown /etc/motd root:adm -> www-data:adm", command: "chown www-data:adm /etc/motd" }],
    },
    {
      name: "same content, owner differs, no group asked -> chown of the owner alone",
      desired: desired({ owner: "www-data" }),
      fact: present({ owner: "root", group: "adm" }),
      steps: [{ description: "chown /etc/motd root:adm -> www-data", command: "chown www-data /etc/motd" }],
    },
    {
      name: "same content, group differs, no owner asked -> chown of the group alone",
      desired: desired({ group: "adm" }),
      fact: present({ owner: "root", group: "root" }),
      steps: [{ description: "chown /etc/motd root:root -> :adm", command: "chown :adm /etc/motd" }],
    },
    {
      name: "same content, mode and owner differ -> chmod then chown",
      desired: desired({ mode: "0640", owner: "root", group: "adm" }),
      fact: present({ mode: "0644", owner: "root", group: "root" }),
      steps: [
        { description: "chmod /etc/motd 0644 -> 0640", command: "chmod 0640 /etc/motd" },
        { description: "chown /etc/motd root:root -> root:adm", command: "chown root:adm /etc/motd" },
      ],
    },
    {
      name: "everything equal -> no-op",
      desired: desired({ owner: "root", group: "root" }),
      fact: present(),
      steps: [],
    },
    {
      name: "owner and group not asked for -> whatever they are is fine (no-op)",
      desired: desired(),
      fact: present({ owner: "nobody", group: "nogroup" }),
      steps: [],
    },
    {
      name: "content unknown to the probe (too big) but digest equal -> no-op",
      desired: desired(),
      fact: present({ content: undefined }),
      steps: [],
    },
  ];

  for (const row of table) {
    it(row.name, () => {
      // given
      const { desired: d, fact } = row;

      // when
      const steps = planFile(d, fact);

      // then
      assert.deepEqual(plain(steps), row.steps);
    });
  }

  it("refuses to replace something that is not a regular file", () => {
    // given
    const fact: FileFact = { state: "other", type: "directory" };

    // when / then
    assert.throws(
      () => planFile(desired(), fact),
      (err: unknown) => {
        assert.ok(err instanceof ConflictError);
        assert.equal(err.message, "/etc/motd is a directory, not a regular file, and drove does not replace it");
        return true;
      },
    );
  });

  it("refuses to write through a symbolic link", () => {
    // given
    const fact: FileFact = { state: "other", type: "symbolic link" };

    // when / then
    assert.throws(() => planFile(desired(), fact), ConflictError);
  });
});

describe("planFileRemoval", () => {
  it("removes a present file", () => {
    // given
    const fact = present();

    // when
    const steps = planFileRemoval("/etc/motd", fact);

    // then
    assert.deepEqual(plain(steps), [{ description: "remove /etc/motd", command: "rm -f /etc/motd" }]);
  });

  it("quotes the path it removes", () => {
    // given
    const fact = present();

    // when
    const steps = planFileRemoval("/tmp/a b;rm -rf ~", fact);

    // then
    assert.deepEqual(plain(steps), [{ description: "remove /tmp/a b;rm -rf ~", command: "rm -f '/tmp/a b;rm -rf ~'" }]);
  });

  it("does nothing when the file is already gone", () => {
    // given
    const fact: FileFact = { state: "absent" };

    // when
    const steps = planFileRemoval("/etc/motd", fact);

    // then
    assert.deepEqual(steps, []);
  });

  it("leaves something that is not a regular file alone", () => {
    // given
    const fact: FileFact = { state: "other", type: "directory" };

    // when
    const steps = planFileRemoval("/etc/motd", fact);

    // then
    assert.deepEqual(steps, []);
  });
});

describe("parseFileFact", () => {
  const HELLO = "hello, wörld\n";
  const HELLO_SHA = sha256(HELLO);

  it("parses absent", () => {
    // given
    const stdout = "absent\n";

    // when
    const fact = parseFileFact(stdout);

    // then
    assert.deepEqual(fact, { state: "absent" });
  });

  it("parses something that is not a file, keeping its type", () => {
    // given
    const stdout = "other directory\n";

    // when
    const fact = parseFileFact(stdout);

    // then
    assert.deepEqual(fact, { state: "other", type: "directory" });
  });

  it("parses a file with its content, padding the mode to four digits", () => {
    // given
    const size = Buffer.byteLength(HELLO);
    const stdout = `file 644 root adm ${size}\ncontent ${Buffer.from(HELLO).toString("base64")}\n`;

    // when
    const fact = parseFileFact(stdout);

    // then
    assert.deepEqual(fact, { state: "file", mode: "0644", owner: "root", group: "adm", size, sha256: HELLO_SHA, content: HELLO });
  });

  it("keeps a four-digit mode (setuid) as it is", () => {
    // given
    const stdout = "file 4755 root root 0\ncontent \n";

    // when
    const fact = parseFileFact(stdout);

    // then
    assert.equal(fact.state === "file" && fact.mode, "4755");
  });

  it("parses an empty file as empty content", () => {
    // given
    const stdout = "file 600 root root 0\ncontent \n";

    // when
    const fact = parseFileFact(stdout);

    // then
    assert.deepEqual(fact, { state: "file", mode: "0600", owner: "root", group: "root", size: 0, sha256: sha256(""), content: "" });
  });

  it("leaves content undefined when the bytes are not valid UTF-8", () => {
    // given
    const bytes = Buffer.from([0x68, 0x69, 0xff, 0xfe, 0xc3]);
    const stdout = `file 644 root root ${bytes.length}\ncontent ${bytes.toString("base64")}\n`;

    // when
    const fact = parseFileFact(stdout);

    // then
    assert.equal(fact.state, "file");
    assert.ok(fact.state === "file" && !("content" in fact), "no content key");
    assert.equal(fact.state === "file" && fact.size, 5);
    assert.equal(fact.state === "file" && fact.sha256, createHash("sha256").update(bytes).digest("hex"), "the digest of the bytes read");
  });

  it("leaves content undefined when the probe sent none (a file over the size limit), keeping its digest", () => {
    // given
    const stdout = `file 644 root root ${CONTENT_LIMIT + 1}\nsha256 ${"b".repeat(64)}\n`;

    // when
    const fact = parseFileFact(stdout);

    // then
    assert.equal(fact.state === "file" && fact.content, undefined);
    assert.equal(fact.state === "file" && fact.size, CONTENT_LIMIT + 1);
    assert.equal(fact.state === "file" && fact.sha256, "b".repeat(64));
  });

  const garbage: readonly [string, string][] = [
    ["empty output", ""],
    ["an error message", "stat: cannot stat '/etc/motd': Permission denied\n"],
    ["a file line without content or digest (the read failed)", "file 644 root root 12\n"],
    ["a file line with a short digest", "file 644 root root 300000\nsha256 abc123\n"],
    ["a file line with a bare digest", `file 644 root root 300000\n${"a".repeat(64)}\n`],
    ["content that is not base64", "file 644 root root 12\ncontent not base64!\n"],
    ["a file line with a non-numeric size", "file 644 root root big\ncontent aGk=\n"],
    ["a file line with a symbolic mode", "file rw-r--r-- root root 1\ncontent aGk=\n"],
  ];
  for (const [name, stdout] of garbage) {
    it(`throws on ${name}, quoting what it got`, () => {
      // given: output the probe never prints

      // when / then
      assert.throws(() => parseFileFact(stdout), /unexpected answer from the file probe/);
    });
  }
});

describe("the probe and the write command, run by a local shell", () => {
  let dir: string;
  const isRoot = process.getuid?.() === 0;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "drove-file-ops-test-"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function run(step: { command: { text: string }; stdin?: string }): string {
    return execFileSync("sh", ["-c", step.command.text], { input: step.stdin ?? "", stdio: ["pipe", "pipe", "pipe"] }).toString("utf8");
  }

  function probe(path: string): FileFact {
    return parseFileFact(run({ command: fileFactCommand(path) }));
  }

  it("creates the file, with its parents, its content and its mode", () => {
    // given
    const path = join(dir, "new parent", "it's a $file");
    const content = "line 1\n'quoted' \"double\" $(not run) `nor this`\n😀\n";
    const d = desired({ path, content, mode: "0640", createParents: true });

    // when
    const steps = planFile(d, probe(path));
    for (const s of steps) run(s);

    // then
    assert.equal(steps.length, 1);
    assert.equal(readFileSync(path, "utf8"), content);
    assert.equal(statSync(path).mode & 0o7777, 0o640);
    assert.deepEqual(readdirSync(join(dir, "new parent")), ["it's a $file"], "no temporary file is left behind");
  });

  it("narrows the mode of an existing wider file when it writes new content", () => {
    // given
    const path = join(dir, "secret.env");
    writeFileSync(path, "old\n");
    chmodSync(path, 0o666);
    const d = desired({ path, content: "TOKEN=s3cr3t\n", mode: "0600" });

    // when
    const steps = planFile(d, probe(path));
    for (const s of steps) run(s);

    // then
    assert.deepEqual(steps.map((s) => s.description), [`write new content to ${path}`]);
    assert.equal(readFileSync(path, "utf8"), "TOKEN=s3cr3t\n");
    assert.equal(statSync(path).mode & 0o7777, 0o600);
  });

  it("fails without a trace when the parent is missing and createParents is false", () => {
    // given
    const path = join(dir, "missing", "file");
    const d = desired({ path, createParents: false });

    // when
    const steps = planFile(d, probe(path));

    // then
    assert.throws(() => run(steps[0]));
    assert.throws(() => lstatSync(join(dir, "missing")), /ENOENT/);
  });

  it("plans nothing the second time: the probe sees exactly what was written", () => {
    // given
    const path = join(dir, "idempotent.conf");
    const d = desired({ path, content: "a = 1\nb = 'two'\n", mode: "0600", createParents: true });
    for (const s of planFile(d, probe(path))) run(s);

    // when
    const fact = probe(path);
    const steps = planFile(d, fact);

    // then
    assert.deepEqual(steps, []);
    assert.equal(fact.state === "file" && fact.content, d.content);
  });

  it("repairs only the mode when only the mode drifted", () => {
    // given
    const path = join(dir, "drifted-mode");
    const d = desired({ path, content: "x\n", mode: "0644" });
    for (const s of planFile(d, probe(path))) run(s);
    chmodSync(path, 0o600);

    // when
    const steps = planFile(d, probe(path));
    for (const s of steps) run(s);

    // then
    assert.deepEqual(steps.map((s) => s.command.text), [`chmod 0644 ${path}`]);
    assert.equal(statSync(path).mode & 0o7777, 0o644);
    assert.deepEqual(planFile(d, probe(path)), []);
  });

  it("changes the owner and leaves the group as it is when no group is asked for", { skip: isRoot ? false : "needs root to chown to another user" }, () => {
    // given: a file owned by nobody:daemon; the program asks for owner root only
    const path = join(dir, "owned");
    writeFileSync(path, MOTD);
    chmodSync(path, 0o644);
    chownSync(path, 65534, 1);
    const d = desired({ path, owner: "root" });

    // when
    const steps = planFile(d, probe(path));
    for (const s of steps) run(s);

    // then
    assert.equal(steps.length, 1);
    assert.equal(statSync(path).uid, 0);
    assert.equal(statSync(path).gid, 1, "the group was not asked for, so it must not change");
  });

  it("probes absent, a directory, a symbolic link, a file and a non-UTF-8 file", () => {
    // given
    const sub = join(dir, "probe");
    mkdirSync(sub);
    writeFileSync(join(sub, "text"), "héllo\n");
    chmodSync(join(sub, "text"), 0o640);
    writeFileSync(join(sub, "binary"), Buffer.from([0xff, 0x00, 0xfe]));
    writeFileSync(join(sub, "empty"), "");
    symlinkSync(join(sub, "text"), join(sub, "link"));

    // when
    const absent = probe(join(sub, "nothing"));
    const directory = probe(sub);
    const link = probe(join(sub, "link"));
    const text = probe(join(sub, "text"));
    const binary = probe(join(sub, "binary"));
    const empty = probe(join(sub, "empty"));

    // then
    assert.deepEqual(absent, { state: "absent" });
    assert.deepEqual(directory, { state: "other", type: "directory" });
    assert.deepEqual(link, { state: "other", type: "symbolic link" });
    assert.equal(text.state, "file");
    assert.equal(text.state === "file" && text.mode, "0640");
    assert.equal(text.state === "file" && text.content, "héllo\n");
    assert.equal(text.state === "file" && text.sha256, sha256("héllo\n"));
    assert.equal(binary.state === "file" && binary.size, 3);
    assert.equal(binary.state === "file" && binary.content, undefined);
    assert.equal(binary.state === "file" && binary.sha256, createHash("sha256").update(readFileSync(join(sub, "binary"))).digest("hex"), "a binary file's digest, from the bytes read");
    assert.equal(empty.state === "file" && empty.sha256, sha256(""));
    assert.equal(empty.state === "file" && empty.content, "");
  });

  it("sends no content for a file over the limit, but its digest still counts", () => {
    // given
    const path = join(dir, "big");
    const content = "x".repeat(CONTENT_LIMIT + 1);
    writeFileSync(path, content);
    chmodSync(path, 0o644);

    // when
    const fact = probe(path);

    // then
    assert.equal(fact.state === "file" && fact.content, undefined);
    assert.equal(fact.state === "file" && fact.sha256, sha256(content));
    assert.deepEqual(planFile(desired({ path, content }), fact), []);
  });
});

describe("the write command keeps a secret from others from its first byte", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "drove-file-first-byte-"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("the temporary file is 0600 and empty while the content is still on its way; the path appears only whole, with its mode", async () => {
    // given a file of mode 0644 to create, and a shell whose stdin stays open
    const path = join(dir, "conf.d", "registry.key");
    const [step] = planFile(desired({ path, content: "KEY MATERIAL\n", mode: "0644", createParents: true }), { state: "absent" });
    const child = spawn("sh", ["-c", step.command.text], { stdio: ["pipe", "ignore", "pipe"] });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));

    // when the file exists but no byte of the content has been sent
    const early = await firstFileIn(join(dir, "conf.d"));

    // then it is already readable by its owner alone, and the final path is not there yet
    assert.match(early.name, /^\.drove\./);
    assert.equal(early.size, 0);
    assert.equal((early.mode & 0o777).toString(8), "600");
    assert.throws(() => statSync(path), /ENOENT/);

    // and once the content arrives, the path holds it whole with the asked mode
    child.stdin.end(step.stdin);
    assert.equal(await exited, 0);
    assert.equal(readFileSync(path, "utf8"), "KEY MATERIAL\n");
    assert.equal((statSync(path).mode & 0o777).toString(8), "644");
    assert.deepEqual(readdirSync(join(dir, "conf.d")), ["registry.key"]);
  });
});

/** Waits until a file appears in `dir` (made by a command still running), and stats it. */
async function firstFileIn(dir: string): Promise<{ name: string; mode: number; size: number }> {
  for (let i = 0; i < 200; i++) {
    const names = existsSync(dir) ? readdirSync(dir) : [];
    if (names.length) {
      const st = statSync(join(dir, names[0]));
      return { name: names[0], mode: st.mode, size: st.size };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no file appeared in ${dir}`);
}
