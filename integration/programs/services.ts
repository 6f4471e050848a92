/**
 * Integration program: a cluster of every lab machine (Docker on each, zones a/b
 * as labels) running one service, on etcd (the default) or Docker Swarm, shaped by config:
 *   orchestrator "etcd" (default) or "swarm"
 *   managers    how many of the machines form the control plane (default: all)
 *   zone        when set, only nodes of that zone (a nodeSelector)
 *   image       image reference (digest-pinned)
 *   serviceName the service's name (default web)
 *   replicas    how many (default 3)
 *   command     JSON array replacing the image's command (default: publish the secret, serve /www)
 *   greeting    a secret delivered as the file /run/secrets/greeting
 *   maxSurge, maxUnavailable   the roll (default 1 / 0: the service never drops below `replicas`)
 *   attest      "true": every host is attested by its TPM (trust on first use of PCRs 0-7)
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Attestation, Cluster, ContainerRuntime, Host, type Orchestrator } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = Host.fromLab(app);
if (config.getBoolean("attest")) for (const h of hosts) new Attestation(h, "attestation", { trustOnFirstUse: true });
const orchestrator = (config.get("orchestrator") ?? "etcd") as Orchestrator;
const cluster = new Cluster(app, "lab", { controlPlane: hosts.slice(0, config.getNumber("managers") ?? hosts.length), orchestrator });
hosts.forEach((h, i) => cluster.addHost(h, { labels: { zone: i % 2 ? "b" : "a" }, runtime: ContainerRuntime.docker(h) }));
// The default command publishes the secret file's content, so a test can see it arrived.
const command = config.get("command") ?? JSON.stringify(["/bin/sh", "-c", "cat /run/secrets/greeting > /www/secret.txt; exec httpd -f -p 8080 -h /www"]);
cluster.addService(config.get("serviceName") ?? "web", {
  image: config.require("image"),
  replicas: config.getNumber("replicas") ?? 3,
  ports: [{ port: 80, targetPort: 8080 }],
  command: JSON.parse(command) as string[],
  secrets: { greeting: config.getSecret("greeting") ?? "hello" },
  healthCheck: { http: { path: "/", port: 8080 }, interval: 1, timeout: 2, retries: 3 },
  ...(config.get("zone") ? { placement: { nodeSelector: { zone: config.get("zone")! } } } : {}),
  rollout: { maxSurge: config.getNumber("maxSurge") ?? 1, maxUnavailable: config.getNumber("maxUnavailable") ?? 0 },
});
app.synth();
