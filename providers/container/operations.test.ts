import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { containerFactCommand, parseContainerFact, type CliEngine, type ContainerFact } from "./facts";
import { belongsToAnother, envFile, INSTANCE_LABEL, planContainer, planContainerRemoval, SPEC_LABEL, specDigest, type ContainerDesired } from "./operations";
import { planRuntime, planRuntimeRemoval, parseRuntimeFact, runtimeFactCommand } from "./runtime";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const want: ContainerDesired & { engine: CliEngine } = {
  engine: "docker",
  name: "web",
  image: "10.0.0.1:5000/web@sha256:abc",
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
  image: want.image,
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
const RUN = `docker run --detach --name web --restart always --label drove.spec=${digest} --env-file /dev/stdin --label app=web --publish 8080:8080/tcp --volume /srv/data:/data:ro 10.0.0.1:5000/web@sha256:abc`;

describe("planContainer: desired + facts -> steps", () => {
  const table: { name: string; desired?: Partial<ContainerDesired & { engine: CliEngine }>; fact: ContainerFact; commands: string[] }[] = [
    { name: "absent -> pull and run", fact: { state: "absent" }, commands: [`docker pull 10.0.0.1:5000/web@sha256:abc >/dev/null && ${RUN}`] },
    { name: "same spec, running -> no-op", fact: present(), commands: [] },
    { name: "same spec, stopped -> start", fact: present({ running: false }), commands: ["docker start web"] },
    { name: "same spec, other restart policy -> update in place", fact: present({ restart: "no" }), commands: ["docker update --restart always web"] },
    {
      name: "spec changed (or made by hand) -> replace",
      fact: present({ labels: { [SPEC_LABEL]: "something-else" } }),
      commands: [`docker pull 10.0.0.1:5000/web@sha256:abc >/dev/null && docker rm --force web >/dev/null && ${RUN}`],
    },
    { name: "desired stopped, running -> stop", desired: { running: false }, fact: present(), commands: ["docker stop web"] },
  ];
  for (const t of table) {
    it(t.name, () => {
      // given / when
      const steps = planContainer({ ...want, ...t.desired }, t.fact);
      // then
      assert.deepEqual(steps.map((s) => s.command.text), t.commands);
    });
  }

  it("keeps env values off the command line: they go through stdin", () => {
    const [run] = planContainer(want, { state: "absent" });
    assert.ok(!run.command.text.includes("secret"));
    assert.equal(run.stdin, "GREETING=it's a secret\n");
  });

  it("a changed env, image, port or volume changes the spec digest; restart and running do not", () => {
    for (const change of [{ env: { GREETING: "x" } }, { image: "other" }, { ports: [] }, { volumes: [] }, { command: ["sh"] }, { labels: {} }]) {
      assert.notEqual(specDigest({ ...want, ...change }), digest, JSON.stringify(change));
    }
    assert.equal(specDigest({ ...want, restart: "no", running: false }), digest);
  });

  it("podman gets the same commands with its own binary", () => {
    const [run] = planContainer({ ...want, engine: "podman" }, { state: "absent" });
    assert.match(run.command.text, /^podman pull .* && podman run --detach --name web /);
  });
});

describe("planContainerRemoval", () => {
  it("leaves a container another resource made under the same name (a replacement made before the original's delete)", () => {
    const theirs = present({ labels: { [SPEC_LABEL]: digest, [INSTANCE_LABEL]: "new-one" } });
    assert.deepEqual(planContainerRemoval("docker", "web", "img", theirs, "old-one"), []);
    assert.equal(planContainerRemoval("docker", "web", "img", theirs, "new-one").length, 1);
    assert.equal(belongsToAnother(theirs, "old-one"), true);
    assert.equal(belongsToAnother(present(), "old-one"), false, "a container without an instance label is not another's");
  });
  it("labels a container with its instance when it has one", () => {
    const [run] = planContainer({ ...want, instance: "abc" }, { state: "absent" });
    assert.match(run.command.text, / --label drove\.instance=abc /);
    assert.equal(specDigest({ ...want, instance: "abc" }), digest, "the instance is not part of the spec");
  });
  it("removes the container and, if unused, its image", () => {
    assert.deepEqual(planContainerRemoval("docker", "web", "img", present()).map((s) => s.command.text), [
      "docker rm --force web >/dev/null && { docker image rm img >/dev/null 2>&1 || true; }",
    ]);
  });
  it("does nothing when it is gone", () => {
    assert.deepEqual(planContainerRemoval("docker", "web", "img", { state: "absent" }), []);
  });
});

describe("parseContainerFact", () => {
  it("reads docker/podman inspect JSON", () => {
    // given (the fields drove reads, as `docker container inspect` prints them)
    const json = JSON.stringify([
      {
        Config: { Image: "reg/web@sha256:abc", Env: ["PATH=/bin", "GREETING=a=b"], Cmd: ["/bin/sh", "-c", "x"], Labels: { app: "web" } },
        State: { Running: false, ExitCode: 3, Restarting: true },
        RestartCount: 2,
        HostConfig: { PortBindings: { "8080/tcp": [{ HostIp: "", HostPort: "8080" }], "53/udp": [{ HostPort: "5353" }] }, RestartPolicy: { Name: "always" }, Binds: ["/a:/b:ro", "/c:/d"] },
      },
    ]);
    // when
    const f = parseContainerFact(json);
    // then
    assert.deepEqual(f, {
      state: "present",
      image: "reg/web@sha256:abc",
      running: false,
      env: { PATH: "/bin", GREETING: "a=b" },
      command: ["/bin/sh", "-c", "x"],
      ports: [
        { host: 5353, container: 53, protocol: "udp" },
        { host: 8080, container: 8080, protocol: "tcp" },
      ],
      volumes: [
        { source: "/a", target: "/b", readOnly: true },
        { source: "/c", target: "/d", readOnly: false },
      ],
      restart: "always",
      labels: { app: "web" },
      exitCode: 3,
      restarts: 2,
      restarting: true,
    });
  });
  it("treats 'absent' and podman's '[]' as absent", () => {
    assert.deepEqual(parseContainerFact("absent\n"), { state: "absent" });
    assert.deepEqual(parseContainerFact("[]\n"), { state: "absent" });
  });
  it("reads Docker's API (through curl) the way it reads the CLI, and falls back to the CLI where the API path does not apply", async () => {
    // given a fake `curl` that answers like Docker's API and a fake `docker` CLI, first on PATH,
    // and a listening socket standing in for Docker's (the script's path to it swapped for this one)
    const dir = mkdtempSync(join(tmpdir(), "drove-inspect-"));
    const doc = { Config: { Image: "reg/web@sha256:abc", Env: [], Cmd: null, Labels: {} }, State: { Running: true, ExitCode: 0 }, RestartCount: 0, HostConfig: { RestartPolicy: { Name: "no" } } };
    writeFileSync(join(dir, "curl"), `#!/bin/sh\necho curl >> ${dir}/calls\nprintf '%s' '${JSON.stringify(doc)}'\n`, { mode: 0o755 });
    writeFileSync(join(dir, "docker"), `#!/bin/sh\necho docker >> ${dir}/calls\nprintf '%s\\n' '${JSON.stringify([doc], null, 2).replace(/\n/g, " ")}'\n`, { mode: 0o755 });
    const socket = join(dir, "docker.sock");
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    const script = containerFactCommand("docker", "web").text.split("/var/run/docker.sock").join(socket);
    const probe = (env: Record<string, string>) => {
      writeFileSync(join(dir, "calls"), "");
      const fact = parseContainerFact(execFileSync("sh", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, HOME: dir, DOCKER_HOST: "", DOCKER_CONTEXT: "", DOCKER_CONFIG: "", ...env } }));
      return { fact, asked: readFileSync(join(dir, "calls"), "utf8").trim() };
    };
    try {
      // when Docker is the local daemon: its API answers, and reads as the CLI's answer does
      const viaApi = probe({});
      // when Docker is elsewhere (DOCKER_HOST), or the user's config names a context: the CLI answers
      const viaHost = probe({ DOCKER_HOST: "tcp://elsewhere:2375" });
      mkdirSync(join(dir, ".docker"));
      writeFileSync(join(dir, ".docker", "config.json"), JSON.stringify({ auths: {}, currentContext: "remote" }));
      const viaContext = probe({});
      // then
      assert.equal(viaApi.asked, "curl");
      assert.equal(viaHost.asked, "docker");
      assert.equal(viaContext.asked, "docker");
      assert.equal(viaApi.fact.state, "present");
      assert.deepEqual(viaApi.fact, viaHost.fact);
      // and Podman is always asked through its CLI
      assert.match(containerFactCommand("podman", "web").text, /^if out=\$\(podman container inspect web/);
    } finally {
      server.close();
    }
  });
  it("refuses garbage, quoting it", () => {
    assert.throws(() => parseContainerFact("Error: something"), /unexpected answer from the container probe: "Error: something"/);
  });
  it("envFile writes one KEY=value line each", () => {
    assert.equal(envFile({ A: "1", B: "x y" }), "A=1\nB=x y\n");
  });
});

