import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { App } from "../src/app";
import { Cluster } from "./cluster";
import { ContainerRuntime } from "./container-runtime";
import { Host } from "./host";
import { HOST_KEY, PRIVATE_KEY, hostIn, messagesOf } from "./testing";

function lab(n = 3): { app: App; hosts: Host[] } {
  const app = new App({ synthOut: "-" });
  const hosts = Array.from({ length: n }, (_, i) => new Host(app, `m${i + 1}`, { address: `10.0.0.${11 + i}`, privateKey: PRIVATE_KEY, hostKey: HOST_KEY, labels: { disk: "ssd" } }));
  return { app, hosts };
}

/** The synthesised desired state, as `drove synth` prints it. */
async function synth(app: App): Promise<{ hosts: Record<string, { path: string; type: string; props: Record<string, unknown> }[]> }> {
  return yaml.load(await app.toYaml()) as never;
}

describe("Cluster props", () => {
  it("takes 1, 3 or 5 control-plane hosts; anything else is refused with the construct path", () => {
    // given
    const { app, hosts } = lab(5);
    // then
    for (const n of [1, 3, 5]) assert.equal(new Cluster(app, `c${n}`, { controlPlane: hosts.slice(0, n) }).controlPlaneHosts.length, n);
    assert.deepEqual(messagesOf(() => new Cluster(app, "two", { controlPlane: hosts.slice(0, 2) })), ["two: `controlPlane` must have 1, 3 or 5 hosts, but 2 were provided"]);
    assert.deepEqual(messagesOf(() => new Cluster(app, "none", { controlPlane: [] })), ["none: `controlPlane` must have 1, 3 or 5 hosts, but 0 were provided"]);
    assert.deepEqual(messagesOf(() => new Cluster(app, "four", { controlPlane: hosts.slice(0, 4) })), ["four: `controlPlane` must have 1, 3 or 5 hosts, but 4 were provided"]);
  });

  it("refuses a host listed twice, a bad name and an orchestrator it does not have", () => {
    const { app, hosts } = lab(3);
    assert.deepEqual(messagesOf(() => new Cluster(app, "dup", { controlPlane: [hosts[0], hosts[1], hosts[0]] })), ["dup: host m1 appears twice in `controlPlane`; list each host once"]);
    assert.deepEqual(messagesOf(() => new Cluster(app, "Prod_1", { controlPlane: [hosts[0]] })), [
      `Prod_1: the cluster's id is its name in etcd keys and DNS names: lower-case letters, digits and '-', up to 42, but "Prod_1" was provided`,
    ]);
    assert.deepEqual(messagesOf(() => new Cluster(app, "k8s", { controlPlane: [hosts[0]], orchestrator: "kubernetes" as never })), ['k8s: `orchestrator` must be "etcd" or "swarm", but "kubernetes" was provided']);
  });

  it("resolves defaults: etcd, the cluster's own CA, Debian's etcd packages on each control-plane host", () => {
    // given
    const { hosts, app } = lab(3);
    // when
    const cluster = new Cluster(app, "prod", { controlPlane: hosts });
    // then
    assert.equal(cluster.orchestrator, "etcd");
    assert.equal(cluster.clusterName, "prod");
    assert.equal(cluster.ca.node.path, "prod/ca");
    for (const h of hosts) assert.deepEqual(h.node.children.map((c) => c.node.id).sort(), ["etcd-client", "etcd-server"]);
  });

  it("keeps a host's own etcd package declaration, and installs none when asked not to", () => {
    const { hosts, app } = lab(1);
    const own = hosts[0].addPackage("etcd-server", { version: "3.4.23-4+b7" });
    new Cluster(app, "prod", { controlPlane: hosts });
    assert.deepEqual(hosts[0].node.children.map((c) => c.node.id).sort(), ["etcd-client", "etcd-server"]);
    assert.equal(hosts[0].node.findChild("etcd-server"), own);
    const other = lab(1);
    new Cluster(other.app, "prod", { controlPlane: other.hosts, installPackages: false });
    assert.deepEqual(other.hosts[0].node.children, []);
  });
});

