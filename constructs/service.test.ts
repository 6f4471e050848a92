import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { App } from "../src/app";
import { ContainerRuntime } from "./container-runtime";
import type { Host } from "./host";
import { Service, type ServiceCluster, type ServiceClusterNode, type ServiceProps } from "./service";
import { hostIn, messagesOf } from "./testing";

/** The part of a Cluster a Service reads (constructs/cluster.ts provides the real one). */
class StandInCluster extends Construct implements ServiceCluster {
  readonly nodes: ServiceClusterNode[] = [];
  readonly controlPlaneHosts: Host[] = [];
  readonly etcdEndpoints = pulumi.output(["https://10.0.0.5:2379"]);
  readonly caCertPem = pulumi.output("CA");
  clientCertificate() {
    return { certPem: pulumi.output("CERT"), keyPem: pulumi.secret("KEY") };
  }
}

function world(labels: Record<string, string>[] = [{ zone: "a" }, { zone: "b" }, { zone: "b" }]) {
  const app = new App({ synthOut: "-" });
  const cluster = new StandInCluster(app, "prod");
  labels.forEach((l, i) => {
    const host = hostIn(app, `m${i + 1}`);
    cluster.nodes.push({ host, labels: l, runtime: ContainerRuntime.docker(host) });
    if (i === 0) cluster.controlPlaneHosts.push(host);
  });
  return { app, cluster };
}

const web = (over: Partial<ServiceProps> = {}): ServiceProps => ({ image: "reg/web@sha256:abc", replicas: 3, ports: [{ port: 80, targetPort: 8080 }], ...over });

describe("Service props", () => {
  it("resolves defaults: targetPort = port, rollout 1/1, a VIP and a DNS name", () => {
    // given
    const { cluster } = world();
    // when
    const s = new Service(cluster, "web", web({ ports: [{ port: 80 }] }));
    // then
    assert.deepEqual(s.ports, [{ port: 80, targetPort: 80, protocol: "tcp" }]);
    assert.equal(s.maxSurge, 1);
    assert.equal(s.maxUnavailable, 1);
    assert.equal(s.dnsName, "web.prod.drove");
    assert.match(s.virtualIp, /^10\.254\.\d+\.\d+$/);
  });

  const bad: [string, Partial<ServiceProps>, RegExp][] = [
    ["replicas 0", { replicas: 0 }, /`replicas` must be between 1 and 1000, but 0 was provided/],
    ["replicas 1001", { replicas: 1001 }, /`replicas` must be between 1 and 1000, but 1001 was provided/],
    ["replicas and global", { global: true }, /give `replicas` or `global: true`, not both/],
    ["no port", { ports: [] }, /`ports` needs at least one port/],
    ["a port out of range", { ports: [{ port: 0, targetPort: 8080 }] }, /ports must be between 1 and 65535/],
    ["a health check on another port", { healthCheck: { http: { path: "/", port: 9999 } } }, /health check's port 9999 must be one of the service's target ports \(8080\)/],
    ["a health check path without /", { healthCheck: { http: { path: "health", port: 8080 } } }, /must start with '\/'/],
    ["surge and unavailable both 0", { rollout: { maxSurge: 0, maxUnavailable: 0 } }, /cannot both be 0/],
    ["a secret file name with a slash", { secrets: { "a/b": "x" } }, /names a file in \/run\/secrets/],
    ["an env name with a dash", { env: { "A-B": "x" } }, /environment variable name "A-B"/],
  ];
  for (const [name, over, want] of bad) {
    it(`refuses ${name}, naming the construct path`, () => {
      const { cluster } = world();
      const msgs = messagesOf(() => new Service(cluster, "web", web(over)));
      assert.ok(msgs.some((m) => m.startsWith("prod/web: ") && want.test(m)), msgs.join("\n"));
    });
  }

  it("refuses an id that is no DNS label", () => {
    const { cluster } = world();
    assert.match(messagesOf(() => new Service(cluster, "Web_1", web()))[0], /DNS name/);
  });
});

