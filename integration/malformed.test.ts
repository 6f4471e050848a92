/**
 * Malformed programs fail before any SSH, naming the construct path and the
 * fix, through the real pulumi CLI. No lab: each program's Host points at a
 * TCP listener on loopback that counts connections (the valid control case
 * shows it would see one).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { expectMatch, TestProject } from "./harness";

const stateDir = mkdtempSync(join(tmpdir(), "drove-it-malformed-"));
let server: Server;
let connections = 0;
let project: TestProject;

const CASES: { name: string; error: RegExp }[] = [
  { name: "missing-address", error: /web: `address` .*(required|must)/i },
  { name: "duplicate-id", error: /web: a Host with the id "web" already exists at the top of the App; give each construct an id of its own among its siblings/ },
  { name: "bad-prop", error: /web\/motd: `path` must be an absolute, normalised file path like \/etc\/motd, but "etc\/motd" was provided[\s\S]*web\/motd: `mode` must be octal like "0644", but "0999" was provided/ },
  { name: "selects-no-host", error: /lab\/api: service api: its placement \(zone=c\) matches no node of the cluster \(web \{zone=a\}\); change the selector, or label a host/ },
  { name: "colocation-cycle", error: /lab\/a: services a, b are to run with each other in a cycle \(a -> b -> a\), so none can be placed first; remove `colocateWith` from one of them/ },
  { name: "dependency-cycle", error: /web\/(a|b): resources wait for each other in a cycle \(web\/(a|b) -> web\/(a|b) -> web\/\1\), so none can be made first; remove one of these dependencies/ },
];

describe("Malformed programs fail before any SSH, naming the construct, through the real pulumi CLI", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    // Its own state folder (backend, passphrase): nothing of it lands in the checkout.
    process.env.DROVE_STATE = stateDir;
    server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    project = await TestProject.create("malformed.ts");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(stateDir, "key")]);
    const key = await project.config({ key: readFileSync(join(stateDir, "key"), "utf8") }, true);
    assert.equal(key.code, 0, key.output);
  });

  after(async () => {
    server?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    test(`${c.name}: preview and up fail with the construct's path and no connection`, async () => {
      // given
      connections = 0;
      const port = String((server.address() as { port: number }).port);
      const cfg = await project.config({ case: c.name, port });
      assert.equal(cfg.code, 0, cfg.output);
      // when
      const preview = await project.pulumi(["preview"]);
      const up = await project.pulumi(["up", "--yes"]);
      // then
      for (const r of [preview, up]) {
        assert.notEqual(r.code, 0, r.output);
        expectMatch(r.output, c.error);
        assert.doesNotMatch(r.output, /\n\s+at .*:\d+:\d+\)?\n/, "a bare stack trace");
      }
      assert.equal(connections, 0, "something connected to the host before the error");
    });
  }

  test("control: the valid program's up does connect (so the counter can see a connection)", async () => {
    connections = 0;
    const port = String((server.address() as { port: number }).port);
    assert.equal((await project.config({ case: "valid", port })).code, 0);
    // (a preview of a new stack plans creates without connecting; up connects to make the Host)
    const up = await project.pulumi(["up", "--yes"]);
    assert.notEqual(up.code, 0, "the listener is no SSH server, so up cannot succeed");
    assert.ok(connections > 0, `up never connected:\n${up.output}`);
  });
});
