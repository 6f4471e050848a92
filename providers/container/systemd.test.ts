import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SPEC_LABEL, specDigest, type ContainerDesired } from "./operations";
import { installSteps, parseSystemdCrash, parseSystemdFact, systemdCrashCommand, systemdFactCommand, recordSpec, runtimeSpec, systemdRemovalSteps, systemdStateSteps, unitFile } from "./systemd";

const want: ContainerDesired = {
  engine: "systemd",
  name: "web",
  image: "10.0.0.1:5000/web@sha256:abc",
  env: { GREETING: "s3cret" },
  ports: [{ host: 8080, container: 8080, protocol: "tcp" }],
  volumes: [{ source: "/srv/data", target: "/data", readOnly: true }],
  restart: "always",
  labels: { app: "web" },
  running: true,
};

// What umoci derives from an image (trimmed to the parts drove changes).
const base = {
  process: { terminal: true, args: ["/bin/sh", "-c", "httpd"], env: ["PATH=/bin", "GREETING=default", "TERM=xterm"] },
  hostname: "umoci-default",
  mounts: [{ destination: "/proc", type: "proc", source: "proc" }],
  linux: { namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }] },
};

describe("systemd engine", () => {
  it("derives the runtime spec: no terminal, host network, env overridden, volumes bound, labels as annotations", () => {
    // when
    const spec = runtimeSpec(base, want);
    // then
    assert.equal(spec.process.terminal, false);
    assert.deepEqual(spec.process.env, ["PATH=/bin", "GREETING=s3cret", "TERM=xterm"]);
    assert.deepEqual(spec.process.args, ["/bin/sh", "-c", "httpd"], "the image's command is kept when none is given");
    assert.deepEqual(spec.linux!.namespaces!.map((n) => n.type), ["pid", "ipc", "uts", "mount"]);
    assert.deepEqual(spec.mounts!.at(-1), { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro"] });
    assert.equal(spec.hostname, "web");
    assert.deepEqual(spec.annotations, { app: "web" });
    assert.equal(base.process.terminal, true, "the base spec is not modified");
  });

  it("a command replaces the image's", () => {
    assert.deepEqual(runtimeSpec(base, { ...want, command: ["sleep", "1"] }).process.args, ["sleep", "1"]);
  });

  it("the unit runs runc on the bundle and cleans up after it, with the restart policy", () => {
    const unit = unitFile(want);
    assert.match(unit, /^ExecStart=runc run --bundle \/var\/lib\/drove\/containers\/web\/bundle drove-web$/m);
    assert.match(unit, /^ExecStopPost=-runc delete --force drove-web$/m);
    assert.match(unit, /^Restart=always$/m);
    assert.match(unit, /^TimeoutStopSec=10$/m, "stopped like Docker stops a container: 10 s, then SIGKILL");
    assert.match(unitFile({ ...want, restart: "unless-stopped" }), /^Restart=always$/m);
    assert.match(unitFile({ ...want, restart: "on-failure" }), /^Restart=on-failure$/m);
  });

  it("env values travel on stdin into a 0600 file, never on a command line, and are not recorded", () => {
    const steps = installSteps(want, runtimeSpec(base, want));
    for (const s of steps) assert.ok(!s.command.text.includes("s3cret"), s.command.text);
    assert.match(steps[0].command.text, /^umask 077 && cat > \/var\/lib\/drove\/containers\/web\/bundle\/config\.json$/);
    assert.ok(steps[0].stdin!.includes("GREETING=s3cret"));
    assert.ok(!steps[1].stdin!.includes("s3cret"), "the recorded spec keeps env keys only");
  });

  const probed = (state: string, unit = unitFile(want), exit = "ExecMainCode=0\nExecMainStatus=0") =>
    parseSystemdFact(`${JSON.stringify(recordSpec(want))}\nRestart=always\nNRestarts=2\n${exit}\nActiveState=${state}\n--- unit\n${unit}`);

  it("parses the probe: present, running, restart policy, restart count, last exit and the unit's text", () => {
    const f = probed("active");
    assert.equal(f.state, "present");
    if (f.state !== "present") return;
    assert.equal(f.running, true);
    assert.equal(f.restart, "always");
    assert.equal(f.restarts, 2);
    assert.equal(f.exitCode, 0);
    assert.equal(f.labels[SPEC_LABEL], specDigest(want));
    assert.deepEqual(f.env, { GREETING: "" });
    assert.equal(f.unit, unitFile(want), "the unit byte for byte, its last newline kept");
    assert.deepEqual(parseSystemdFact("absent\n"), { state: "absent" });
    // the last exit, as a shell tells it
    assert.equal((probed("activating", undefined, "ExecMainCode=1\nExecMainStatus=3") as { exitCode: number }).exitCode, 3);
    assert.equal((probed("failed", undefined, "ExecMainCode=2\nExecMainStatus=9") as { exitCode: number }).exitCode, 137);
    // a unit file removed by hand
    assert.equal((probed("active", "") as { unit: string }).unit, "");
  });

  it("the probe: one systemctl, the record read by the shell, the unit file by cat", () => {
    const text = systemdFactCommand("web").text;
    assert.equal(text.match(/systemctl/g)?.length, 1, text);
    assert.match(text, /systemctl show -p ActiveState -p Restart -p NRestarts -p ExecMainCode -p ExecMainStatus drove-container-web\.service/);
    assert.match(text, /read -r rec < \/var\/lib\/drove\/containers\/web\/drove\.spec/);
    assert.match(text, /cat \/etc\/systemd\/system\/drove-container-web\.service/);
  });

  it("reads a crash: the exit systemd holds for the unit's main process, then the container's own last lines", () => {
    assert.deepEqual(parseSystemdCrash("ExecMainCode=1\nExecMainStatus=3\n--- log\ncannot start\ncannot start\n"), { status: "status 3", lines: ["cannot start", "cannot start"] });
    assert.deepEqual(parseSystemdCrash("ExecMainCode=2\nExecMainStatus=9\n--- log\n"), { status: "signal SIGKILL", lines: [] });
    assert.deepEqual(parseSystemdCrash("ExecMainCode=3\nExecMainStatus=11\n--- log\n"), { status: "signal SIGSEGV", lines: [] });
    // a new main process runs (the unit restarted it): no exit to tell yet
    assert.deepEqual(parseSystemdCrash("ExecMainCode=0\nExecMainStatus=0\n--- log\n1\n2\n3\n4\n5\n6\n"), { lines: ["2", "3", "4", "5", "6"] });
    const text = systemdCrashCommand("web").text;
    assert.ok(text.startsWith("systemctl show -p ExecMainCode -p ExecMainStatus drove-container-web.service; echo '--- log'; "), text);
    const since = '--since "@$(stat -c %Y /etc/systemd/system/drove-container-web.service 2>/dev/null || echo 0)"';
    assert.ok(text.includes(`journalctl _SYSTEMD_UNIT=drove-container-web.service ${since} -n 5 -o cat`), "only the container's own lines, not systemd's about it, nor an earlier container's of the same name");
  });

  it("state steps: start a stopped unit, rewrite the unit for a new restart policy, nothing when equal", () => {
    const f = probed("inactive");
    if (f.state !== "present") throw new Error("present expected");
    assert.deepEqual(systemdStateSteps(want, f).map((s) => s.command.text), ["systemctl enable --now drove-container-web.service"]);
    assert.deepEqual(systemdStateSteps(want, { ...f, running: true }), []);
    assert.match(systemdStateSteps({ ...want, restart: "no" }, { ...f, running: true })[0].command.text, /daemon-reload$/);
  });

  it("a unit edited on the machine is rewritten: reloaded for its settings, restarted only for what it runs", () => {
    const f = probed("active", unitFile(want).replace("TimeoutStopSec=10", "TimeoutStopSec=90"));
    if (f.state !== "present") throw new Error("present expected");
    // when
    const reload = systemdStateSteps(want, f);
    const restart = systemdStateSteps(want, { ...f, unit: unitFile(want).replace("ExecStart=runc run", "ExecStart=/usr/local/bin/runc run") });
    const gone = systemdStateSteps(want, { ...f, unit: "" });
    // then
    assert.deepEqual(reload.map((s) => [s.description, s.command.text]), [["rewrite drove-container-web.service as drove writes it", "cat > /etc/systemd/system/drove-container-web.service && systemctl daemon-reload"]]);
    assert.equal(reload[0].stdin, unitFile(want));
    assert.deepEqual(restart.map((s) => s.command.text), ["cat > /etc/systemd/system/drove-container-web.service && systemctl daemon-reload && systemctl restart drove-container-web.service"]);
    assert.deepEqual(gone.map((s) => s.command.text), ["cat > /etc/systemd/system/drove-container-web.service && systemctl daemon-reload"], "a unit file removed by hand is written again; what runs is left running");
    // a new restart policy on a unit whose command line was edited too: the step says it restarts
    const both = systemdStateSteps({ ...want, restart: "no" }, { ...f, unit: unitFile(want).replace("ExecStart=runc run", "ExecStart=/usr/local/bin/runc run") });
    assert.deepEqual(both.map((s) => s.description), ["set web's restart policy to no and restart it"]);
    assert.match(both[0].command.text, /&& systemctl restart drove-container-web\.service$/);
  });

  it("removal stops, disables and removes the unit, the runc state and the bundle", () => {
    const f = probed("active");
    assert.deepEqual(systemdRemovalSteps("web", f).map((s) => s.command.text), [
      "{ systemctl disable --now drove-container-web.service >/dev/null 2>&1 || true; } && rm -f /etc/systemd/system/drove-container-web.service && systemctl daemon-reload && { runc delete --force drove-web >/dev/null 2>&1 || true; } && rm -rf /var/lib/drove/containers/web",
    ]);
    assert.deepEqual(systemdRemovalSteps("web", { state: "absent" }), []);
  });
});
