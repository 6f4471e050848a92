import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Server } from "ssh2";
import { sh } from "../quote";
import { SshConnection } from "./connection";

/**
 * A real SSH server on loopback (ssh2's server) that runs each exec request
 * with the local `sh`, as sshd would, and counts the requests.
 */
describe("SshConnection probes", () => {
  const dir = mkdtempSync(join(tmpdir(), "drove-conn-"));
  let server: Server;
  let port = 0;
  let execs: string[] = [];
  let hostKey = "";
  let conn: SshConnection;

  before(async () => {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host")]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "user")]);
    hostKey = readFileSync(join(dir, "host.pub"), "utf8").trim();
    server = new Server({ hostKeys: [readFileSync(join(dir, "host"))] }, (client) => {
      client.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
      client.on("session", (accept) => {
        const session = accept();
        session.on("exec", (acceptExec, _reject, info) => {
          execs.push(info.command);
          const stream = acceptExec();
          const child = spawn("sh", ["-c", info.command]);
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          stream.pipe(child.stdin);
          child.on("close", (code) => {
            stream.exit(code ?? 255);
            stream.end();
          });
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    port = (server.address() as { port: number }).port;
    conn = await SshConnection.open({ host: "127.0.0.1", port, user: "root", privateKey: readFileSync(join(dir, "user"), "utf8"), hostKey });
  });

  after(() => {
    conn?.close();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("logs in with a key file named by privateKeyPath, and names a key file it cannot read", async () => {
    // when
    const byPath = await SshConnection.open({ host: "127.0.0.1", port, user: "root", privateKeyPath: join(dir, "user"), hostKey });
    const answer = await byPath.exec(sh`echo in`);
    byPath.close();
    // then
    assert.equal(answer.stdout, "in\n");
    await assert.rejects(
      SshConnection.open({ host: "127.0.0.1", port, user: "root", privateKeyPath: join(dir, "nope"), hostKey }),
      (e: Error) => e.name === "ConnectError" && e.message.includes(`Unable to read the private key on root@127.0.0.1:${port}: ${join(dir, "nope")}: ENOENT`),
    );
  });

  it("sends probes that arrive together in one round trip, each with its own result", async () => {
    // given
    execs = [];
    const probes = Array.from({ length: 10 }, (_, i) => sh`printf %s ${`out ${i}`}; printf %s ${`err ${i}`} >&2; exit ${i}`);
    // when
    const results = await Promise.all(probes.map((p) => conn.exec(p, { batch: true })));
    // then
    assert.equal(execs.length, 1, `one exec request, not ${execs.length}`);
    assert.deepEqual(
      results,
      probes.map((_, i) => ({ code: i, stdout: `out ${i}`, stderr: `err ${i}` })),
    );
  });

  it("gives the same results batched as one by one", async () => {
    // given
    const probes = [sh`echo "$((1+2))"`, sh`printf 'a b\n\n'`, sh`ls /nonexistent-drove-dir`, sh`head -c 3000 /dev/zero | tr '\\0' x`];
    // when
    const alone = [];
    for (const p of probes) alone.push(await conn.exec(p));
    const together = await Promise.all(probes.map((p) => conn.exec(p, { batch: true })));
    // then
    assert.deepEqual(together, alone);
  });

  it("lets probes that arrive while a batch runs ride in the next one", async () => {
    // given: a slow probe in flight
    execs = [];
    const first = conn.exec(sh`sleep 0.3; echo first`, { batch: true });
    await new Promise((r) => setTimeout(r, 100));
    // when: five more arrive while it runs
    const rest = await Promise.all(Array.from({ length: 5 }, (_, i) => conn.exec(sh`echo ${i}`, { batch: true })));
    // then: two round trips in all
    assert.equal((await first).stdout, "first\n");
    assert.deepEqual(rest.map((r) => r.stdout), ["0\n", "1\n", "2\n", "3\n", "4\n"]);
    assert.equal(execs.length, 2);
  });

  it("never batches a command that reads stdin", async () => {
    execs = [];
    const [a, b] = await Promise.all([conn.exec(sh`cat`, { batch: true, stdin: "one" }), conn.exec(sh`cat`, { batch: true, stdin: "two" })]);
    assert.deepEqual([a.stdout, b.stdout], ["one", "two"]);
    assert.equal(execs.length, 2);
  });
});
