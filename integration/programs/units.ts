/**
 * Integration program: on each lab machine, a Directory, a directory that was
 * there before drove (adopted), and a SystemdUnit running a tiny service,
 * shaped by stack config so a test can change them between runs exactly as a
 * user edits a program.
 *   dirPath, dirMode      the directory drove makes (default /srv/drove-hello, 0750)
 *   adoptPath             a directory that exists before drove manages it (default /srv)
 *   unitName              the unit (default drove-hello.service)
 *   execStart             what it runs (default: writes the date to /run/drove-hello.out every second)
 *   brokenOn              machine that also gets drove-broken.service, whose program does not exist
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Host, loadInventory } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = loadInventory().machines.map((m) => Host.fromInventory(app, m));
for (const h of hosts) {
  h.addDirectory("dir", { path: config.get("dirPath") ?? "/srv/drove-hello", mode: config.get("dirMode") ?? "0750" });
  h.addDirectory("adopted", { path: config.get("adoptPath") ?? "/srv", mode: "0755" });
  h.addUnit("unit", {
    name: config.get("unitName") ?? "drove-hello.service",
    content: {
      Unit: { Description: "drove integration test: says hello" },
      Service: {
        Type: "exec",
        ExecStart: config.get("execStart") ?? "/bin/sh -c 'while true; do date > /run/drove-hello.out; sleep 1; done'",
      },
      Install: { WantedBy: "multi-user.target" },
    },
  });
  if (config.get("brokenOn") === h.node.id) {
    h.addUnit("broken", {
      name: "drove-broken.service",
      content: {
        Unit: { Description: "drove integration test: a program that is not there" },
        Service: { Type: "exec", ExecStart: "/usr/local/bin/drove-missing-program --serve" },
        Install: { WantedBy: "multi-user.target" },
      },
    });
  }
}
app.synth();
