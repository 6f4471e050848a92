/**
 * Integration program: one File on each lab machine, shaped by stack config,
 * so a test can change it between runs exactly as a user edits a program.
 *   path, content, mode            the file
 *   only                           comma-separated machine names to manage (default: all)
 *   badHostKey                     machine whose hostKey is replaced by another machine's
 *   unreachable                    machine whose address is replaced by an unused lab address
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Host, loadInventory } from "../../src";

const config = new pulumi.Config();
const inventory = loadInventory();
const only = config.get("only")?.split(",");
const app = new App();
const hosts: Host[] = [];
for (const m of inventory.machines) {
  if (only && !only.includes(m.name)) continue;
  const other = inventory.machines.find((x) => x.name !== m.name)!;
  const address = config.get("unreachable") === m.name ? m.address.replace(/\.\d+$/, ".250") : m.address;
  const hostKey = config.get("badHostKey") === m.name ? other.hostKey : m.hostKey;
  hosts.push(Host.fromInventory(app, m, { address, hostKey }));
}
for (const h of hosts) {
  h.addFile("file", {
    path: config.require("path"),
    content: config.get("content") ?? "",
    mode: config.get("mode") ?? "0644",
  });
}
app.synth();

export const hostnames = Object.fromEntries(hosts.map((h) => [h.node.id, h.facts.hostname]));
