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

const config = new pulumi.Config();
const stack = pulumi.getStack();
const only = config.get("only")?.split(",");
const app = new App();
for (const m of loadInventory().machines) {
  if (only && !only.includes(m.name)) continue;
  const host = Host.fromInventory(app, m);
  host.addFile("file", { path: config.require("path"), content: `written by stack ${stack}\n`, mode: "0644" });
  if (config.get("gateOn") === m.name) {
    host.addUnit("gate", {
      name: `drovelk-gate-${config.require("gate")}.service`,
      content: {
        Unit: { Description: "drove integration test: a slow step, done when the test opens its gate" },
        Service: {
          Type: "oneshot",
          RemainAfterExit: "yes",
          ExecStart: `/bin/sh -c 'until [ -e /run/drovelk-gate-${config.require("gate")} ]; do sleep 0.2; done'`,
        },
        Install: { WantedBy: "multi-user.target" },
      },
    });
  }
}
app.synth();
