/**
 * Machines behind bastions, through the real `pulumi` CLI: m2 answers SSH
 * only from m1, m3 only from m2 (a firewall inside each machine's own
 * network namespace), and drove logs in to both as `deploy`, a user with
 * passwordless sudo, through one and two hops.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths";
import { SshConnection, type SshTarget } from "../src/ssh";
import { bootTestLab, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";
import type { ShellCommand } from "../src/quote";

let lab: TestLab;
let project: TestProject;
const FILE = "/etc/drove-behind-bastion.txt";

/** Root on a lab machine, reached through the same hops drove must use. */
function rootTarget(name: string): SshTarget {
  const m = lab.machine(name);
  const jump = name === "m3" ? rootTarget("m2") : name === "m2" ? rootTarget("m1") : undefined;
  return { host: m.address, user: "root", privateKey: readFileSync(m.privateKeyPath, "utf8"), hostKey: m.hostKey, ...(jump ? { jump } : {}) };
}

async function behind(name: "m2" | "m3", command: ShellCommand): Promise<string> {
  const conn = await SshConnection.open(rootTarget(name));
  try {
    const r = await conn.exec(command);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    return r.stdout;
  } finally {
    conn.close();
  }
}

/** drove's SSH keepers for this suite's state folder (their pids). */
function keepers(): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
        return cmd.includes("ssh-keeper") && cmd.includes(process.env.DROVE_STATE!);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** `drove <args>` with the suite's state folder; its output. */
function droveCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(join(packageRoot, "bin", "drove"), args, { env: process.env }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout + stderr))),
  );
}

/** Only `from` may open SSH to `machine`. */
function firewall(from: string) {
  return sh`nft add table inet drovetest && nft ${"add chain inet drovetest input { type filter hook input priority 0; policy accept; }"} && nft add rule inet drovetest input tcp dport 22 ip saddr != ${from} drop`;
}

describe("hosts behind bastions, as a sudo user, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovesh", 39, 3);
    for (const m of ["m2", "m3"]) {
      const r = await lab.ssh(
        m,
        sh`for u in deploy nosudo; do useradd -m -s /bin/sh $u && install -d -m 700 -o $u -g $u /home/$u/.ssh && install -m 600 -o $u -g $u /root/.ssh/authorized_keys /home/$u/.ssh/authorized_keys; done && echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy`,
      );
      assert.equal(r.code, 0, r.stderr);
    }
    for (const [m, from] of [["m2", "m1"], ["m3", "m2"]]) {
      const r = await lab.ssh(m, firewall(lab.machine(from).address));
      assert.equal(r.code, 0, r.stderr);
    }
    project = await TestProject.create("ssh.ts");
    expectOk(await project.config({ content: "behind the bastion\n" }), "config");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("direct SSH to m2 and m3 is refused, so every later step really goes through the bastions", async () => {
    for (const m of ["m2", "m3"]) {
      const direct = SshConnection.open({ ...rootTarget(m), jump: undefined, connectTimeoutMs: 3000 });
      await assert.rejects(direct, `${m} answered SSH directly`);
    }
  });

  test("up writes the files through one and two hops as deploy with sudo; owner root, mode 0640; no changes after", async () => {
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    assert.match(up.stdout, /hostnames\s*:\s*\{[\s\S]*m2\s*: "m2"[\s\S]*m3\s*: "m3"/);
    for (const m of ["m2", "m3"] as const) {
      assert.equal(await behind(m, sh`stat -c '%a %U' ${FILE}; cat ${FILE}`), "640 root\nbehind the bastion\n", m);
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("a hand edit two hops away shows as drift and up repairs it", async () => {
    // given
    await behind("m3", sh`echo edited > ${FILE}`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:File: \(update\)[\s\S]*content/);
    expectOk(up, "up");
    assert.equal(await behind("m3", sh`cat ${FILE}`), "behind the bastion\n");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the repair");
  });

  test("a user without passwordless sudo fails with the host and the fix; the other hosts converge", async () => {
    // given
    expectOk(await project.config({ nosudo: "true", content: "changed\n" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0);
    expectMatch(up.output, /Unable to [^\n]* on nosudo@10\.213\.39\.12[^\n]*sudo: a (password|terminal) is required[^\n]*Either let nosudo run commands without a password/);
    for (const m of ["m2", "m3"] as const) assert.equal(await behind(m, sh`cat ${FILE}`), "changed\n", `${m} converged`);
    assert.equal(await behind("m2", sh`ls /etc/drove-nosudo.txt 2>/dev/null | wc -l`), "0\n");
    expectOk(await project.pulumi(["config", "rm", "nosudo"]), "config rm");
    expectOk(await project.pulumi(["up", "--yes"]), "the up without the sudo-less user");
  });

  test("a wrong host key pinned for the bastion refuses the hosts behind it, naming both fingerprints; nothing changes there", async () => {
    // given
    expectOk(await project.config({ badJumpKey: "true", content: "must not arrive\n" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0);
    assert.ok(up.output.includes(lab.machine("m1").hostKey), "the key m1 presented is named");
    assert.ok(up.output.includes(lab.machine("m2").hostKey), "the pinned key is named");
    for (const m of ["m2", "m3"] as const) assert.equal(await behind(m, sh`cat ${FILE}`), "changed\n", `${m} was not touched`);
    expectOk(await project.config({ content: "changed\n" }), "config");
    expectOk(await project.pulumi(["config", "rm", "badJumpKey"]), "config rm");
    expectOk(await project.pulumi(["up", "--yes"]), "the up with the right key");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after");
  });

  test("with DROVE_SSH_PERSIST the next run logs in nowhere: it rides the connections the last run kept, through both hops and sudo; drift still shows and up repairs it; `drove ssh-stop` closes them", async () => {
    const persist = { DROVE_SSH_PERSIST: "60" };
    const deployLogins = () =>
      Promise.all((["m2", "m3"] as const).map(async (m) => Number((await behind(m, sh`journalctl _COMM=sshd -o cat --no-pager | grep -c 'Accepted publickey for deploy' || true`)).trim())));
    // given a run that keeps its connections, then a hand edit two hops away
    expectOk(await project.pulumi(["preview", "--refresh", "--expect-no-changes"], persist), "the run that keeps its connections");
    assert.equal(keepers().length, 1, "one keeper runs");
    await behind("m3", sh`echo edited once more > ${FILE}`);
    const before = await deployLogins();
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"], persist);
    const up = await project.pulumi(["up", "--yes"], persist);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:File: \(update\)[\s\S]*content/);
    expectOk(up, "up");
    assert.equal(await behind("m3", sh`cat ${FILE}`), "changed\n");
    assert.deepEqual(await deployLogins(), before, "no new login as deploy on m2 or m3");
    // and when
    const stop = await droveCli(["ssh-stop"]);
    // then
    assert.match(stop, /the kept SSH connections are closed/);
    assert.deepEqual(keepers(), [], "the keeper is gone");
    assert.match(await droveCli(["ssh-stop"]), /no SSH connections were kept/);
  });

  test("destroy removes the files behind the bastions", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    for (const m of ["m2", "m3"] as const) assert.equal(await behind(m, sh`ls ${FILE} 2>/dev/null | wc -l`), "0\n", m);
  });
});
