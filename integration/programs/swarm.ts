/**
 * Integration program: integration/programs/services.ts with one more switch,
 * `orchestrator` (default "swarm"): the same cluster of every lab machine (Docker
 * on each, zones a/b as labels) running the same service, shaped by the same config:
 *   orchestrator "swarm" (default) or "etcd"
 *   managers    how many of the machines form the control plane (1 or 3; default 1: m1 manages, m2 and m3 work)
 *   image       image reference (digest-pinned)
 *   serviceName the service's name (default web)
 *   replicas    how many (default 3)
 *   zone        when set, only nodes of that zone (a nodeSelector)
 *   command     JSON array replacing the image's command (default: publish the secret, serve /www)
 *   greeting    a secret delivered as the file /run/secrets/greeting
 *   maxSurge, maxUnavailable   the roll (default 1 / 0)
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Cluster, ContainerRuntime, Host, type Orchestrator } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = Host.fromLab(app);
const orchestrator = (config.get("orchestrator") ?? "swarm") as Orchestrator;
const cluster = new Cluster(app, "lab", { controlPlane: hosts.slice(0, config.getNumber("managers") ?? 1), orchestrator });
hosts.forEach((h, i) => cluster.addHost(h, { labels: { zone: i % 2 ? "b" : "a" }, runtime: ContainerRuntime.docker(h) }));
// The default command publishes the secret file's content, so a test can see it arrived.
const command = config.get("command") ?? JSON.stringify(["/bin/sh", "-c", "cat /run/secrets/greeting > /www/secret.txt; exec httpd -f -p 8080 -h /www"]);
const zone = config.get("zone");
cluster.addService(config.get("serviceName") ?? "web", {
  image: config.require("image"),
  replicas: config.getNumber("replicas") ?? 3,
  ports: [{ port: 80, targetPort: 8080 }],
  command: JSON.parse(command) as string[],
  secrets: { greeting: config.getSecret("greeting") ?? "hello" },
  healthCheck: { http: { path: "/", port: 8080 }, interval: 1, timeout: 2, retries: 3 },
  rollout: { maxSurge: config.getNumber("maxSurge") ?? 1, maxUnavailable: config.getNumber("maxUnavailable") ?? 0 },
  ...(zone ? { placement: { nodeSelector: { zone } } } : {}),
});
app.synth();
