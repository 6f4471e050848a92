/**
 * The flagship: every machine of the lab (or of the inventory DROVE_INVENTORY
 * names) as a drove Host, each with a file drove keeps in shape.
 *
 *   npx drove lab up && eval "$(npx drove env)" && pulumi up
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Host } from "../src";

const config = new pulumi.Config();
const greeting = config.get("greeting") ?? "managed by drove";

const app = new App();
const hosts = Host.fromLab(app);
for (const host of hosts) {
  host.addFile("motd", {
    path: "/etc/motd",
    content: `${host.node.id}: ${greeting}\n`,
    mode: "0644",
  });
}
app.synth();

/** What each machine reported about itself. */
export const machines = Object.fromEntries(hosts.map((h) => [h.node.id, h.facts]));