describe("Service placement validation (before any SSH)", () => {
  it("given a selector that matches no node, fails naming the service and the nodes' labels", () => {
    // given
    const { app, cluster } = world();
    new Service(cluster, "web", web({ placement: { nodeSelector: { zone: "c" } } }));
    // when
    const errors = app.validate();
    // then
    assert.equal(errors.length, 1);
    assert.match(errors[0], /^prod\/web: service web: its placement \(zone=c\) matches no node of the cluster \(m1 \{zone=a\}; m2 \{zone=b\}; m3 \{zone=b\}\)/);
  });

  it("refuses env values that cannot travel as one line of an env file (LF, CR, NUL), naming the variable", () => {
    const { cluster } = world();
    for (const v of ["a\nB=evil", "x\r", "nul\0"]) {
      const messages = messagesOf(() => new Service(cluster, `web${v.length}${v.charCodeAt(v.length - 1)}`, web({ env: { GREETING: v } })));
      assert.match(messages.join("\n"), /environment variable GREETING must be a single line, without CR, LF or NUL characters/);
    }
  });

  it("given services co-located with each other in a cycle, names the cycle once, before any SSH", () => {
    // given: c -> a -> b -> c, and d co-located with a (outside the cycle)
    const { app, cluster } = world();
    new Service(cluster, "c", web({ placement: { colocateWith: "a" } }));
    new Service(cluster, "a", web({ placement: { colocateWith: "b" } }));
    new Service(cluster, "b", web({ placement: { colocateWith: "c" } }));
    new Service(cluster, "d", web({ placement: { colocateWith: "a" } }));
    // when
    const errors = app.validate().filter((e) => e.includes("cycle"));
    // then
    assert.deepEqual(errors, ["prod/a: services a, b, c are to run with each other in a cycle (a -> b -> c -> a), so none can be placed first; remove `colocateWith` from one of them"]);
  });

  it("given more replicas than maxPerNode allows on the eligible nodes, says how to fix it", () => {
    const { app, cluster } = world();
    new Service(cluster, "web", web({ replicas: 3, placement: { nodeSelector: { zone: "b" }, spread: { maxPerNode: 1 } } }));
    assert.match(app.validate().join("\n"), /wants 3 replicas but at most 1 per node on 2 eligible node\(s\) fit/);
  });

  it("given colocateWith a service the cluster lacks, says so", () => {
    const { app, cluster } = world();
    new Service(cluster, "web", web({ placement: { colocateWith: "cache" } }));
    assert.match(app.validate().join("\n"), /is to run with service cache, which the cluster does not have/);
  });

  it("given a node on the systemd runtime, refuses it for replicas", () => {
    const app = new App({ synthOut: "-" });
    const cluster = new StandInCluster(app, "prod");
    const host = hostIn(app, "m1");
    cluster.nodes.push({ host, labels: {}, runtime: ContainerRuntime.systemd(host) });
    new Service(cluster, "web", web({ replicas: 1 }));
    assert.match(app.validate().join("\n"), /service replicas need "docker" or "podman"/);
  });
});

describe("Service spec", () => {
  it("renders nodes by name, the scheduler's view of every service, a VIP and a port block; secrets stay secret", async () => {
    // given
    const { app, cluster } = world();
    new Service(cluster, "api", web({ replicas: 2 }));
    new Service(cluster, "web", web({ secrets: { token: "s3cret" }, placement: { spread: { maxPerNode: 1 } } }));
    // when
    const yamlText = await app.toYaml();
    // then
    assert.match(yamlText, /type: drove:index:Service/);
    assert.doesNotMatch(yamlText, /s3cret/);
    assert.match(yamlText, /- name: api\n\s+replicas: 2/);
    assert.match(yamlText, /- name: web\n\s+replicas: 3\n\s+spread:\n\s+maxPerNode: 1/);
    assert.match(yamlText, /vip: 10\.254\./);
    assert.match(yamlText, /engine: docker/);
  });
});

describe("cluster.addService", () => {
  it("given a real Cluster, makes a Service with its own etcd client certificate and the cluster's endpoints", async () => {
    // given
    const { Cluster } = await import("./cluster");
    const app = new App({ synthOut: "-" });
    const hosts = [1, 2, 3].map((i) => hostIn(app, `m${i}`));
    const cluster = new Cluster(app, "prod", { controlPlane: hosts });
    for (const h of hosts) cluster.addHost(h, { runtime: ContainerRuntime.docker(h) });
    // when
    const s = cluster.addService("web", web());
    const yamlText = await app.toYaml();
    // then
    assert.ok(Service.isService(s));
    assert.equal(s.dnsName, "web.prod.drove");
    assert.match(yamlText, /path: prod\/ca\/client-service-web/);
    assert.match(yamlText, /type: drove:index:Service/);
    assert.deepEqual(app.validate(), []);
  });
});