describe("Cluster.addHost and nodes", () => {
  it("merges labels over the host's own and hands out copies", () => {
    // given
    const { hosts, app } = lab(3);
    const cluster = new Cluster(app, "prod", { controlPlane: [hosts[0]] });
    // when
    const node = cluster.addHost(hosts[0], { labels: { zone: "a", disk: "hdd" }, capacity: { cpu: 2 } });
    cluster.addHost(hosts[1]);
    (node.labels as Record<string, string>).zone = "changed";
    (cluster.nodes[0].labels as Record<string, string>).zone = "changed too";
    // then
    assert.deepEqual(
      cluster.nodes.map((n) => ({ id: n.host.node.id, labels: n.labels, capacity: n.capacity })),
      [
        { id: "m1", labels: { disk: "hdd", zone: "a" }, capacity: { cpu: 2 } },
        { id: "m2", labels: { disk: "ssd" }, capacity: undefined },
      ],
    );
    assert.deepEqual(cluster.controlPlaneHosts, [hosts[0]]);
  });

  it("refuses a host added twice and bad labels, naming the cluster and the host", () => {
    const { hosts, app } = lab(1);
    const cluster = new Cluster(app, "prod", { controlPlane: hosts });
    cluster.addHost(hosts[0]);
    assert.deepEqual(messagesOf(() => cluster.addHost(hosts[0])), ["prod: host m1 was already added to the cluster; add each host once"]);
    assert.deepEqual(messagesOf(() => cluster.addHost(hostIn(app, "x"), { labels: { zone: "a b" } })), ['prod: label zone (for x) has value "a b", which must be letters, digits, \'-\', \'_\' or \'.\', at most 63']);
  });
});

describe("Cluster validation before any SSH", () => {
  it("refuses a control-plane host that is not a node of the cluster", () => {
    // given
    const { hosts, app } = lab(3);
    const cluster = new Cluster(app, "prod", { controlPlane: hosts });
    cluster.addHost(hosts[0]);
    cluster.addHost(hosts[1]);
    // when
    const errors = app.validate();
    // then
    assert.deepEqual(errors, ["prod: control-plane host m3 is not a node of the cluster; add it with cluster.addHost(m3)"]);
  });

  it("refuses a host in two clusters, in both", () => {
    const { hosts, app } = lab(3);
    const a = new Cluster(app, "a", { controlPlane: [hosts[0]], installPackages: false });
    const b = new Cluster(app, "b", { controlPlane: [hosts[1]], installPackages: false });
    a.addHost(hosts[0]);
    a.addHost(hosts[2]);
    b.addHost(hosts[1]);
    b.addHost(hosts[2]);
    assert.deepEqual(app.validate(), ["a: host m3 is also in cluster b; a host belongs to one cluster", "b: host m3 is also in cluster a; a host belongs to one cluster"]);
  });
});

