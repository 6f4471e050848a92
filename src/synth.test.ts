import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { packageRoot } from "./paths";

const drove = join(packageRoot, "bin", "drove");

function project(): { dir: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "drove-synth-"));
  symlinkSync(join(packageRoot, "node_modules"), join(dir, "node_modules"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id")]);
  const pub = readFileSync(join(dir, "id.pub"), "utf8").trim();
  writeFileSync(join(dir, "Pulumi.yaml"), "name: synthtest\nruntime: nodejs\nmain: cluster.ts\n");
  // A secure value is ciphertext in the stack file; synth never decrypts it.
  writeFileSync(join(dir, "Pulumi.dev.yaml"), "config:\n  synthtest:greeting: hello from config\n  synthtest:token:\n    secure: v1:AAAA:BBBB\n");
  writeFileSync(
    join(dir, "inventory.yaml"),
    yaml.dump({ machines: [{ name: "web1", address: "192.0.2.10", user: "root", privateKeyPath: join(dir, "id"), hostKey: pub }] }),
  );
  writeFileSync(
    join(dir, "cluster.ts"),
    `import * as pulumi from "@pulumi/pulumi";
import { App, Host } from ${JSON.stringify(join(packageRoot, "src"))};
const config = new pulumi.Config();
const app = new App();
for (const h of Host.fromLab(app, ${JSON.stringify(join(dir, "inventory.yaml"))})) {
  h.addFile("motd", { path: "/etc/motd", content: config.require("greeting") + "\\n" });
  h.addFile("token", { path: "/etc/token", content: config.requireSecret("token"), mode: "0600" });
}
app.synth();
`,
  );
  return { dir, key: readFileSync(join(dir, "id"), "utf8") };
}

describe("drove synth", () => {
  it("renders the desired state per host as YAML, with the stack's config, secrets as [secret], touching no machine", () => {
    // given a project whose only machine (192.0.2.10, TEST-NET) does not exist
    const { dir, key } = project();
    // when
    const r = spawnSync(drove, ["synth", "--stack", "dev"], { cwd: dir, encoding: "utf8", env: { ...process.env, DROVE_STATE: join(dir, ".drove") } });
    // then
    assert.equal(r.status, 0, r.stderr);
    const doc = yaml.load(r.stdout) as { hosts: Record<string, { path: string; type: string; props: Record<string, unknown> }[]> };
    assert.deepEqual(Object.keys(doc.hosts), ["web1"]);
    const [host, motd, token] = doc.hosts.web1;
    assert.equal(host.type, "drove:index:Host");
    // (a lab inventory names its key file: the key itself is in no output, only its path)
    assert.deepEqual(host.props.connection, { host: "192.0.2.10", port: 22, user: "root", privateKeyPath: join(dir, "id"), hostKey: readFileSync(join(dir, "id.pub"), "utf8").trim() });
    assert.deepEqual(motd.props, { connection: host.props.connection, path: "/etc/motd", content: "hello from config\n", mode: "0644", createParents: true });
    assert.equal(token.props.content, "[secret]");
    const body = key.split("\n")[1];
    assert.ok(!r.stdout.includes(body) && !r.stderr.includes(body), "the private key appears in synth output");
    assert.ok(!r.stdout.includes("BBBB"), "the secure config value appears in synth output");
  });

  it("names a missing program and says how to point at one", () => {
    const { dir } = project();
    const r = spawnSync(drove, ["synth", "nope.ts"], { cwd: dir, encoding: "utf8" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /There is no program at .*nope\.ts\. Either name it: `drove synth path\/to\/cluster\.ts`, or set `main:` in Pulumi\.yaml\./);
  });
});
