import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { ContainerFact } from "./facts";
import { INSTANCE_LABEL, SPEC_LABEL, specDigest, type ContainerDesired } from "./operations";
import {
  formatPorts,
  parseContainerdCrash,
  parseContainerdFact,
  parsePorts,
  parseRegistryTrust,
  planContainerd,
  planContainerdRemoval,
  registryHost,
  registryTrustCommand,
  reservedLabel,
} from "./containerd";
import { engineUnits, planRuntime, planRuntimeRemoval, parseRuntimeFact } from "./runtime";

const IMAGE = "10.0.0.1:5000/web@sha256:abc";
const want: ContainerDesired = {
  engine: "containerd",
  name: "web",
  image: IMAGE,
  env: { GREETING: "it's a secret" },
  ports: [{ host: 8080, container: 8080, protocol: "tcp" }],
  volumes: [{ source: "/srv/data", target: "/data", readOnly: true }],
  restart: "always",
  labels: { app: "web" },
  running: true,
};
const digest = specDigest(want);
const present = (over: Partial<Extract<ContainerFact, { state: "present" }>> = {}): ContainerFact => ({
  state: "present",
  image: IMAGE,
  running: true,
  env: { GREETING: "it's a secret", PATH: "/bin" },
  command: [],
  ports: want.ports,
  volumes: want.volumes,
  restart: "always",
  labels: { app: "web", [SPEC_LABEL]: digest },
  exitCode: 0,
  restarts: 0,
  restarting: false,
  ...over,
});

const CTR = "ctr -n drove";
const LOG = "file:///var/log/drove/containerd/web.log";
const PULL = `${CTR} images pull --hosts-dir /etc/containerd/certs.d ${IMAGE} >/dev/null`;
const RUN =
  `mkdir -p /var/log/drove/containerd && ${CTR} run --detach --net-host --cpu-shares 0 --log-uri ${LOG} --env-file /dev/stdin ` +
  `--label app=web --label drove.spec=${digest} --label drove.ports=8080/tcp --label containerd.io/restart.policy=always --label containerd.io/restart.loguri=${LOG} ` +
  `--mount type=bind,src=/srv/data,dst=/data,options=rbind:ro ${IMAGE} web >/dev/null`;
const DISARM = `${CTR} containers label web containerd.io/restart.status= >/dev/null && { ${CTR} tasks delete --force web >/dev/null 2>&1 || true; }`;
const DELETE =
  `${CTR} containers label web containerd.io/restart.status= >/dev/null && ` +
  `{ i=0; until { ${CTR} tasks delete --force web >/dev/null 2>&1; ${CTR} containers delete web >/dev/null 2>&1; }; do i=$((i + 1)); [ $i -lt 5 ] || break; sleep 2; done; } && ` +
  `if ${CTR} containers info web >/dev/null 2>&1; then ${CTR} containers delete web; fi`;
const ARM = `${CTR} containers label web containerd.io/restart.status=running >/dev/null`;
const START = `${DISARM} && { ${CTR} tasks start --detach --log-uri ${LOG} web || ${CTR} tasks ls | awk -v n=web '$1 == n && $3 == "RUNNING" { f = 1 } END { exit !f }'; }`;
const STOP = (status: string) =>
  `${CTR} containers label web containerd.io/restart.status=${status} >/dev/null && { ${CTR} tasks kill web >/dev/null 2>&1 || true; } && ` +
  `{ i=0; while [ $i -lt 10 ] && ${CTR} tasks ls | awk -v n=web '$1 == n && $3 == "RUNNING" { f = 1 } END { exit !f }'; do sleep 1; i=$((i + 1)); done; } && ` +
  `{ ${CTR} tasks delete --force web >/dev/null 2>&1 || true; }`;

