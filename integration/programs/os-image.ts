/**
 * Integration program: every lab machine runs the OS image "web-os", which
 * ships a web service (python3's http.server on :8080) serving its own version,
 * a user with the lab's SSH key, and a motd. Shaped by config:
 *   version   the image's version (default 1.0)
 *   broken    "ssh": the image masks sshd (the boot never answers; its updater
 *             rolls it back at the deadline); "unit": a health unit fails
 *   deadline  seconds a new boot has to be marked good (default 60)
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { App, Host, OsImage, loadInventory } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = Host.fromLab(app);
const version = config.get("version") ?? "1.0";
const broken = config.get("broken");
const key = readFileSync(loadInventory().machines[0].privateKeyPath + ".pub", "utf8").trim();

const os = new OsImage(app, "web-os", {
  version,
  packages: ["python3", "curl"],
  users: [{ name: "core", sshAuthorizedKeys: [key] }],
  files: [
    { path: "/usr/share/web-os/index.html", contents: `web-os ${version}\n` },
    { path: "/etc/motd", contents: `web-os ${version}, made by drove\n` },
  ],
  units: [
    {
      name: "web.service",
      contents: "[Unit]\nDescription=web-os web\nAfter=network.target\n\n[Service]\nType=exec\nExecStart=/usr/bin/python3 -m http.server 8080 --directory /usr/share/web-os\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n",
    },
  ],
  health: { command: "curl -sf -m 2 http://127.0.0.1:8080/", deadlineSeconds: config.getNumber("deadline") ?? 60 },
});
if (broken === "ssh") os.addUnit({ name: "ssh.service", mask: true });
if (broken === "unit") {
  os.addUnit({ name: "selftest.service", contents: "[Unit]\nDescription=a self test that fails\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/false\n\n[Install]\nWantedBy=multi-user.target\n" });
}
for (const h of hosts) h.runs(os);
app.synth();

export const images = pulumi.all(hosts.map((h) => h.facts)).apply((fs) => fs.map((f) => f.osImage ?? "none"));
