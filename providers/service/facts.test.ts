import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { healthProbeCommand, nodeServiceFactCommand, parseNodeServiceFact } from "./facts";
import { etcdDeleteCommand, etcdListCommand, etcdPutCommand, endpointKey } from "./etcd";

const SEP = "----drove-service-fact----\n";

describe("parseNodeServiceFact", () => {
  it("given nothing of the service on the node, reports it all absent", () => {
    const f = parseNodeServiceFact(`[]\n${SEP}0\n${SEP}absent\n${SEP}absent\n${SEP}inactive\n`);
    assert.deepEqual(f, { replicas: [], vip: false, proxyConfig: undefined, hostsBlock: undefined, haproxyActive: false });
  });

  it("given two replicas (one crash-looping), the VIP, the proxy and the hosts block, reports them by slot", () => {
    const inspect = JSON.stringify([
      { Name: "/drove-c-web-1", Config: { Image: "reg/web@sha256:1", Labels: { "drove.slot": "1", "drove.version": "v2", "drove.instance": "i1" } }, State: { Running: true, Restarting: true } },
      { Name: "/drove-c-web-0", Config: { Image: "reg/web@sha256:1", Labels: { "drove.slot": "0", "drove.version": "v2", "drove.instance": "i0" } }, State: { Running: true } },
    ]);
    const f = parseNodeServiceFact(`${inspect}\n${SEP}1\n${SEP}CFG\n${SEP}10.254.0.5 web.c.drove\n${SEP}active\n`);
    assert.deepEqual(
      f.replicas.map((r) => [r.name, r.slot, r.version, r.running, r.instance]),
      [
        ["drove-c-web-0", 0, "v2", true, "i0"],
        ["drove-c-web-1", 1, "v2", false, "i1"],
      ],
    );
    assert.equal(f.vip, true);
    assert.equal(f.proxyConfig, "CFG\n");
    assert.equal(f.hostsBlock, "10.254.0.5 web.c.drove\n");
    assert.equal(f.haproxyActive, true);
  });

  it("refuses an answer it cannot read", () => {
    assert.throws(() => parseNodeServiceFact("garbage"), /unexpected answer from the service probe/);
  });

  it("asks the engine for the service's containers by label", () => {
    assert.match(nodeServiceFactCommand({ engine: "podman", cluster: "c", service: "web", vip: "10.254.0.5" }).text, /^ids=\$\(podman ps -aq --filter label=drove.service=c\/web/);
  });
});

describe("healthProbeCommand", () => {
  const base = { engine: "docker" as const, name: "drove-c-web-0", hostPortOf: (p: number) => (p === 8080 ? 20001 : undefined), timeout: 2 };
  const table: [string, Parameters<typeof healthProbeCommand>[0]["check"], string][] = [
    ["HTTP on the replica's host port", { http: { path: "/healthz", port: 8080 } }, "curl -fsS -o /dev/null -m 2 http://127.0.0.1:20001/healthz 2>&1"],
    ["TCP on the replica's host port", { tcp: { port: 8080 } }, "timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/20001' 2>&1 && echo open"],
    ["a command inside the container", { command: ["pg_isready", "-q"] }, "timeout 2 docker exec drove-c-web-0 pg_isready -q 2>&1"],
  ];
  for (const [name, check, want] of table) it(name, () => assert.equal(healthProbeCommand({ ...base, check }).text, want));
  it("no check: the container runs", () => assert.match(healthProbeCommand({ ...base, check: undefined }).text, /State\.Running/));
});

describe("etcd commands", () => {
  const access = { connection: { host: "10.0.0.1" }, endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"], caPem: "CA", certPem: "CERT", keyPem: "KEY" };
  it("put the endpoint under the cluster's key layout, certificates from stdin, never on the command line", () => {
    const cmd = etcdPutCommand(access, endpointKey("c", "web", "m1-0"), '{"a":1}').text;
    assert.match(cmd, /e put \/drove\/c\/services\/web\/endpoints\/m1-0 '\{"a":1\}'/);
    assert.match(cmd, /--endpoints=https:\/\/10\.0\.0\.1:2379,https:\/\/10\.0\.0\.2:2379/);
    assert.doesNotMatch(cmd, /KEY|CERT/);
  });
  it("delete one key, or a prefix; list keys only", () => {
    assert.match(etcdDeleteCommand(access, "/k").text, /e del \/k >\/dev\/null$/);
    assert.match(etcdDeleteCommand(access, "/p/", true).text, /e del --prefix \/p\/ >\/dev\/null$/);
    assert.match(etcdListCommand(access, "/p/").text, /e get --prefix --keys-only \/p\//);
  });
});