describe("Cluster synthesis", () => {
  it("renders one drove:index:EtcdCluster with every member, keys as secrets, after the packages and certificates", async () => {
    // given
    const { hosts, app } = lab(3);
    const cluster = new Cluster(app, "prod", { controlPlane: hosts });
    for (const h of hosts) cluster.addHost(h);
    // when
    const out = await synth(app);
    const spec = cluster.controlPlane._toSpec();
    // then
    const etcd = out.hosts["prod/Resource"].find((r) => r.type === "drove:index:EtcdCluster")!;
    assert.equal(etcd.props.cluster, "prod");
    assert.equal(etcd.props.clientKeyPem, "[secret]");
    assert.equal(etcd.props.memberKeys, "[secret]");
    assert.deepEqual(Object.keys(etcd.props.members as object), ["m1", "m2", "m3"]);
    assert.deepEqual((etcd.props.members as Record<string, { address: string }>).m2.address, "10.0.0.12");
    assert.ok(!JSON.stringify(out).includes("DO-NOT-LEAK"), "no SSH key in the synthesised state");
    const deps = (spec.dependsOn ?? []).map((c) => c.node.path);
    for (const p of ["m1/etcd-server", "m3/etcd-client", "prod/ca", "prod/ca/member-m1", "prod/ca/client-drove"]) assert.ok(deps.includes(p), `depends on ${p}`);
    const member = out.hosts["prod/ca/member-m2"][0];
    assert.deepEqual(member.props.ipAddresses, ["10.0.0.12", "127.0.0.1"]);
    assert.deepEqual(member.props.usages, ["server", "client"]);
  });

  it("issues one client certificate per id, signed by the cluster's CA", () => {
    const { hosts, app } = lab(1);
    const cluster = new Cluster(app, "prod", { controlPlane: hosts });
    const a = cluster.clientCertificate("web");
    assert.equal(cluster.clientCertificate("web"), a);
    assert.equal(a.ca, cluster.ca);
    assert.deepEqual(a.usages, ["client"]);
    assert.equal(a.commonName, "web");
    assert.deepEqual(messagesOf(() => cluster.clientCertificate("a b")), [`prod: a client certificate's id must be letters, digits, '-', '_' or '.', but "a b" was provided`]);
  });

  it("lists the etcd endpoints, one https URL per control-plane host", async () => {
    const { hosts, app } = lab(3);
    const cluster = new Cluster(app, "prod", { controlPlane: hosts });
    const urls = await new Promise<string[]>((r) => cluster.etcdEndpoints.apply(r));
    assert.deepEqual(urls, ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]);
  });
});

