import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { healthVerdict, markGoodCommand, rollPlan, stageCommand, type DesiredImage } from "./operations";
import { parseHealth, parseOsFacts, osFactsCommand, healthCommand, STAGED_DIR } from "./facts";

const desired: DesiredImage = {
  osImage: "web-os 1.1",
  digest: "sha256:abc",
  layer: [
    { path: "/etc/motd", contents: "hi 'there'\n", mode: "0600" },
    { path: "/usr/lib/systemd/system/web.service", contents: "[Service]\nExecStart=/bin/true\n", mode: "0644" },
    { path: "/usr/lib/systemd/system/multi-user.target.wants/web.service", symlink: "../web.service" },
  ],
  packages: ["curl"],
  health: { units: ["web.service"], deadlineSeconds: 60 },
};
const facts = { osImage: "web-os 1.0", digest: "sha256:old", bootedAt: 1, good: "1", rollback: "", updater: "lab-overlay" };

describe("OS image operations", () => {
  it("rolls a host that runs another version, or other contents under the same version", () => {
    assert.deepEqual(rollPlan(desired, facts), { roll: true, reason: "the machine runs web-os 1.0" });
    assert.deepEqual(rollPlan(desired, { ...facts, osImage: "web-os 1.1" }), { roll: true, reason: "web-os 1.1 on the machine was built from other contents" });
    assert.deepEqual(rollPlan(desired, { ...facts, osImage: "" }), { roll: true, reason: "the machine runs no OS image" });
  });

  it("is a no-op for a host that runs the image", () => {
    assert.deepEqual(rollPlan(desired, { ...facts, osImage: "web-os 1.1", digest: "sha256:abc" }), { roll: false, reason: "the machine runs web-os 1.1 already" });
  });

  it("stages the layer, its os-release and deadline in a local shell, with modes and links", () => {
    // given a root where the protocol's paths are relocated
    const root = mkdtempSync(join(tmpdir(), "os-stage-"));
    mkdirSync(join(root, "usr/lib"), { recursive: true });
    writeFileSync(join(root, "usr/lib/os-release"), 'ID=debian\nVERSION_ID="12"\nIMAGE_ID=web-os\nIMAGE_VERSION=1.0\n');
    const text = stageCommand(desired).text.replaceAll("/var/lib/drove", join(root, "var/lib/drove")).replace("/usr/lib/os-release;", join(root, "usr/lib/os-release;"));
    // when
    execFileSync("sh", ["-c", text]);
    // then
    const staged = join(root, STAGED_DIR.slice(1));
    assert.equal(readFileSync(join(staged, "etc/motd"), "utf8"), "hi 'there'\n");
    assert.equal(statSync(join(staged, "etc/motd")).mode & 0o777, 0o600);
    assert.equal(readlinkSync(join(staged, "usr/lib/systemd/system/multi-user.target.wants/web.service")), "../web.service");
    assert.equal(readFileSync(join(staged, "usr/lib/os-release"), "utf8"), 'ID=debian\nVERSION_ID="12"\nIMAGE_ID=web-os\nIMAGE_VERSION=1.1\nDROVE_IMAGE_DIGEST=sha256:abc\n');
    assert.equal(readFileSync(join(root, "var/lib/drove/os/deadline"), "utf8"), "60\n");
  });

  it("marks a boot good with its boot time and drops the staged layer", () => {
    assert.equal(markGoodCommand(1234).text, "echo 1234 > /var/lib/drove/os/good.tmp && mv /var/lib/drove/os/good.tmp /var/lib/drove/os/good && rm -rf /var/lib/drove/os/staged && sync");
  });

  it("judges health: waits while starting, good when all is up, bad naming what is not", () => {
    assert.equal(healthVerdict(parseHealth("system=starting\nunit.web.service=activating\ncommand=0\n")).state, "wait");
    assert.deepEqual(healthVerdict(parseHealth("system=degraded\nunit.web.service=active\ncommand=0\n")), { state: "good", reason: "healthy" });
    assert.deepEqual(healthVerdict(parseHealth("system=degraded\nunit.web.service=failed\nmissing=nginx\ncommand=3\n")), {
      state: "bad",
      reason: "unit web.service is failed; package nginx not installed; the health command exited 3",
    });
  });

  it("probes run in a POSIX shell and parse", () => {
    // given this machine
    const f = parseOsFacts(execFileSync("sh", ["-c", osFactsCommand().text], { encoding: "utf8" }));
    assert.ok(f.bootedAt > 0 && f.bootedAt <= Date.now());
    const h = parseHealth(execFileSync("sh", ["-c", healthCommand([], ["no-such-package-x"], "exit 4").text], { encoding: "utf8" }));
    assert.deepEqual([h.missingPackages, h.command], [["no-such-package-x"], 4]);
  });
});
