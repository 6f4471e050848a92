/**
 * Integration program: containerd (no Docker) on every lab machine, one web
 * container each, shaped by config:
 *   image      image reference (digest-pinned), from the lab's plain-HTTP registry
 *   greeting   $GREETING in the container (set it as a secret to test secrets)
 *   command    optional JSON array replacing the image's command
 *   restart    the second machine's restart policy (default "no"); the first's is "always"
 */
import * as pulumi from "@pulumi/pulumi";
import { App, ContainerRuntime, Host } from "../../src";

const config = new pulumi.Config();
const app = new App();
const image = config.require("image");
const registry = image.split("/")[0];
const command = config.get("command");
Host.fromLab(app).forEach((h, i) => {
  // The lab's registry speaks plain HTTP: say so where containerd's pulls look
  // (/etc/containerd/certs.d/<host>/hosts.toml), as one would for any registry.
  const trust = h.addFile("registry-trust", {
    path: `/etc/containerd/certs.d/${registry}/hosts.toml`,
    content: `server = "http://${registry}"\n\n[host."http://${registry}"]\n  capabilities = ["pull", "resolve"]\n`,
    mode: "0644",
  });
  const web = ContainerRuntime.containerd(h).addContainer("web", {
    image,
    env: { GREETING: config.getSecret("greeting") ?? "hello" },
    ports: [{ host: 8080, container: 8080 }],
    restart: i === 0 ? "always" : ((config.get("restart") ?? "no") as "no" | "always"),
    labels: { app: "web" },
    ...(command ? { command: JSON.parse(command) as string[] } : {}),
  });
  web.node.addDependency(trust);
});
app.synth();
