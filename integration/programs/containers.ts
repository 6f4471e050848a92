/**
 * Integration program: one web container per lab machine, Docker on the first,
 * Podman on the second, systemd + runc (no daemon) on the third, shaped by config:
 *   image      image reference (digest-pinned)
 *   greeting   $GREETING in the container (set it as a secret to test secrets)
 *   command    optional JSON array replacing the image's command
 */
import * as pulumi from "@pulumi/pulumi";
import { App, ContainerRuntime, Host } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = Host.fromLab(app);
hosts.forEach((h, i) => {
  const runtime = [ContainerRuntime.docker, ContainerRuntime.podman, ContainerRuntime.systemd][i % 3](h);
  const command = config.get("command");
  runtime.addContainer("web", {
    image: config.require("image"),
    env: { GREETING: config.getSecret("greeting") ?? "hello" },
    ports: [{ host: 8080, container: 8080 }],
    ...(command ? { command: JSON.parse(command) as string[] } : {}),
  });
});
app.synth();
