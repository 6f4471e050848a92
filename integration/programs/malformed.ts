/**
 * Integration program: one malformed drove program per `case` (config), each
 * with a Host at 127.0.0.1:`port` where the test counts connections, so that
 * it can check that nothing connected before the error.
 *   case   valid | missing-address | duplicate-id | selects-no-host | colocation-cycle | dependency-cycle | bad-prop
 *   port   the TCP port the test listens on
 *   key    (secret) an SSH private key
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Cluster, ContainerRuntime, Host } from "../../src";

const config = new pulumi.Config();
const which = config.require("case");
const port = config.requireNumber("port");
const app = new App();
const hostKey = "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8";
const privateKey = config.requireSecret("key");
const host = (id: string) => new Host(app, id, { address: "127.0.0.1", port, user: "root", privateKey, hostKey });

switch (which) {
  case "valid":
    host("web").addFile("motd", { path: "/etc/motd", content: "hi\n" });
    break;
  case "missing-address":
    // As a JavaScript program (or an `as any`) could: a required prop left out.
    new Host(app, "web", { port, hostKey } as unknown as ConstructorParameters<typeof Host>[2]);
    break;
  case "duplicate-id":
    host("web");
    host("web");
    break;
  case "bad-prop":
    host("web").addFile("motd", { path: "etc/motd", content: "hi\n", mode: "0999" });
    break;
  case "selects-no-host": {
    const h = host("web");
    const cluster = new Cluster(app, "lab", { controlPlane: [h] });
    cluster.addHost(h, { labels: { zone: "a" }, runtime: ContainerRuntime.docker(h) });
    cluster.addService("api", { image: "registry:5000/api@sha256:" + "0".repeat(64), ports: [{ port: 80, targetPort: 8080 }], placement: { nodeSelector: { zone: "c" } } });
    break;
  }
  case "colocation-cycle": {
    const h = host("web");
    const cluster = new Cluster(app, "lab", { controlPlane: [h] });
    cluster.addHost(h, { runtime: ContainerRuntime.docker(h) });
    const image = "registry:5000/api@sha256:" + "0".repeat(64);
    cluster.addService("a", { image, ports: [{ port: 80, targetPort: 8080 }], placement: { colocateWith: "b" } });
    cluster.addService("b", { image, ports: [{ port: 81, targetPort: 8080 }], placement: { colocateWith: "a" } });
    break;
  }
  case "dependency-cycle": {
    const h = host("web");
    const a = h.addFile("a", { path: "/etc/a", content: "a" });
    const b = h.addFile("b", { path: "/etc/b", content: "b" });
    a.node.addDependency(b);
    b.node.addDependency(a);
    break;
  }
  default:
    throw new Error(`unknown case ${which}`);
}
app.synth();
