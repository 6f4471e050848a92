/**
 * The lab itself: real machines (systemd as PID 1, sshd, a TPM each, a
 * registry), idempotent, refusing a second concurrent run, and leaving
 * nothing behind.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/paths";
import { bootTestLab, expectMatch, sh, type TestLab } from "./harness";
import { labConfig, labUp, leftovers } from "./lab/lab";

function drove(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; output: string }> {
  return new Promise((resolve) =>
    execFile(join(packageRoot, "bin", "drove"), args, { env }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    ),
  );
}

let lab: TestLab;

describe("the lab", { timeout: 10 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovelt", 22, 2);
  });

  after(async () => {
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("each machine runs systemd as PID 1 with its own hostname, machine-id, host key and TPM", async () => {
    // given two booted machines
    const ids = new Set<string>();
    for (const m of lab.inventory.machines) {
      // when
      const r = await lab.ssh(
        m.name,
        sh`ps -p 1 -o comm=; hostname; cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2; . /etc/environment; TPM2TOOLS_TCTI="$TPM2TOOLS_TCTI" tpm2_getrandom --hex 8`,
      );
      // then
      const [init, hostname, machineId, hostKey, random] = r.stdout.trim().split("\n");
      assert.equal(init, "systemd", r.stderr);
      assert.equal(hostname, m.name);
      assert.equal(machineId, m.machineId);
      assert.equal(hostKey, m.hostKey);
      assert.match(random ?? "", /^[0-9a-f]{16}$/, `tpm2_getrandom: ${r.stderr}`);
      ids.add(machineId);
    }
    assert.equal(ids.size, 2, "machine-ids are unique");
  });

  test("machines reach each other by name, and the registry on the bridge", async () => {
    // when
    const r = await lab.ssh("m1", sh`getent hosts m2 | cut -d' ' -f1; curl -fsS -o /dev/null -w '%{http_code}' http://${lab.inventory.lab!.registry}/v2/`);
    // then
    assert.equal(r.stdout.trim(), `${lab.machine("m2").address}\n200`, r.stderr);
  });

  test("machines do not share cgroups: a unit stopped on one is gone there while the same-named unit runs on another", async () => {
    // given the same transient unit on both machines
    for (const m of ["m1", "m2"]) {
      const r = await lab.ssh(m, sh`systemd-run -q --unit=drove-lab-isolation sleep 600`);
      assert.equal(r.code, 0, r.stderr);
    }
    // when m1 stops its own
    await lab.ssh("m1", sh`systemctl stop drove-lab-isolation`);
    // then m1 forgets it (a shared cgroup, still populated by m2's process, would keep it loaded), and m2's still runs
    let loaded = "";
    for (let i = 0; i < 20; i++) {
      loaded = (await lab.ssh("m1", sh`systemctl list-units --all --no-legend 'drove-lab-isolation*'`)).stdout.trim();
      if (loaded === "") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(loaded, "", "m1 still has the unit it stopped");
    const m2 = await lab.ssh("m2", sh`systemctl is-active drove-lab-isolation`);
    assert.equal(m2.stdout.trim(), "active", m2.stderr);
    await lab.ssh("m2", sh`systemctl stop drove-lab-isolation`);
  });

  test("a second `lab up` keeps the running machines as they are", async () => {
    // given
    const before = await lab.ssh("m1", sh`cat /proc/sys/kernel/random/boot_id`);
    // when
    const inv = await labUp(2, () => undefined);
    // then
    const after = await lab.ssh("m1", sh`cat /proc/sys/kernel/random/boot_id`);
    assert.equal(after.stdout, before.stdout, "m1 was not rebooted");
    assert.deepEqual(inv.machines.map((m) => m.hostKey), lab.inventory.machines.map((m) => m.hostKey));
  });

  test("a concurrent `lab up` is refused with a clear message", async () => {
    // when two run at once
    const [a, b] = await Promise.all([drove(["lab", "up", "--machines", "2"]), drove(["lab", "up", "--machines", "2"])]);
    // then exactly one is refused, saying why and what to do
    const refused = [a, b].filter((r) => r.code !== 0);
    assert.equal(refused.length, 1, `${a.output}\n---\n${b.output}`);
    assert.match(refused[0].output, /Another `drove lab` command is already working on the lab in .*\. Either wait for it to finish, or/);
  });

  test("another checkout's `lab up` with the same prefix is refused and leaves this lab alone", async () => {
    // given this lab's m1, and a second state folder
    const before = await lab.ssh("m1", sh`cat /proc/sys/kernel/random/boot_id`);
    const other = mkdtempSync(join(tmpdir(), "drove-other-"));
    // when
    const r = await drove(["lab", "up", "--machines", "1"], { ...process.env, DROVE_STATE: other });
    // then
    assert.notEqual(r.code, 0);
    expectMatch(r.output, /The lab prefix "drovelt" is in use by the lab in .*\. Either stop that lab first/);
    const after = await lab.ssh("m1", sh`cat /proc/sys/kernel/random/boot_id`);
    assert.equal(after.stdout, before.stdout, "m1 was not touched");
  });

  test("a missing debootstrap is named, with the package and the fix, before anything starts", async () => {
    // given a PATH with every tool but debootstrap
    const bin = mkdtempSync(join(tmpdir(), "drove-path-"));
    for (const tool of ["systemd-nspawn", "ip", "ssh-keygen", "swtpm", "swtpm_setup", "docker-registry", "apt-cacher-ng", "node", "sh", "bash"]) {
      const found = await new Promise<string>((r) => execFile("sh", ["-c", 'command -v "$1"', "sh", tool], (_e, o) => r(o.trim())));
      if (found) symlinkSync(found, join(bin, tool));
    }
    const state = mkdtempSync(join(tmpdir(), "drove-nolab-"));
    // when
    const r = await drove(["lab", "up", "--machines", "1"], { ...process.env, PATH: bin, DROVE_STATE: state, DROVE_LAB_PREFIX: "drovenone", DROVE_LAB_NET: "10.213.23" });
    // then
    assert.notEqual(r.code, 0);
    expectMatch(r.output, /The lab needs programs that are not installed: debootstrap \(package debootstrap\)\. Either run `npm run setup`/);
    assert.deepEqual(await leftovers({ dir: join(state, "lab"), bridge: "drovenone0", net: "10.213.23", prefix: "drovenone" }), []);
    assert.ok(!existsSync(join(state, "lab", "machines")), "no machine was started");
  });

  // Last: it kills this lab the way a killed test runner or CI job does.
  test("a lab whose run was killed is removed by the next `lab up` with its prefix, which then boots", async () => {
    // given every process of this lab killed at once: its namespaces, links,
    // mounts and its claim on the prefix stay behind
    const dir = join(process.env.DROVE_STATE!, "lab");
    await new Promise<void>((r) => execFile("pkill", ["-KILL", "-f", `${dir}/`], () => r()));
    assert.notDeepEqual(await leftovers(), [], "the killed lab left namespaces behind");
    const other = mkdtempSync(join(tmpdir(), "drove-other-"));
    // when another checkout's lab takes the same prefix
    const r = await drove(["lab", "up", "--machines", "1"], { ...process.env, DROVE_STATE: other });
    // then it says what it removed and boots its own machine
    assert.equal(r.code, 0, r.output);
    expectMatch(r.output, /held the prefix "drovelt" but nothing of it runs \(a run was killed\); removing what it left/);
    const down = await drove(["lab", "down"], { ...process.env, DROVE_STATE: other });
    assert.equal(down.code, 0, down.output);
    assert.deepEqual(await leftovers(), [], "nothing of either lab is left");
    assert.deepEqual(await leftovers({ ...labConfig(), dir: join(other, "lab") }), []);
  });

  test("--machines outside 1..200 is refused with the range", async () => {
    const r = await drove(["lab", "up", "--machines", "0"]);
    assert.notEqual(r.code, 0);
    expectMatch(r.output, /`--machines` must be a whole number between 1 and 200, but 0 was provided/);
  });
});
