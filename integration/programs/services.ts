/**
 * Integration program: a cluster of every lab machine (etcd on all of them, Docker
 * on each) running one service, shaped by config:
 *   image       image reference (digest-pinned)
 *   serviceName the service's name (default web)
 *   replicas    how many (default 3)
 *   command     JSON array replacing the image's command (default: publish the secret, serve /www)
 *   greeting    a secret delivered as the file /run/secrets/greeting
 *   maxSurge, maxUnavailable   the roll (default 1 / 0: the service never drops below `replicas`)
 *   attest      "true": every host is attested by its TPM (trust on first use of PCRs 0-7)
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Attestation, Cluster, ContainerRuntime, Host } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = Host.fromLab(app);
if (config.getBoolean("attest")) for (const h of hosts) new Attestation(h, "attestation", { trustOnFirstUse: true });
const cluster = new Cluster(app, "lab", { controlPlane: hosts });
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
  rollout: { maxSurge: config.getNumber("maxSurge") ?? 1, maxUnavailable: config.getNumber("maxUnavailable") ?? 0 },
});
app.synth();