describe("container runtime", () => {
  it("starts Docker's socket and service when inactive; nothing when active; Podman needs nothing", () => {
    assert.deepEqual(planRuntime("docker", { installed: true, active: false, version: "20.10" }).map((s) => s.command.text), ["systemctl enable --now docker.socket docker.service"]);
    assert.deepEqual(planRuntime("docker", { installed: true, active: true, version: "20.10" }), []);
    assert.deepEqual(planRuntime("podman", { installed: true, active: true, version: "4.3" }), []);
  });
  it("refuses an engine that is not installed, saying how to add it", () => {
    assert.throws(() => planRuntime("docker", { installed: false, active: false, version: "unknown" }), /docker is not installed; add host\.addPackage\("docker\.io"\) or use an image that has it/);
  });
  it("stops what drove started; leaves an adopted engine running", () => {
    assert.deepEqual(planRuntimeRemoval("docker", false).map((s) => s.command.text), ["systemctl disable --now docker.socket docker.service"]);
    assert.deepEqual(planRuntimeRemoval("docker", true), []);
  });
  it("names every tool the systemd engine needs", () => {
    assert.throws(() => planRuntime("systemd", { installed: false, active: true, version: "unknown" }), /runc, skopeo, umoci \(and systemd as init\) are not installed; add host\.addPackage\("runc"\), host\.addPackage\("skopeo"\), host\.addPackage\("umoci"\)/);
  });
  it("parses the runtime probe", () => {
    assert.deepEqual(parseRuntimeFact("installed\nactive\n20.10.24\n"), { installed: true, active: true, version: "20.10.24" });
    assert.deepEqual(parseRuntimeFact("missing\ninactive\nunknown\n"), { installed: false, active: false, version: "unknown" });
    assert.deepEqual(parseRuntimeFact("installed\nactive\n20.10.24\n812.90311827\n"), { installed: true, active: true, version: "20.10.24", versionStamp: "812.90311827" });
    // a stopped daemon's stamp (pid 0) is no stamp
    assert.deepEqual(parseRuntimeFact("installed\ninactive\nunknown\n0.0\n"), { installed: true, active: false, version: "unknown" });
  });
  it("asks an engine its version again only when what it was read from changed", () => {
    // given a `podman` first on PATH that counts how often it runs
    const dir = mkdtempSync(join(tmpdir(), "drove-runtime-"));
    const count = join(dir, "count");
    writeFileSync(count, "");
    const tool = join(dir, "podman");
    writeFileSync(tool, `#!/bin/sh\necho run >> ${count}\necho 4.3.1\n`, { mode: 0o755 });
    const probe = (known?: { version: string; versionStamp?: string }) =>
      parseRuntimeFact(execFileSync("sh", ["-c", runtimeFactCommand("podman", known).text], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } }));
    const runs = () => readFileSync(count, "utf8").split("\n").filter(Boolean).length;
    // when probed with nothing known, then with what that probe found
    const first = probe();
    const second = probe(first);
    // then podman ran once, and both say the same
    assert.equal(runs(), 1);
    assert.equal(first.version, "4.3.1");
    assert.deepEqual(second, first);
    // when its binary changes, then it is asked again; an "unknown" version is never reused
    appendFileSync(tool, "# upgraded\n");
    probe(second);
    assert.equal(runs(), 2);
    const third = probe({ version: "unknown", versionStamp: probe().versionStamp });
    assert.equal(third.version, "4.3.1");
    assert.equal(runs(), 4);
  });
});