describe("planContainerd: desired + facts -> steps (then the steps that arm the restart monitor)", () => {
  const table: { name: string; desired?: Partial<ContainerDesired>; fact: ContainerFact; plainHttp?: boolean; commands: string[]; arm: string[] }[] = [
    { name: "absent -> pull and run, arm once running", fact: { state: "absent" }, commands: [`${PULL} && ${RUN}`], arm: [ARM] },
    {
      name: "absent, registry known to speak plain HTTP -> --plain-http on the pull only",
      fact: { state: "absent" },
      plainHttp: true,
      commands: [`${CTR} images pull --hosts-dir /etc/containerd/certs.d --plain-http ${IMAGE} >/dev/null && ${RUN}`],
      arm: [ARM],
    },
    { name: "same spec, running, armed -> no-op", fact: present(), commands: [], arm: [] },
    { name: "same spec, task stopped -> start (off the monitor while starting), then arm", fact: present({ running: false }), commands: [START], arm: [ARM] },
    {
      name: "same spec, not armed (restart reads 'no') -> set the policy labels, then arm",
      fact: present({ restart: "no" }),
      commands: [`${CTR} containers label web containerd.io/restart.policy=always containerd.io/restart.loguri=${LOG} >/dev/null`],
      arm: [ARM],
    },
    {
      name: "desired restart no, armed -> clear the restart labels, nothing to arm",
      desired: { restart: "no" },
      fact: present(),
      commands: [`${CTR} containers label web containerd.io/restart.status= containerd.io/restart.policy= containerd.io/restart.loguri= >/dev/null`],
      arm: [],
    },
    { name: "desired stopped, running -> mark stopped for the monitor, then stop", desired: { running: false }, fact: present(), commands: [STOP("stopped")], arm: [] },
    { name: "desired stopped, restart no, running -> stop", desired: { running: false, restart: "no" }, fact: present({ restart: "no" }), commands: [STOP("")], arm: [] },
    {
      name: "spec changed (or made by hand) -> pull, remove the old one, run anew",
      fact: present({ labels: { [SPEC_LABEL]: "something-else" } }),
      commands: [`${PULL} && ${DELETE} && ${RUN}`],
      arm: [ARM],
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      // given
      const d = { ...want, ...t.desired };
      // when
      const plan = planContainerd(d, t.fact, { plainHttp: t.plainHttp ?? false });
      // then
      assert.deepEqual(plan.steps.map((s) => s.command.text), t.commands);
      assert.deepEqual(plan.arm.map((s) => s.command.text), t.arm);
    });
  }

  it("a container meant to be stopped is made, then stopped, and never armed", () => {
    const plan = planContainerd({ ...want, running: false }, { state: "absent" }, { plainHttp: false });
    assert.deepEqual(plan.steps.map((s) => s.command.text), [`${PULL} && ${RUN}`, STOP("stopped")]);
    assert.deepEqual(plan.arm, []);
  });

  it("restart no: no restart labels at all, so the monitor never touches it", () => {
    const [run] = planContainerd({ ...want, restart: "no" }, { state: "absent" }, { plainHttp: false }).steps;
    assert.ok(!run.command.text.includes("containerd.io/restart"), run.command.text);
  });

  it("keeps env values off the command line: they go through stdin to --env-file /dev/stdin", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }).filter((v) => !v.includes("\n") && !v.includes("\0")), (value) => {
        const [run] = planContainerd({ ...want, env: { TOKEN: `secret:${value}` } }, { state: "absent" }, { plainHttp: false }).steps;
        return !run.command.text.includes(`secret:${value}`) && run.stdin === `TOKEN=secret:${value}\n`;
      }),
    );
  });

  it("labels the container with its instance, a command replaces the image's", () => {
    const [run] = planContainerd({ ...want, instance: "abc", command: ["/bin/sh", "-c", "echo hi"] }, { state: "absent" }, { plainHttp: false }).steps;
    assert.match(run.command.text, / --label drove\.instance=abc /);
    assert.ok(run.command.text.endsWith(`${IMAGE} web /bin/sh -c 'echo hi' >/dev/null`), run.command.text);
  });
});

