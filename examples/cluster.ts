/**
 * The flagship: the lab's machines (or the inventory DROVE_INVENTORY names),
 * each with a file drove keeps in shape; a private registry on the first
 * machine (HTTPS from a CA drove makes, basic auth, trusted by every
 * machine); an image built on the first machine from examples/app and pushed
 * there; and that image running on every machine, each on a different
 * runtime: Docker, Podman, and systemd + runc with no daemon at all. The
 * service answers on port 8080 everywhere.
 *
 *   npx drove lab up && eval "$(npx drove env)"
 *   pulumi config set --secret registryPassword "$(openssl rand -hex 16)"
 *   pulumi up
 */
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { App, ContainerRuntime, Host, Registry } from "drove";

const config = new pulumi.Config();
const greeting = config.get("greeting") ?? "managed by drove";

const app = new App();
const hosts = Host.fromLab(app);

// A private registry on the first machine; every machine trusts its CA, and may pull.
const registry = new Registry(hosts[0], "registry", { users: { drove: config.requireSecret("registryPassword") } });
registry.grantPush(hosts[0]);
for (const h of hosts) registry.grantPull(h);
const runtimes = hosts.map((h, i) => [ContainerRuntime.docker, ContainerRuntime.podman, ContainerRuntime.systemd][i % 3](h));

for (const host of hosts) {
  host.addFile("motd", { path: "/etc/motd", content: `${host.node.id}: ${greeting}\n`, mode: "0644" });
}

// Built where Docker runs, from a local context plus Debian's busybox-static.
const image = runtimes[0].buildImage("web-image", {
  repository: `${registry.endpoint}/drove/web`,
  context: config.get("appDir") ?? join(__dirname, "app"),
  files: { busybox: "/bin/busybox" },
});

for (const rt of runtimes) {
  rt.addContainer("web", {
    image: image.digestRef,
    ports: [{ host: 8080, container: 8080 }],
    restart: "always",
  });
}
app.synth();

/** What each machine reported about itself. */
export const machines = Object.fromEntries(hosts.map((h) => [h.node.id, h.facts]));
/** The image every machine runs, pinned by digest. */
export const webImage = image.digestRef;
/** The registry, and the CA that a client pushing from elsewhere must trust. */
export const registryEndpoint = registry.endpoint;
export const registryCa = registry.ca.certPem;
/** Where the service answers. */
export const urls = hosts.map((h) => pulumi.interpolate`http://${h.address}:8080/`);
