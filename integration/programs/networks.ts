/**
 * Integration program: networks and volumes. On the first lab machine (Docker)
 * and the second (Podman), a user network "app" with two containers on it,
 * "server" (its /www/data a named volume "data") and "client"; on the third
 * (systemd + runc, no networks there) a "server" with the volume "data".
 * Shaped by config:
 *   image          image reference (digest-pinned) every container runs
 *   dockerSubnet   the Docker network's subnet
 *   podmanSubnet   the Podman network's subnet
 */
import * as pulumi from "@pulumi/pulumi";
import { App, ContainerRuntime, Host, type Network } from "../../src";

const config = new pulumi.Config();
const app = new App();
const [m1, m2, m3] = Host.fromLab(app);
const image = config.require("image");

function serverAndClient(runtime: ContainerRuntime, subnet: string): Network {
  const net = runtime.addNetwork("app", { subnet, labels: { tier: "web" } });
  const data = runtime.addVolume("data", { labels: { keep: "yes" } });
  runtime.addContainer("server", { image, networks: [net], volumes: [{ volume: data, target: "/www/data" }] });
  runtime.addContainer("client", { image, networks: [net] });
  return net;
}

serverAndClient(ContainerRuntime.docker(m1), config.require("dockerSubnet"));
// Podman on CNI resolves container names with the dnsname plugin, from Debian.
const dnsname = m2.addPackage("golang-github-containernetworking-plugin-dnsname");
serverAndClient(ContainerRuntime.podman(m2), config.require("podmanSubnet")).node.addDependency(dnsname);

const systemd = ContainerRuntime.systemd(m3);
const data = systemd.addVolume("data");
systemd.addContainer("server", { image, ports: [{ host: 8080, container: 8080 }], volumes: [{ volume: data, target: "/www/data" }] });

app.synth();