describe("planContainerdRemoval", () => {
  it("removes task, container, log, and the image when no other container uses it", () => {
    assert.deepEqual(planContainerdRemoval("web", IMAGE, present()).map((s) => s.command.text), [
      `${DELETE} && ` +
        `{ if ${CTR} containers ls | awk 'NR > 1 { print $2 }' | grep -qxF ${IMAGE}; then :; else ${CTR} images remove --sync ${IMAGE} >/dev/null 2>&1 || true; fi; } && ` +
        `rm -f /var/log/drove/containerd/web.log && { rmdir /var/log/drove/containerd /var/log/drove 2>/dev/null || true; }`,
    ]);
  });
  it("does nothing when it is gone, or when it is another resource's replacement", () => {
    assert.deepEqual(planContainerdRemoval("web", IMAGE, { state: "absent" }), []);
    const theirs = present({ labels: { [SPEC_LABEL]: digest, [INSTANCE_LABEL]: "new-one" } });
    assert.deepEqual(planContainerdRemoval("web", IMAGE, theirs, "old-one"), []);
  });
});

// `ctr -n drove containers info web` on the lab's containerd 1.6.20 (trimmed to what matters), then the task line.
const INFO = {
  ID: "web",
  Labels: {
    app: "web",
    "drove.spec": "abc",
    "drove.ports": "8080/tcp,53/udp",
    "containerd.io/restart.status": "running",
    "containerd.io/restart.policy": "unless-stopped",
    "io.containerd.image.config.stop-signal": "SIGTERM",
  },
  Image: "10.213.37.1:5000/web@sha256:98083fdf83b9667d9f8fc4f17cbb0fcdd01726924388f1fdb6eeb6ed3f9f2dc4",
  Runtime: { Name: "io.containerd.runc.v2", Options: { type_url: "containerd.runc.v1.Options" } },
  SnapshotKey: "web",
  Snapshotter: "overlayfs",
  Spec: {
    ociVersion: "1.0.2-dev",
    process: { args: ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /www"], env: ["PATH=/bin", "GREETING=hi=there", "HOSTNAME=m1"], cwd: "/" },
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro"] },
      { destination: "/etc/hosts", type: "bind", source: "/etc/hosts", options: ["rbind", "ro"] },
      { destination: "/etc/resolv.conf", type: "bind", source: "/etc/resolv.conf", options: ["rbind", "ro"] },
    ],
    linux: { namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }], cgroupsPath: "/drove/web" },
  },
};

describe("parseContainerdFact", () => {
  it("reads ctr's container record and task line", () => {
    // given
    const out = `${JSON.stringify(INFO, null, 4)}\n--- task\n1711 RUNNING\n`;
    // when
    const f = parseContainerdFact(out);
    // then
    assert.deepEqual(f, {
      state: "present",
      image: INFO.Image,
      running: true,
      env: { PATH: "/bin", GREETING: "hi=there", HOSTNAME: "m1" },
      command: ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /www"],
      ports: [
        { host: 8080, container: 8080, protocol: "tcp" },
        { host: 53, container: 53, protocol: "udp" },
      ],
      volumes: [{ source: "/srv/data", target: "/data", readOnly: true }],
      restart: "unless-stopped",
      labels: INFO.Labels,
      exitCode: 0,
      restarts: 0,
      restarting: false,
    });
  });
  it("a stopped task, or none, is not running; no status label means restart no", () => {
    const { "containerd.io/restart.status": _s, ...unarmed } = INFO.Labels;
    const info = { ...INFO, Labels: unarmed };
    for (const task of ["1711 STOPPED", ""]) {
      const f = parseContainerdFact(`${JSON.stringify(info)}\n--- task\n${task}\n`);
      assert.equal(f.state === "present" && f.running, false, task);
      assert.equal(f.state === "present" && f.restart, "no");
    }
  });
  it("an armed container without a policy label restarts always", () => {
    const f = parseContainerdFact(`${JSON.stringify({ ...INFO, Labels: { "containerd.io/restart.status": "running" } })}\n--- task\n`);
    assert.equal(f.state === "present" && f.restart, "always");
  });
  it("treats 'absent' as absent and refuses garbage, quoting it", () => {
    assert.deepEqual(parseContainerdFact("absent\n"), { state: "absent" });
    assert.throws(() => parseContainerdFact("ctr: connection refused"), /unexpected answer from the container probe: "ctr: connection refused"/);
  });
  it("ports round-trip through the drove.ports label", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ port: fc.integer({ min: 1, max: 65535 }), protocol: fc.constantFrom("tcp" as const, "udp" as const) })), (ps) => {
        const ports = ps.map((p) => ({ host: p.port, container: p.port, protocol: p.protocol }));
        assert.deepEqual(parsePorts(formatPorts(ports)), ports);
      }),
    );
  });
});

