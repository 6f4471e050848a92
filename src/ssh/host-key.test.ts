import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fingerprint, knownHostKeys, parsePinnedHostKey } from "./host-key";

/** A key pair made for this run only (never committed). */
interface TestKey {
  /** `ssh-ed25519 AAAA...` */
  readonly type: string;
  readonly base64: string;
  readonly blob: Buffer;
  /** What `ssh-keygen -lf` prints for it. */
  readonly fingerprint: string;
}

let dir: string;
let keyA: TestKey;
let keyB: TestKey;

function makeKey(name: string): TestKey {
  const path = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@test`, "-f", path]);
  const [type, base64] = readFileSync(`${path}.pub`, "utf8").trim().split(/\s+/);
  // "256 SHA256:... comment (ED25519)"
  const fp = execFileSync("ssh-keygen", ["-lf", `${path}.pub`]).toString().split(" ")[1];
  return { type, base64, blob: Buffer.from(base64, "base64"), fingerprint: fp };
}

function line(hosts: string, key: TestKey): string {
  return `${hosts} ${key.type} ${key.base64}`;
}

/** Which of the test keys a lookup returned, by name, in order. */
function names(keys: Buffer[]): string[] {
  return keys.map((k) => (k.equals(keyA.blob) ? "A" : k.equals(keyB.blob) ? "B" : "?"));
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "drove-host-key-test-"));
  keyA = makeKey("a");
  keyB = makeKey("b");
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("fingerprint", () => {
  it("matches what ssh-keygen -lf prints for a freshly generated key", () => {
    // given
    const blob = keyA.blob;

    // when
    const fp = fingerprint(blob);

    // then
    assert.match(keyA.fingerprint, /^SHA256:/);
    assert.equal(fp, keyA.fingerprint);
  });

  it("tells two keys apart", () => {
    // given / when
    const a = fingerprint(keyA.blob);
    const b = fingerprint(keyB.blob);

    // then
    assert.notEqual(a, b);
    assert.equal(b, keyB.fingerprint);
  });

  it("has no base64 padding", () => {
    // given
    const blob = Buffer.from("anything");

    // when
    const fp = fingerprint(blob);

    // then
    assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe("parsePinnedHostKey", () => {
  it("accepts a fingerprint as ssh-keygen -lf prints it", () => {
    // given
    const text = keyA.fingerprint;

    // when
    const fp = parsePinnedHostKey(text);

    // then
    assert.equal(fp, keyA.fingerprint);
  });

  it("trims whitespace around a fingerprint", () => {
    // given
    const text = `  ${keyA.fingerprint}\n`;

    // when
    const fp = parsePinnedHostKey(text);

    // then
    assert.equal(fp, keyA.fingerprint);
  });

  it("turns a public key line (with its comment) into its fingerprint", () => {
    // given
    const text = readFileSync(join(dir, "a.pub"), "utf8");

    // when
    const fp = parsePinnedHostKey(text);

    // then
    assert.equal(fp, keyA.fingerprint);
  });

  it("turns a public key line without a comment into its fingerprint", () => {
    // given
    const text = `${keyB.type} ${keyB.base64}`;

    // when
    const fp = parsePinnedHostKey(text);

    // then
    assert.equal(fp, keyB.fingerprint);
  });

  const garbage: readonly [string, string][] = [
    ["empty text", ""],
    ["whitespace", "   "],
    ["a word", "hello"],
    ["a truncated fingerprint", "SHA256:abc"],
    ["an MD5 fingerprint", "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"],
    ["the whole ssh-keygen -lf line", "256 SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8 test (ED25519)"],
    ["a key type alone", "ssh-ed25519"],
    ["an unsupported key type", "ssh-dss AAAAB3NzaC1kc3MAAACBAP"],
    ["a key with characters outside base64", "ssh-ed25519 AAAA!!!!"],
    ["a private key", ["-----BEGIN", "OPENSSH PRIVATE KEY-----"].join(" ")],
  ];
  for (const [name, text] of garbage) {
    it(`returns undefined for ${name}`, () => {
      // given: text that is neither a fingerprint nor a public key line

      // when
      const fp = parsePinnedHostKey(text);

      // then
      assert.equal(fp, undefined);
    });
  }
});

describe("knownHostKeys", () => {
  it("finds a plain host name on port 22", () => {
    // given
    const text = [line("web1", keyA), line("web2", keyB)].join("\n");

    // when
    const keys = knownHostKeys(text, "web1", 22);

    // then
    assert.deepEqual(names(keys), ["A"]);
  });

  it("finds nothing for a host the file does not list", () => {
    // given
    const text = [line("web1", keyA), line("web2", keyB)].join("\n");

    // when
    const keys = knownHostKeys(text, "db1", 22);

    // then
    assert.deepEqual(keys, []);
  });

  it("does not match a plain host name when the port is not 22", () => {
    // given
    const text = line("web1", keyA);

    // when
    const keys = knownHostKeys(text, "web1", 2222);

    // then
    assert.deepEqual(keys, []);
  });

  it("finds a [host]:port entry for a non-22 port", () => {
    // given
    const text = [line("[web1]:2222", keyA), line("[web1]:2200", keyB)].join("\n");

    // when
    const keys = knownHostKeys(text, "web1", 2222);

    // then
    assert.deepEqual(names(keys), ["A"]);
  });

  it("finds a [address]:port entry for an IP address", () => {
    // given
    const text = [line("[10.0.0.5]:2222", keyA), line("[10.0.0.6]:2222", keyB)].join("\n");

    // when
    const keys = knownHostKeys(text, "10.0.0.5", 2222);

    // then
    assert.deepEqual(names(keys), ["A"]);
  });

  it("does not take [host]:port for another port", () => {
    // given
    const text = line("[web1]:2222", keyA);

    // when
    const keys = knownHostKeys(text, "web1", 2223);

    // then
    assert.deepEqual(keys, []);
  });

  it("finds a host named anywhere in a comma list", () => {
    // given
    const text = line("web1,10.0.0.5,[web1]:2222", keyA);

    // when
    const byName = knownHostKeys(text, "web1", 22);
    const byAddress = knownHostKeys(text, "10.0.0.5", 22);
    const byPort = knownHostKeys(text, "web1", 2222);
    const other = knownHostKeys(text, "10.0.0.6", 22);

    // then
    assert.deepEqual(names(byName), ["A"]);
    assert.deepEqual(names(byAddress), ["A"]);
    assert.deepEqual(names(byPort), ["A"]);
    assert.deepEqual(other, []);
  });

  it("matches wildcard patterns with * and ?", () => {
    // given
    const text = [line("*.example.com", keyA), line("db?", keyB)].join("\n");

    // when
    const star = knownHostKeys(text, "web1.example.com", 22);
    const question = knownHostKeys(text, "db1", 22);
    const neither = knownHostKeys(text, "db12", 22);
    const dotIsLiteral = knownHostKeys(text, "web1Xexample.com", 22);

    // then
    assert.deepEqual(names(star), ["A"]);
    assert.deepEqual(names(question), ["B"]);
    assert.deepEqual(neither, []);
    assert.deepEqual(names(dotIsLiteral), [], "`.` in a pattern is a literal dot, not any character");
  });

  it("matches host names case-insensitively", () => {
    // given
    const text = line("Web1.Example.COM", keyA);

    // when
    const keys = knownHostKeys(text, "web1.example.com", 22);

    // then
    assert.deepEqual(names(keys), ["A"]);
  });

  it("refuses a host that a negated pattern excludes, even when another pattern matches", () => {
    // given
    const text = line("*.example.com,!evil.example.com", keyA);

    // when
    const excluded = knownHostKeys(text, "evil.example.com", 22);
    const included = knownHostKeys(text, "good.example.com", 22);

    // then
    assert.deepEqual(excluded, []);
    assert.deepEqual(names(included), ["A"]);
  });

  it("does not match on a negated pattern alone", () => {
    // given
    const text = line("!web1", keyA);

    // when
    const keys = knownHostKeys(text, "web2", 22);

    // then
    assert.deepEqual(keys, []);
  });

  it("finds hashed entries written by ssh-keygen -H, for port 22 and other ports", () => {
    // given: a known_hosts file hashed by OpenSSH itself
    const file = join(dir, "known_hosts_hashed");
    writeFileSync(file, [line("web1", keyA), line("[web2]:2222", keyB), ""].join("\n"));
    execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "pipe" });
    const text = readFileSync(file, "utf8");
    assert.doesNotMatch(text, /web1|web2/, "the names are hashed");
    assert.match(text, /^\|1\|/m);

    // when
    const web1 = knownHostKeys(text, "web1", 22);
    const web2 = knownHostKeys(text, "web2", 2222);
    const web2WrongPort = knownHostKeys(text, "web2", 22);
    const web3 = knownHostKeys(text, "web3", 22);

    // then
    assert.deepEqual(names(web1), ["A"]);
    assert.deepEqual(names(web2), ["B"]);
    assert.deepEqual(web2WrongPort, []);
    assert.deepEqual(web3, []);
  });

  it("ignores @revoked lines", () => {
    // given
    const text = [`@revoked ${line("web1", keyB)}`, line("web1", keyA)].join("\n");

    // when
    const keys = knownHostKeys(text, "web1", 22);

    // then
    assert.deepEqual(names(keys), ["A"]);
  });

  it("ignores @cert-authority lines", () => {
    // given
    const text = `@cert-authority ${line("*", keyB)}`;

    // when
    const keys = knownHostKeys(text, "web1", 22);

    // then
    assert.deepEqual(keys, []);
  });

  it("ignores comments, blank lines and lines with too few fields", () => {
    // given
    const text = [
      `# ${line("web1", keyB)}`,
      `   # ${line("web1", keyB)}`,
      "",
      "   ",
      "web1 ssh-ed25519",
      `${line("web1", keyA)} a trailing comment`,
    ].join("\n");

    // when
    const keys = knownHostKeys(text, "web1", 22);

    // then
    assert.deepEqual(names(keys), ["A"]);
  });

  it("returns every key listed for the host, in file order", () => {
    // given
    const text = [line("web1", keyB), line("db1", keyA), line("web1,web2", keyA)].join("\r\n");

    // when
    const keys = knownHostKeys(text, "web1", 22);

    // then
    assert.deepEqual(names(keys), ["B", "A"]);
  });

  it("returns blobs whose fingerprints are the keys' own", () => {
    // given
    const text = line("web1", keyA);

    // when
    const [blob] = knownHostKeys(text, "web1", 22);

    // then
    assert.equal(fingerprint(blob), keyA.fingerprint);
  });
});
