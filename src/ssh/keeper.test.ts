import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import type { ClientChannel } from "ssh2";
import { ConnectError, isConnectError } from "../errors";
import type { SshTarget } from "./connection";
import { FrameReader, KeptClient, frame, fromWire, keptClient, openKept, persistSeconds, serveKeeper, type KeepableConnection, type KeeperOptions } from "./keeper";

/** A "connection" whose channels are local `sh -c` processes, shaped as ssh2's. */
function localConnection(opts: { hangFirst?: boolean } = {}): KeepableConnection & { channels: number; commands: string[]; closed: boolean } {
  let hang = opts.hangFirst ?? false;
  const conn = {
    channels: 0,
    commands: [] as string[],
    closed: false,
    get isOpen() {
      return !conn.closed;
    },
    rawExec(command: string): Promise<ClientChannel> {
      if (hang) {
        hang = false;
        return new Promise(() => undefined); // a link that went dark: no answer, ever
      }
      conn.channels++;
      conn.commands.push(command);
      const child = spawn("sh", ["-c", command]);
      const ch = Object.assign(new EventEmitter(), {
        stderr: child.stderr,
        write: (d: Buffer) => child.stdin.write(d),
        end: (d?: Buffer) => {
          if (d) child.stdin.write(d);
          child.stdin.end();
        },
        signal: (name: string) => child.kill(`SIG${name}` as NodeJS.Signals),
        close: () => child.kill("SIGKILL"),
      });
      child.stdout.on("data", (d: Buffer) => ch.emit("data", d));
      child.on("close", (code, signal) => ch.emit("close", code, signal?.replace(/^SIG/, "")));
      return Promise.resolve(ch as unknown as ClientChannel);
    },
    close() {
      conn.closed = true;
    },
  };
  return conn;
}

const keepers: { close(): void }[] = [];
after(() => keepers.forEach((k) => k.close()));

async function keeper(login: (t: SshTarget) => Promise<KeepableConnection>, idleMs = 60_000, times: Pick<KeeperOptions, "freshMs" | "staleOpenMs"> = {}) {
  const path = join(mkdtempSync(join(tmpdir(), "drove-keeper-")), "ssh", "k.sock");
  let exited = false;
  keepers.push(await serveKeeper(path, idleMs, { login, exit: () => (exited = true), ...times }));
  return { path, exited: () => exited };
}

function run(client: KeptClient, command: string, stdin?: string): Promise<{ code: number | null; signal?: string; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      let stdout = "";
      let stderr = "";
      ch.on("data", (d: Buffer) => (stdout += d));
      ch.stderr.on("data", (d: Buffer) => (stderr += d));
      ch.on("close", (code: number | null, signal?: string) => resolve({ code, signal, stdout, stderr }));
      if (stdin !== undefined) ch.end(stdin);
    }),
  );
}

const target: SshTarget = { host: "10.0.0.1", privateKeyPath: "/keys/a" };

