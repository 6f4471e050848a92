/**
 * Integration program: machines behind bastions. m1 is reached directly as
 * root; m2 only through m1, and m3 only through m1 then m2 (two hops), both as
 * the non-root user `deploy`, whose commands run through sudo.
 *   content        the file's content on m2 and m3
 *   nosudo         also manage a file on m2 as `nosudo`, a user with no sudo rule
 *   badJumpKey     pin m2's host key for m1, the bastion: m2 and m3 must be refused
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { App, Host, loadInventory } from "../../src";

const config = new pulumi.Config();
const inventory = loadInventory();
const machine = (name: string) => inventory.machines.find((m) => m.name === name)!;
const app = new App();

const m1 = Host.fromInventory(app, machine("m1"), config.getBoolean("badJumpKey") ? { hostKey: machine("m2").hostKey } : {});
const m2 = Host.fromInventory(app, machine("m2"), { user: "deploy", jump: m1 });
const m3 = Host.fromInventory(app, machine("m3"), { user: "deploy", jump: m2 });
for (const h of [m2, m3]) {
  h.addFile("file", { path: "/etc/drove-behind-bastion.txt", content: config.require("content"), mode: "0640" });
}
if (config.getBoolean("nosudo")) {
  const m = machine("m2");
  const m2NoSudo = new Host(app, "m2-nosudo", {
    address: m.address,
    user: "nosudo",
    privateKey: pulumi.secret(readFileSync(m.privateKeyPath, "utf8")),
    hostKey: m.hostKey,
    jump: m1,
  });
  m2NoSudo.addFile("file", { path: "/etc/drove-nosudo.txt", content: "never\n" });
}
app.synth();

export const hostnames = { m2: m2.facts.hostname, m3: m3.facts.hostname };
