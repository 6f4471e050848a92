/**
 * Integration program: Debian packages on each lab machine, shaped by config:
 *   packages   comma-separated `name` or `name=version`
 */
import * as pulumi from "@pulumi/pulumi";
import { App, Host, Package } from "../../src";

const config = new pulumi.Config();
const app = new App();
const hosts = Host.fromLab(app);
// Stable ids (pkg0, pkg1, ...) so that renaming a package replaces it in place.
for (const h of hosts) {
  (config.get("packages") ?? "")
    .split(",")
    .filter(Boolean)
    .forEach((spec, i) => {
      const [name, version] = spec.split("=");
      new Package(h, `pkg${i}`, { name, ...(version ? { version } : {}) });
    });
}
app.synth();
