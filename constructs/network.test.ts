import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "../src/app";
import { ValidationError } from "../src/errors";
import { ContainerRuntime } from "./container-runtime";
import { Network } from "./network";
import { Volume } from "./volume";
import { hostIn, messagesOf } from "./testing";

const IMAGE = "10.0.0.1:5000/web@sha256:abc";
const fresh = () => {
  const app = new App({ synthOut: "-" });
  return { app, host: hostIn(app) };
};

describe("Network props", () => {
  it("resolves defaults: the construct id as name, no subnet, not internal", () => {
    // given
    const { host } = fresh();
    // when
    const net = ContainerRuntime.docker(host).addNetwork("backend");
    // then
    assert.ok(Network.isNetwork(net));
    assert.equal(net.node.path, "web1/docker/backend");
    assert.equal(net.networkName, "backend");
    assert.equal(net.subnet, undefined);
    assert.equal(net.internal, false);
    const { connection: _c, ...props } = net._toSpec().props;
    assert.deepEqual(props, { engine: "docker", name: "backend", driver: "bridge", internal: false, labels: {} });
  });

  const cases: [string, () => unknown, RegExp][] = [
    [
      "a network on the systemd runtime",
      () => ContainerRuntime.systemd(fresh().host).addNetwork("app"),
      /^web1\/systemd\/app: the systemd runtime runs containers on the host's network, so it has no networks; run the containers that talk over a network with ContainerRuntime\.docker\(host\) or ContainerRuntime\.podman\(host\)$/,
    ],
    ["a subnet that is not CIDR", () => ContainerRuntime.docker(fresh().host).addNetwork("app", { subnet: "10.1.0.0" }), /^web1\/docker\/app: `subnet` must be a CIDR block like 10\.10\.0\.0\/24, but "10\.1\.0\.0" was provided$/],
    ["a prefix too long", () => ContainerRuntime.docker(fresh().host).addNetwork("app", { subnet: "10.1.0.0/33" }), /`subnet` must be a CIDR block/],
    ["host bits set", () => ContainerRuntime.docker(fresh().host).addNetwork("app", { subnet: "10.1.2.3/16" }), /^web1\/docker\/app: `subnet` 10\.1\.2\.3\/16 has host bits set: write it as 10\.1\.0\.0\/16$/],
    ["a bad name", () => ContainerRuntime.docker(fresh().host).addNetwork("app", { name: "my net" }), /^web1\/docker\/app: `name` must be 1 to 128 letters/],
    ["the engine's own name", () => ContainerRuntime.podman(fresh().host).addNetwork("app", { name: "podman" }), /`name` "podman" is the engine's own network/],
    ["a drove label", () => ContainerRuntime.docker(fresh().host).addNetwork("app", { labels: { "drove.spec": "x" } }), /the label drove\.spec is drove's own/],
    ["a network outside a runtime", () => new Network(fresh().host, "app"), /^web1\/app: a Network must be created in a ContainerRuntime/],
  ];
  for (const [what, fn, message] of cases) {
    it(`refuses ${what} at construction, with the construct path`, () => {
      const msgs = messagesOf(fn);
      assert.equal(msgs.length, 1, msgs.join("\n"));
      assert.match(msgs[0], message);
    });
  }

  it("accepts IPv6 blocks", () => {
    assert.equal(ContainerRuntime.docker(fresh().host).addNetwork("v6", { subnet: "fd00:10::/64" }).subnet, "fd00:10::/64");
  });
});

describe("Network and Volume across constructs (validated before any SSH)", () => {
  it("refuses two networks with overlapping subnets on one host, even on two engines", () => {
    // given
    const { app, host } = fresh();
    ContainerRuntime.docker(host).addNetwork("a", { subnet: "10.10.0.0/16" });
    ContainerRuntime.podman(host).addNetwork("b", { subnet: "10.10.5.0/24" });
    // when
    const errors = app.validate();
    // then
    assert.deepEqual(errors, ["web1/podman/b: subnet 10.10.5.0/24 overlaps web1/docker/a's subnet 10.10.0.0/16 on the same host; give one of them a block that does not overlap"]);
  });

  it("lets two hosts use the same subnet, and one host two blocks side by side", () => {
    const app = new App({ synthOut: "-" });
    ContainerRuntime.docker(hostIn(app, "a")).addNetwork("n", { subnet: "10.10.0.0/24" });
    const d = ContainerRuntime.docker(hostIn(app, "b"));
    d.addNetwork("n", { subnet: "10.10.0.0/24" });
    d.addNetwork("m", { name: "m", subnet: "10.10.1.0/24" });
    assert.deepEqual(app.validate(), []);
  });

  it("refuses two networks, or two volumes, of one name on one runtime", () => {
    const { app, host } = fresh();
    const docker = ContainerRuntime.docker(host);
    docker.addNetwork("a", { name: "app" });
    docker.addNetwork("b", { name: "app" });
    docker.addVolume("c", { name: "data" });
    docker.addVolume("d", { name: "data" });
    assert.deepEqual(app.validate(), [
      "web1/docker/b: network name app is also used by web1/docker/a on the same runtime; give one of them another `name`",
      "web1/docker/d: volume name data is also used by web1/docker/c on the same runtime; give one of them another `name`",
    ]);
  });

  it("refuses a container on a network or with a volume of another runtime (another host, or another engine)", () => {
    // given
    const app = new App({ synthOut: "-" });
    const docker = ContainerRuntime.docker(hostIn(app, "a"));
    const other = ContainerRuntime.docker(hostIn(app, "b"));
    const net = other.addNetwork("app");
    const vol = other.addVolume("data");
    // when
    const msgs = messagesOf(() => docker.addContainer("web", { image: IMAGE, networks: [net], volumes: [{ volume: vol, target: "/data" }] }));
    // then
    assert.deepEqual(msgs, [
      "a/docker/web: volume b/docker/data belongs to another runtime (b/docker); a container mounts only volumes of its own runtime (a/docker)",
      "a/docker/web: network b/docker/app belongs to another runtime (b/docker); a container joins only networks of its own runtime (a/docker)",
    ]);
  });

  it("refuses a mount with both a host path and a volume, or neither", () => {
    const { host } = fresh();
    const docker = ContainerRuntime.docker(host);
    const vol = docker.addVolume("data");
    assert.match(messagesOf(() => docker.addContainer("a", { image: IMAGE, volumes: [{ source: "/srv", volume: vol, target: "/data" }] }))[0], /the mount at \/data must give either `source` \(a host path\) or `volume` \(a Volume\), not both/);
    assert.match(messagesOf(() => docker.addContainer("b", { image: IMAGE, volumes: [{ target: "/data" }] }))[0], /not neither/);
  });

  it("refuses networks for a systemd container", () => {
    const app = new App({ synthOut: "-" });
    const net = ContainerRuntime.docker(hostIn(app, "a")).addNetwork("app");
    const msgs = messagesOf(() => ContainerRuntime.systemd(hostIn(app, "b")).addContainer("web", { image: IMAGE, networks: [net] }));
    assert.match(msgs[0], /^b\/systemd\/web: the systemd runtime runs containers on the host's network, so it cannot join networks/);
  });

  it("renders a container's networks and named volumes, and depends on them (created first, deleted after the container)", () => {
    // given
    const { host } = fresh();
    const docker = ContainerRuntime.docker(host);
    const net = docker.addNetwork("app", { subnet: "10.10.0.0/24", labels: { tier: "web" } });
    const vol = docker.addVolume("data", { labels: { keep: "yes" } });
    // when
    const web = docker.addContainer("web", { image: IMAGE, networks: [net], volumes: [{ volume: vol, target: "/data", readOnly: true }, { ...Volume.fromHostPath("/srv/www"), target: "/www" }] });
    const spec = web._toSpec();
    // then
    assert.deepEqual(spec.props.networks, ["app"]);
    assert.deepEqual(spec.props.volumes, [
      { source: "data", target: "/data", readOnly: true },
      { source: "/srv/www", target: "/www", readOnly: false },
    ]);
    assert.ok(spec.dependsOn?.includes(net) && spec.dependsOn?.includes(vol));
    assert.deepEqual(net._toSpec().props.labels, { tier: "web" });
    const { connection: _c, ...volProps } = vol._toSpec().props;
    assert.deepEqual(volProps, { engine: "docker", name: "data", labels: { keep: "yes" } });
  });

  it("leaves `networks` out of a container without any, so containers made before networks existed are unchanged", () => {
    const { host } = fresh();
    assert.equal("networks" in ContainerRuntime.podman(host).addContainer("web", { image: IMAGE })._toSpec().props, false);
  });

  it("a network or volume depends on what its node depends on (a package it needs)", () => {
    const { host } = fresh();
    const pkg = host.addPackage("golang-github-containernetworking-plugin-dnsname");
    const net = ContainerRuntime.podman(host).addNetwork("app");
    net.node.addDependency(pkg);
    assert.ok(net._toSpec().dependsOn?.includes(pkg));
  });
});

describe("Volume props", () => {
  it("works on every runtime, the systemd one included", () => {
    for (const make of [ContainerRuntime.docker, ContainerRuntime.podman, ContainerRuntime.systemd]) {
      const vol = make(fresh().host).addVolume("data");
      assert.ok(Volume.isVolume(vol));
      assert.equal(vol.volumeName, "data");
    }
  });

  it("refuses a one-letter name (the engines need two) with the construct path", () => {
    assert.deepEqual(messagesOf(() => ContainerRuntime.docker(fresh().host).addVolume("d")), [
      "web1/docker/d: `name` must be 2 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit, but \"d\" was provided",
    ]);
  });

  it("throws a ValidationError for a volume outside a runtime", () => {
    assert.throws(() => new Volume(fresh().host, "data"), ValidationError);
  });
});