describe("the SSH keeper", { timeout: 30_000 }, () => {
  it("runs a command on its kept connection: stdout, stderr and the exit status come back apart, stdin reaches it", async () => {
    // given
    const conn = localConnection();
    const k = await keeper(async () => conn);
    const client = await openKept(k.path, target);
    // when
    const r = await run(client, "cat; echo oops >&2; exit 3", "from stdin\n");
    // then
    assert.deepEqual(r, { code: 3, signal: undefined, stdout: "from stdin\n", stderr: "oops\n" });
  });

  it("holds what a command says until its reader listens (a lock holder's first line comes before the caller has had a turn)", async () => {
    // given
    const k = await keeper(async () => localConnection());
    const client = await openKept(k.path, target);
    // when the caller attaches its listeners only after a while
    const r = await new Promise<{ stdout: string; code: number | null }>((resolve, reject) =>
      client.exec("echo early; exec sleep 0.3", (err, ch) => {
        if (err) return reject(err);
        setTimeout(() => {
          let stdout = "";
          ch.on("data", (d: Buffer) => (stdout += d));
          ch.on("close", (code: number | null) => resolve({ stdout, code }));
        }, 150);
      }),
    );
    // then nothing was lost
    assert.deepEqual(r, { stdout: "early\n", code: 0 });
  });

  it("logs in once per target: later requests, from any client, ride the same connection", async () => {
    // given
    let logins = 0;
    const conn = localConnection();
    const k = await keeper(async () => (logins++, conn));
    // when
    for (let i = 0; i < 3; i++) await run(await openKept(k.path, target), "echo one");
    await Promise.all([run(await openKept(k.path, target), "echo two"), run(await openKept(k.path, target), "echo two")]);
    // then (besides any `true` it ran to check the connection was alive)
    assert.equal(logins, 1);
    assert.deepEqual(conn.commands.filter((c) => c !== "true"), ["echo one", "echo one", "echo one", "echo two", "echo two"]);
  });

  it("never lets a target with other credentials or another pinned host key ride a connection", async () => {
    // given
    const seen: SshTarget[] = [];
    const k = await keeper(async (t) => (seen.push(t), localConnection()));
    // when
    await run(await openKept(k.path, target), "true");
    await run(await openKept(k.path, { ...target, privateKeyPath: "/keys/b" }), "true");
    await run(await openKept(k.path, { ...target, hostKey: "SHA256:other" }), "true");
    // then
    assert.deepEqual(seen.map((t) => [t.privateKeyPath, t.hostKey]), [["/keys/a", undefined], ["/keys/b", undefined], ["/keys/a", "SHA256:other"]]);
  });

  it("passes a failed login on as the same error: its class, message and whether it may be retried", async () => {
    // given
    const failure = new ConnectError("root@10.0.0.1", "connect", "it did not answer in time", { fixes: ["check it is up"], retryable: true });
    const k = await keeper(async () => {
      throw failure;
    });
    // when
    const err = await openKept(k.path, target).then(
      () => assert.fail("the keeper answered"),
      (e: unknown) => e as ConnectError,
    );
    // then
    assert.ok(isConnectError(err));
    assert.equal(err.message, failure.message);
    assert.equal(err.retryable, true);
  });

  it("replaces, when the next run starts, a kept connection that sat idle and no longer answers, and the run's commands run", async () => {
    // given a connection used once, whose link then goes dark
    const first = localConnection();
    let logins = 0;
    const k = await keeper(async () => (++logins === 1 ? first : localConnection()), 60_000, { freshMs: 50, staleOpenMs: 200 });
    await run(await openKept(k.path, target), "true");
    (first as { rawExec: KeepableConnection["rawExec"] }).rawExec = () => new Promise(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    // when
    const r = await run(await openKept(k.path, target), "echo ok");
    // then
    assert.equal(r.stdout, "ok\n");
    assert.equal(logins, 2);
    assert.equal(first.closed, true, "the dead connection was closed");
  });

  it("never replaces a run's connection behind its back: once it died, the run's next command fails as on a connection of its own, and the next run logs in anew", async () => {
    // given a run on a kept connection
    const first = localConnection();
    let logins = 0;
    const k = await keeper(async () => (++logins === 1 ? first : localConnection()));
    const client = await openKept(k.path, target);
    await run(client, "true");
    let closed = false;
    client.on("close", () => (closed = true));
    // when the connection dies mid-run
    first.close();
    const err = await run(client, "echo late").then(
      () => assert.fail("the command ran on another connection"),
      (e: unknown) => e as Error,
    );
    // then
    assert.match(err.message, /^Unable to run a command on root@10\.0\.0\.1: the SSH connection was closed/);
    assert.equal(closed, true, "the run's connection reads as closed");
    assert.equal(logins, 1);
    // and the next run logs in again
    assert.equal((await run(await openKept(k.path, target), "echo next")).stdout, "next\n");
    assert.equal(logins, 2);
  });

  it("stops a command whose client went away (a killed run), as a closed SSH connection would", async () => {
    // given
    const conn = localConnection();
    const k = await keeper(async () => conn);
    const { connect } = await import("node:net");
    const sock = connect(k.path);
    await new Promise((r) => sock.once("connect", r));
    const done = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      sock.on("data", (c: Buffer) => chunks.push(c));
      sock.on("close", () => resolve(Buffer.concat(chunks)));
    });
    sock.write(JSON.stringify({ op: "exec", target, command: "exec sleep 30" }) + "\n");
    await new Promise((r) => setTimeout(r, 300));
    // when
    const t0 = Date.now();
    sock.destroy();
    await done;
    // then: a new command still runs at once, and the sleep did not hold the keeper
    const r = await run(await openKept(k.path, target), "echo next");
    assert.equal(r.stdout, "next\n");
    assert.ok(Date.now() - t0 < 10_000);
  });

  it("closes idle connections and leaves once it holds none", async () => {
    // given
    const conn = localConnection();
    const k = await keeper(async () => conn, 200);
    await run(await openKept(k.path, target), "true");
    // when
    await new Promise((r) => setTimeout(r, 1_500));
    // then
    assert.equal(conn.closed, true);
    assert.equal(k.exited(), true);
  });
});

