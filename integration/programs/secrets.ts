/**
 * Integration program for the secrets suite: every kind of secret drove
 * handles, on every lab machine.
 *   sshKeyFile        the private key every Host logs in with, read here and made a Pulumi secret (as a user would)
 *   wrongKeyFile, wrongKeyOn   optional: another key, for the machine of that name only
 *   registryPassword  (secret) the password of the registry user `puller` (a registry on m1, granted to every machine)
 *   serviceSecret     (secret) delivered as the file /run/secrets/greeting in each replica of the service,
 *                     beside /run/secrets/client.key, the key of a client certificate drove makes
 *   envSecret         (secret) the replicas' TOKEN environment variable
 *   image             the service's image (digest-pinned)
 *   command           optional JSON array replacing the replicas' command
 * Beside those, drove makes keys of its own: the etcd CA, member and client keys,
 * the registry's CA and TLS key. The stack exports one client key, as a secret.
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { App, CertificateAuthority, Cluster, ContainerRuntime, Host, Registry, loadInventory } from "../../src";

const config = new pulumi.Config();
const app = new App();
const privateKey = pulumi.secret(readFileSync(config.require("sshKeyFile"), "utf8"));
const wrongKeyFile = config.get("wrongKeyFile");
const wrongKeyOn = config.get("wrongKeyOn");
const hosts = loadInventory().machines.map((m) =>
  Host.fromInventory(app, m, { privateKey: wrongKeyFile && m.name === wrongKeyOn ? pulumi.secret(readFileSync(wrongKeyFile, "utf8")) : privateKey }),
);

const ca = new CertificateAuthority(app, "registry-ca", { commonName: "drove secrets suite registry CA" });
const registry = new Registry(hosts[0], "registry", { users: { puller: config.requireSecret("registryPassword") }, ca });
for (const h of hosts) registry.grantPull(h);

const cluster = new Cluster(app, "lab", { controlPlane: hosts });
for (const h of hosts) cluster.addHost(h, { runtime: ContainerRuntime.docker(h) });
const command = config.get("command");
// A secret drove makes (a client key of the cluster's CA), beside the config ones, which the engine filters from its own output.
const client = cluster.clientCertificate("secrets-client");
cluster.addService("web", {
  image: config.require("image"),
  replicas: 3,
  ports: [{ port: 80, targetPort: 8080 }],
  ...(command ? { command: JSON.parse(command) as string[] } : {}),
  env: { TOKEN: config.requireSecret("envSecret") },
  secrets: { greeting: config.requireSecret("serviceSecret"), "client.key": client.keyPem },
  healthCheck: { http: { path: "/", port: 8080 }, interval: 1, timeout: 2, retries: 3 },
  rollout: { maxSurge: 1, maxUnavailable: 0 },
});
app.synth();

export const registryEndpoint = registry.endpoint;
export const clientKeyPem = pulumi.secret(client.keyPem);