describe("parseContainerdCrash", () => {
  it("reads the exit status ctr warns about when deleting the task, and the last log lines", () => {
    assert.deepEqual(parseContainerdCrash("exit code 3\n--- log\ncannot start\nout\n"), { exitCode: 3, lines: ["cannot start", "out"] });
  });
  it("no warning means it exited with 0; no log means no lines", () => {
    assert.deepEqual(parseContainerdCrash("--- log\n"), { exitCode: 0, lines: [] });
  });
});

describe("registry trust from certs.d", () => {
  it("finds the registry host of a reference as certs.d names its folder", () => {
    assert.equal(registryHost("10.213.37.1:5000/web@sha256:abc"), "10.213.37.1:5000");
    assert.equal(registryHost("registry.example/team/app:1"), "registry.example");
    assert.equal(registryHost("localhost/app"), "localhost");
    assert.equal(registryHost("library/busybox"), "docker.io");
    assert.equal(registryHost("busybox"), "docker.io");
    assert.equal(registryTrustCommand("10.213.37.1:5000/web:v1").text, "cat /etc/containerd/certs.d/10.213.37.1:5000/hosts.toml 2>/dev/null || true");
  });
  const table: { name: string; toml: string; plainHttp: boolean }[] = [
    { name: "no hosts.toml", toml: "", plainHttp: false },
    { name: "an http:// server", toml: 'server = "http://10.213.37.1:5000"\n', plainHttp: true },
    { name: "an http:// host entry", toml: '[host."http://10.213.37.1:5000"]\n  capabilities = ["pull", "resolve"]\n', plainHttp: true },
    { name: "https with skip_verify is TLS, not plain HTTP", toml: 'server = "https://r:5000"\n[host."https://r:5000"]\n  skip_verify = true\n', plainHttp: false },
  ];
  for (const t of table) {
    it(t.name, () => assert.deepEqual(parseRegistryTrust(t.toml, "r:5000/x"), { plainHttp: t.plainHttp }));
  }
  it("refuses a hosts.toml that is not TOML, naming the file", () => {
    assert.throws(() => parseRegistryTrust("server = ", "r:5000/x"), /\/etc\/containerd\/certs\.d\/r:5000\/hosts\.toml is not valid TOML/);
  });
});

describe("the containerd runtime", () => {
  it("starts containerd.service when inactive, nothing when active", () => {
    assert.deepEqual(engineUnits("containerd"), ["containerd.service"]);
    assert.deepEqual(planRuntime("containerd", { installed: true, active: false, version: "1.6.20~ds1" }).map((s) => s.command.text), ["systemctl enable --now containerd.service"]);
    assert.deepEqual(planRuntime("containerd", { installed: true, active: true, version: "1.6.20~ds1" }), []);
  });
  it("names the package when containerd is missing", () => {
    assert.throws(() => planRuntime("containerd", { installed: false, active: false, version: "unknown" }), /containerd, ctr are not installed; add host\.addPackage\("containerd"\)/);
  });
  it("on destroy removes drove's namespace; stops the service only if drove started it", () => {
    const ns = "{ ctr namespaces remove drove >/dev/null 2>&1 || true; }";
    assert.deepEqual(planRuntimeRemoval("containerd", false).map((s) => s.command.text), [ns, "systemctl disable --now containerd.service"]);
    assert.deepEqual(planRuntimeRemoval("containerd", true).map((s) => s.command.text), [ns]);
  });
  it("parses its fact", () => {
    assert.deepEqual(parseRuntimeFact("installed\nactive\n1.6.20~ds1\n"), { installed: true, active: true, version: "1.6.20~ds1" });
  });
  it("reserves drove's and the restart monitor's labels", () => {
    for (const k of ["drove.spec", "drove.instance", "drove.ports", "containerd.io/restart.status", "containerd.io/restart.policy"]) assert.equal(reservedLabel(k), true, k);
    assert.equal(reservedLabel("app"), false);
  });
});