describe("keeper frames", () => {
  it("come out whole and in order however the stream is cut", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }),
        (frames, cuts) => {
          const wire = Buffer.concat(frames.map(([t, p]) => frame(t, Buffer.from(p))));
          const got: [number, number[]][] = [];
          const reader = new FrameReader((t, p) => got.push([t, [...p]]));
          let at = 0;
          for (let i = 0; at < wire.length; i++) {
            const n = cuts[i % cuts.length];
            reader.push(wire.subarray(at, at + n));
            at += n;
          }
          assert.deepEqual(got, frames.map(([t, p]) => [t, [...p]]));
        },
      ),
    );
  });
});

describe("DROVE_SSH_PERSIST", () => {
  it("is off unless set to a number of seconds", () => {
    assert.equal(persistSeconds({}), 0);
    assert.equal(persistSeconds({ DROVE_SSH_PERSIST: "0" }), 0);
    assert.equal(persistSeconds({ DROVE_SSH_PERSIST: "" }), 0);
    assert.equal(persistSeconds({ DROVE_SSH_PERSIST: "60" }), 60);
  });

  it("refuses anything else, naming the variable, what it was and the fix", () => {
    for (const bad of ["1m", "-5", "1.5", "99999999"]) {
      assert.throws(
        () => persistSeconds({ DROVE_SSH_PERSIST: bad }),
        new RegExp(`DROVE_SSH_PERSIST must be a whole number of seconds from 0 to 86400 .*but it is "${bad.replace(".", "\\.")}"\\. Either set it to 60`),
      );
    }
  });
});

describe("errors across the keeper's socket", () => {
  it("keep their class and message", () => {
    const e = fromWire({ name: "ConnectError", message: "Unable to connect to root@h: x. Check it.", host: "root@h", retryable: false });
    assert.ok(e instanceof ConnectError);
    assert.equal(e.message, "Unable to connect to root@h: x. Check it.");
  });
});

describe("a keeper that cannot start", () => {
  it("leaves the run to log in itself, and says so once, naming the folder and the fix, and why: the keeper exited (seen at once, not after the start's deadline)", async () => {
    // given a state folder that cannot be made (its parent is a file): the keeper exits at once
    const file = join(mkdtempSync(join(tmpdir(), "drove-keeper-")), "a-file");
    writeFileSync(file, "");
    const env = { DROVE_STATE: process.env.DROVE_STATE, DROVE_SSH_PERSIST: process.env.DROVE_SSH_PERSIST };
    process.env.DROVE_STATE = join(file, "state");
    process.env.DROVE_SSH_PERSIST = "5";
    const said: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (said.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      // when
      const first = await keptClient(target);
      const second = await keptClient(target);
      // then
      assert.equal(first, undefined);
      assert.equal(second, undefined);
      const warnings = said.filter((l) => l.includes("DROVE_SSH_PERSIST is set"));
      assert.equal(warnings.length, 1, said.join(""));
      assert.match(warnings[0], /^warning: DROVE_SSH_PERSIST is set, but drove's SSH keeper could not be started at .*a-file\/state\/ssh\/keeper-[^ ]+\.sock \(it exited with status 1\); this run logs in to each machine itself\. Check that its folder can be made/);
    } finally {
      process.stderr.write = write;
      for (const [k, v] of Object.entries(env)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
