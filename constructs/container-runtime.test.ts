import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "../src/app";
import { ContainerRuntime } from "./container-runtime";
import { hostIn, messagesOf } from "./testing";

describe("ContainerRuntime.containerd", () => {
  it("synthesises a containerd runtime and its containers with their host-network ports, restart policy and labels", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    // when
    const runtime = ContainerRuntime.containerd(host);
    const web = runtime.addContainer("web", { image: "r:5000/web@sha256:abc", ports: [{ host: 8080, container: 8080 }], restart: "unless-stopped", labels: { app: "web" } });
    // then
    assert.equal(runtime.engine, "containerd");
    assert.equal(runtime.node.path, "web1/containerd");
    assert.equal(runtime._toSpec().props.engine, "containerd");
    const spec = web._toSpec();
    assert.equal(spec.props.engine, "containerd");
    assert.deepEqual(spec.props.ports, [{ host: 8080, container: 8080, protocol: "tcp" }]);
    assert.equal(spec.props.restart, "unless-stopped");
    assert.deepEqual(spec.props.labels, { app: "web" });
    assert.ok(spec.dependsOn?.includes(runtime));
  });

  it("refuses, naming the construct, a port mapping (host network), on-failure (containerd 1.6's monitor ignores exit status) and reserved labels", () => {
    // given
    const runtime = ContainerRuntime.containerd(hostIn(new App({ synthOut: "-" })));
    // when
    const messages = messagesOf(() =>
      runtime.addContainer("web", {
        image: "r:5000/web@sha256:abc",
        ports: [{ host: 80, container: 8080 }],
        restart: "on-failure",
        labels: { "containerd.io/restart.status": "stopped", "drove.ports": "1/tcp" },
      }),
    );
    // then
    assert.deepEqual(messages, [
      "web1/containerd/web: the containerd runtime runs containers on the host's network, so port 80 must equal the container's port 8080",
      'web1/containerd/web: the containerd runtime restarts a stopped container whatever its exit status, so `restart` must be "always", "unless-stopped" or "no", but "on-failure" was provided',
      "web1/containerd/web: the label containerd.io/restart.status is drove's or containerd's restart monitor's own; use another key",
      "web1/containerd/web: the label drove.ports is drove's or containerd's restart monitor's own; use another key",
    ]);
  });

  it("builds no images: that takes a docker or podman runtime", () => {
    const runtime = ContainerRuntime.containerd(hostIn(new App({ synthOut: "-" })));
    assert.match(messagesOf(() => runtime.buildImage("img", { repository: "r:5000/web", context: "." } as never))[0], /an Image is built by a docker or podman ContainerRuntime/);
  });

  it("a container depends on what it was told to (node.addDependency), e.g. a registry's trust file", () => {
    const host = hostIn(new App({ synthOut: "-" }));
    const trust = host.addFile("trust", { path: "/etc/containerd/certs.d/r:5000/hosts.toml", content: 'server = "http://r:5000"\n' });
    const web = ContainerRuntime.containerd(host).addContainer("web", { image: "r:5000/web@sha256:abc" });
    web.node.addDependency(trust);
    assert.ok(web._toSpec().dependsOn?.includes(trust));
  });
});
