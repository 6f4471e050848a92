/**
 * Integration program: every lab machine joins cluster "lab"; the control
 * plane (etcd) runs on the machines named by config, so a test can change the
 * membership exactly as a user edits a program:
 *   controlPlane   comma-separated machine names (default "m1,m2,m3")
 * Outputs: the etcd endpoints, the CA, and a client certificate with its key
 * (a secret) for a client the test plays.
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Cluster, Host, loadInventory } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = loadInventory().machines.map((m) => Host.fromInventory(app, m));
const names = (config.get("controlPlane") ?? "m1,m2,m3").split(",").map((s) => s.trim());
const cluster = new Cluster(app, "lab", { controlPlane: names.map((n) => hosts.find((h) => h.node.id === n)!) });
for (const h of hosts) cluster.addHost(h, { labels: { zone: h.node.id === "m1" ? "a" : "b" } });
const client = cluster.clientCertificate("it-client");
app.synth();

export const endpoints = cluster.etcdEndpoints;
export const caPem = cluster.caCertPem;
export const clientCertPem = client.certPem;
export const clientKeyPem = pulumi.secret(client.keyPem);
