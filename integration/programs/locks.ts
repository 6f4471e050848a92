/**
 * Integration program for host locks: a File on each lab machine, and, where
 * asked, a slow step the test controls, so that one stack's run is still
 * going while another stack's run starts. Shaped by stack config:
 *   path       the file (its content names the stack)
 *   only       comma-separated machine names to manage (default: all)
 *   gateOn     machine that also gets a oneshot unit drovelk-gate-<gate>, whose
 *   gate       start waits until the file /run/drovelk-gate-<gate> exists (the
 *              test makes it; a new gate id makes a new slow step)
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Host, loadInventory } from "../../src";
import { addGate } from "./gate";

const config = new pulumi.Config();
const stack = pulumi.getStack();
const only = config.get("only")?.split(",");
const app = new App();
for (const m of loadInventory().machines) {
  if (only && !only.includes(m.name)) continue;
  const host = Host.fromInventory(app, m);
  host.addFile("file", { path: config.require("path"), content: `written by stack ${stack}\n`, mode: "0644" });
  if (config.get("gateOn") === m.name) {
    addGate(host, "drovelk", config.require("gate"));
  }
}
app.synth();
