/**
 * Integration program for faults in the middle of a run: files on every lab
 * machine, a slow step the test controls on one of them (so that the test can
 * break something while the run is known to be at that step), and, where
 * asked, a container pulled from the lab's registry once that step is done.
 * Shaped by stack config:
 *   tags       comma-separated: each machine gets /etc/drovefa-<tag>.conf for each
 *              (a new tag is new work on every machine; the old ones must stay)
 *   gateOn     machine that gets a oneshot unit drovefa-gate-<gate>, whose start
 *   gate       waits until the file /run/drovefa-gate-<gate> exists (the test
 *              makes it; a new gate id makes a new slow step)
 *   image      image reference: a Docker container `web` on `gateOn`, started
 *              after the slow step (so its pull happens after the test broke something)
 */
import * as pulumi from "@pulumi/pulumi";
import { App, ContainerRuntime, Host, loadInventory } from "../../src";
import { addGate } from "./gate";

const config = new pulumi.Config();
const tags = config.require("tags").split(",");
const app = new App();
for (const m of loadInventory().machines) {
  const host = Host.fromInventory(app, m);
  for (const tag of tags) host.addFile(`file-${tag}`, { path: `/etc/drovefa-${tag}.conf`, content: `written by drove, ${tag}, on ${m.name}\n`, mode: "0644" });
  if (config.get("gateOn") !== m.name) continue;
  const gate = config.require("gate");
  const unit = addGate(host, "drovefa", gate);
  const image = config.get("image");
  if (image) {
    const web = ContainerRuntime.docker(host).addContainer("web", { image, ports: [{ host: 8080, container: 8080 }] });
    web.node.addDependency(unit);
  }
}
app.synth();
