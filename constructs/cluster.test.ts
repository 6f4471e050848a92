import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { App } from "../src/app";
import { Cluster } from "./cluster";
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

  it("refuses a host listed twice, a bad name and an orchestrator it does not have yet", () => {
    const { app, hosts } = lab(3);
    assert.deepEqual(messagesOf(() => new Cluster(app, "dup", { controlPlane: [hosts[0], hosts[1], hosts[0]] })), ["dup: host m1 appears twice in `controlPlane`; list each host once"]);
    assert.deepEqual(messagesOf(() => new Cluster(app, "Prod_1", { controlPlane: [hosts[0]] })), [
      `Prod_1: the cluster's id is its name in etcd keys and DNS names: lower-case letters, digits and '-', up to 42, but "Prod_1" was provided`,
    ]);
    assert.deepEqual(messagesOf(() => new Cluster(app, "sw", { controlPlane: [hosts[0]], orchestrator: "swarm" })), ['sw: `orchestrator: "swarm"` is not available yet; use "etcd" (the default)']);
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