describe('orchestrator: "swarm"', () => {
  function swarmLab(n = 3, props: { managers?: number } = {}) {
    const { app, hosts } = lab(n);
    const cluster = new Cluster(app, "lab", { controlPlane: hosts.slice(0, props.managers ?? 1), orchestrator: "swarm" });
    hosts.forEach((h, i) => cluster.addHost(h, { labels: { zone: i % 2 ? "b" : "a" }, runtime: ContainerRuntime.docker(h) }));
    return { app, hosts, cluster };
  }
  const web = { image: "reg/web@sha256:abc", replicas: 3, ports: [{ port: 80, targetPort: 8080 }], rollout: { maxUnavailable: 1 } };

  it("renders one drove:index:Swarm (managers from the control plane, the rest workers, host labels as node labels) and no etcd, CA or packages", async () => {
    // given
    const { app, hosts, cluster } = swarmLab();
    // when
    const yamlDoc = await synth(app);
    // then
    const all = Object.values(yamlDoc.hosts).flat();
    assert.deepEqual(all.filter((r) => /Etcd|Certificate/.test(r.type)), []);
    for (const h of hosts) assert.deepEqual(h.node.children.map((c) => c.node.id), ["docker"]);
    const swarm = all.find((r) => r.type === "drove:index:Swarm")!;
    assert.equal(swarm.path, "lab/Resource");
    assert.equal(cluster.orchestrator, "swarm");
    assert.deepEqual(swarm.props.managers, ["m1"]);
    const nodes = swarm.props.nodes as Record<string, { role: string; labels: Record<string, string>; address: string }>;
    assert.deepEqual(Object.fromEntries(Object.entries(nodes).map(([k, v]) => [k, [v.role, v.address, v.labels]])), {
      m1: ["manager", "10.0.0.11", { disk: "ssd", zone: "a" }],
      m2: ["worker", "10.0.0.12", { disk: "ssd", zone: "b" }],
      m3: ["worker", "10.0.0.13", { disk: "ssd", zone: "a" }],
    });
    assert.throws(() => cluster.ca, /a swarm cluster has no etcd and no certificate authority/);
    assert.throws(() => cluster.etcdEndpoints, /a swarm cluster has no etcd endpoints/);
  });

  it("maps the same Service to a drove:index:SwarmService: managers, every node for its proxy, constraints from the selectors, the secret a secret", async () => {
    // given
    const { app, cluster } = swarmLab();
    cluster.addService("web", { ...web, replicas: 2, secrets: { greeting: "hi" }, placement: { nodeSelector: { zone: "a" }, matchExpressions: [{ key: "disk", operator: "NotIn", values: ["hdd"] }] } });
    // when
    const all = Object.values((await synth(app)).hosts).flat();
    // then
    const svc = all.find((r) => r.type === "drove:index:SwarmService")!;
    assert.equal(all.filter((r) => r.type === "drove:index:Service").length, 0);
    assert.deepEqual(Object.keys(svc.props.managers as object), ["m1"]);
    assert.deepEqual(Object.keys(svc.props.nodes as object), ["m1", "m2", "m3"]);
    assert.deepEqual(svc.props.constraints, ["node.labels.disk!=hdd", "node.labels.zone==a"]);
    assert.equal(svc.props.secrets, "[secret]");
    assert.equal(svc.props.replicas, 2);
    assert.deepEqual(svc.props.rollout, { maxSurge: 1, maxUnavailable: 1 });
    assert.match(String(svc.props.vip), /^10\.254\./);
  });

  it("refuses, before any SSH, what swarm cannot do: a node without Docker, more replicas than eligible nodes, a start-first roll with no free node, selectors it cannot express", () => {
    // given
    const { app, hosts } = lab(3);
    const cluster = new Cluster(app, "lab", { controlPlane: [hosts[0]], orchestrator: "swarm" });
    cluster.addHost(hosts[0], { labels: { zone: "a" }, runtime: ContainerRuntime.docker(hosts[0]) });
    cluster.addHost(hosts[1], { labels: { zone: "b" }, runtime: ContainerRuntime.systemd(hosts[1]) });
    cluster.addHost(hosts[2], { labels: { zone: "a", "drove.node": "x" } });
    cluster.addService("web", { ...web, replicas: 4 });
    cluster.addService("api", { ...web, replicas: 2, rollout: { maxUnavailable: 0 }, placement: { nodeSelector: { zone: "a" } } });
    cluster.addService("gpu", { ...web, replicas: 1, placement: { matchExpressions: [{ key: "gpu", operator: "Exists" }, { key: "zone", operator: "In", values: ["a"] }] } });
    // when
    const errors = app.validate();
    // then
    assert.deepEqual(errors, [
      "lab: node m2 needs Docker to be a swarm node: cluster.addHost(m2, { runtime: ContainerRuntime.docker(m2) }), not systemd",
      "lab: node m3 needs Docker to be a swarm node: cluster.addHost(m3, { runtime: ContainerRuntime.docker(m3) })",
      "lab: node m3: the label drove.node is drove's own in a swarm (it names the node for `pinned`); use another key",
      "lab/web: node m3 has no container runtime for service web: cluster.addHost(host, { runtime: ContainerRuntime.docker(host) })",
      "lab/web: node m2 runs containers with systemd + runc on the host's network; service replicas need \"docker\" or \"podman\" to publish one port per replica",
      "lab/web: service web wants 4 replicas, but a swarm node runs at most one replica of a service (its published port) and 3 node(s) are eligible; lower `replicas`, or add hosts",
      "lab/api: node m3 has no container runtime for service api: cluster.addHost(host, { runtime: ContainerRuntime.docker(host) })",
      "lab/api: service api: a roll with `maxUnavailable: 0` starts 1 new replica(s) before stopping old ones, but with 2 replicas on 2 eligible node(s) (one per node) there is no free node for them; set `rollout.maxUnavailable` to 1 or more, lower `replicas`, or add hosts",
      "lab/gpu: service gpu: its placement (gpu Exists; zone In a) matches no node of the cluster (m1 {disk=ssd, zone=a}; m2 {disk=ssd, zone=b}; m3 {disk=ssd, zone=a, drove.node=x}); change the selector, or label a host with cluster.addHost(host, { labels })",
      "lab/gpu: service gpu: the expression `gpu Exists` has no swarm constraint (swarm matches labels with == and != only); use `In` with one value, `NotIn`, or a nodeSelector",
    ], errors.join("\n"));
  });
});
