import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SshTarget } from "../src/ssh";
import { checkConnection, connectionIdentity, diffInputs, fixesFor, UNKNOWN, type Failures } from "./common";

const HOST_KEY = "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8";

const connection = (over: Partial<SshTarget> & Record<string, unknown> = {}): SshTarget =>
  ({ host: "10.0.0.5", port: 22, user: "root", privateKey: "fake-test-key\nAAAA\n", hostKey: HOST_KEY, ...over }) as SshTarget;

const inputs = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  connection: connection(),
  path: "/etc/motd",
  content: "hello\n",
  mode: "0644",
  createParents: true,
  ...over,
});

describe("diffInputs", () => {
  const REPLACE_ON = ["path"] as const;
  const OUTPUT_ONLY = ["sha256", "size"] as const;

  const table: {
    name: string;
    olds: Record<string, unknown>;
    news: Record<string, unknown>;
    expected: { changes: boolean; replaces: string[] };
  }[] = [
    {
      name: "nothing changed -> no changes",
      olds: inputs(),
      news: inputs(),
      expected: { changes: false, replaces: [] },
    },
    {
      name: "a changed property -> change in place",
      olds: inputs(),
      news: inputs({ content: "bye\n" }),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "a changed property that cannot change in place -> replace",
      olds: inputs(),
      news: inputs({ path: "/etc/issue" }),
      expected: { changes: true, replaces: ["path"] },
    },
    {
      name: "a property added -> change",
      olds: inputs(),
      news: inputs({ owner: "www-data" }),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "a property removed -> change",
      olds: inputs({ owner: "www-data" }),
      news: inputs(),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "a property given as undefined is the same as one left out",
      olds: inputs(),
      news: inputs({ owner: undefined }),
      expected: { changes: false, replaces: [] },
    },
    {
      name: "output-only properties in the old outputs are ignored",
      olds: inputs({ sha256: "a".repeat(64), size: 6 }),
      news: inputs(),
      expected: { changes: false, replaces: [] },
    },
    {
      name: "output-only properties are ignored even when they differ",
      olds: inputs({ sha256: "a".repeat(64), size: 6 }),
      news: inputs({ sha256: "b".repeat(64), size: 7 }),
      expected: { changes: false, replaces: [] },
    },
    {
      name: "a new private key -> change in place, not a new machine",
      olds: inputs(),
      news: inputs({ connection: connection({ privateKey: "fake-test-key\nBBBB\n" }) }),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "a password instead of a key -> change in place",
      olds: inputs(),
      news: inputs({ connection: connection({ privateKey: undefined, password: "hunter2" }) }),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "a new pinned host key -> change in place",
      olds: inputs(),
      news: inputs({ connection: connection({ hostKey: "SHA256:" + "A".repeat(43) }) }),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "another address -> another machine: replace",
      olds: inputs(),
      news: inputs({ connection: connection({ host: "10.0.0.6" }) }),
      expected: { changes: true, replaces: ["connection"] },
    },
    {
      name: "another login user -> replace",
      olds: inputs(),
      news: inputs({ connection: connection({ user: "deploy" }) }),
      expected: { changes: true, replaces: ["connection"] },
    },
    {
      name: "another port -> replace",
      olds: inputs(),
      news: inputs({ connection: connection({ port: 2222 }) }),
      expected: { changes: true, replaces: ["connection"] },
    },
    {
      name: "a connection not known yet (preview) -> change, no replace decided",
      olds: inputs(),
      news: inputs({ connection: UNKNOWN }),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "an address not known yet (preview) -> change, no replace decided",
      olds: inputs(),
      news: inputs({ connection: connection({ host: UNKNOWN }) }),
      expected: { changes: true, replaces: [] },
    },
    {
      name: "a replace-on property and a credential change together -> only the property replaces",
      olds: inputs(),
      news: inputs({ path: "/etc/issue", connection: connection({ password: "hunter2" }) }),
      expected: { changes: true, replaces: ["path"] },
    },
  ];

  for (const row of table) {
    it(row.name, () => {
      // given
      const { olds, news } = row;

      // when
      const diff = diffInputs(olds, news, REPLACE_ON, OUTPUT_ONLY);

      // then
      assert.equal(diff.changes, row.expected.changes);
      assert.deepEqual(diff.replaces, row.expected.replaces);
    });
  }

  it("never replaces when port 22 and user root are spelt out instead of left to their defaults", () => {
    // given
    const olds = inputs({ connection: connection({ port: undefined, user: undefined }) });
    const news = inputs({ connection: connection({ port: 22, user: "root" }) });

    // when
    const diff = diffInputs(olds, news, REPLACE_ON, OUTPUT_ONLY);

    // then
    assert.deepEqual(diff.replaces, []);
  });

  it("compares output-only keys when none are declared", () => {
    // given
    const olds = inputs({ sha256: "a".repeat(64) });
    const news = inputs();

    // when
    const diff = diffInputs(olds, news, REPLACE_ON);

    // then
    assert.equal(diff.changes, true);
  });
});

describe("connectionIdentity", () => {
  it("is user@host:port, with the defaults filled in, and no credentials", () => {
    // given
    const c = connection({ port: undefined, user: undefined, password: "hunter2" });

    // when
    const id = connectionIdentity(c);

    // then
    assert.equal(id, "root@10.0.0.5:22");
  });

  it("is empty for no connection", () => {
    // given / when
    const id = connectionIdentity(undefined);

    // then
    assert.equal(id, "");
  });
});

describe("checkConnection", () => {
  function check(value: unknown): { target: SshTarget; failures: Failures } {
    const failures: Failures = [];
    const target = checkConnection(value, failures);
    return { target, failures };
  }

  it("accepts a complete connection without failures and returns it", () => {
    // given
    const c = connection();

    // when
    const { target, failures } = check(c);

    // then
    assert.deepEqual(failures, []);
    assert.equal(target, c);
  });

  it("accepts a known_hosts file instead of a pinned key, and a password instead of a key", () => {
    // given
    const c = connection({ hostKey: undefined, knownHostsFile: "/root/.ssh/known_hosts", privateKey: undefined, password: "hunter2" });

    // when
    const { failures } = check(c);

    // then
    assert.deepEqual(failures, []);
  });

  it("accepts a public key line as the pinned host key", () => {
    // given
    const c = connection({ hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKPA4wpRJonzB1clH8o+GCFkKUfVOsPg8SRtZDfbj0Nb web1" });

    // when
    const { failures } = check(c);

    // then
    assert.deepEqual(failures, []);
  });

  it("requires a connection at all, saying what it holds", () => {
    // given
    const value = undefined;

    // when
    const { failures } = check(value);

    // then
    assert.equal(failures.length, 1);
    assert.equal(failures[0].property, "connection");
    assert.match(failures[0].reason, /`connection` is required/);
    assert.match(failures[0].reason, /address, user, key and host key/);
  });

  for (const [name, host] of [
    ["missing", undefined],
    ["empty", ""],
    ["not a string", 42],
  ] as const) {
    it(`fails on a ${name} host, naming \`host\` and what to put there`, () => {
      // given
      const c = connection({ host: host as never });

      // when
      const { failures } = check(c);

      // then
      assert.deepEqual(failures, [{ property: "connection.host", reason: "`host` must be the machine's address or DNS name" }]);
    });
  }

  for (const port of [0, 70000, -1, 22.5, "22"] as const) {
    it(`fails on port ${JSON.stringify(port)}, naming \`port\`, its range and the value given`, () => {
      // given
      const c = connection({ port: port as never });

      // when
      const { failures } = check(c);

      // then
      assert.deepEqual(failures, [
        { property: "connection.port", reason: `\`port\` must be between 1 and 65535, but ${JSON.stringify(port)} was provided` },
      ]);
    });
  }

  it("accepts the port range's ends", () => {
    // given
    const low = connection({ port: 1 });
    const high = connection({ port: 65535 });

    // when / then
    assert.deepEqual(check(low).failures, []);
    assert.deepEqual(check(high).failures, []);
  });

  it("fails when no host key is pinned, naming both ways to pin one and how to get the fingerprint", () => {
    // given
    const c = connection({ hostKey: undefined });

    // when
    const { failures } = check(c);

    // then
    assert.equal(failures.length, 1);
    assert.equal(failures[0].property, "connection.hostKey");
    assert.match(failures[0].reason, /set `hostKey`/);
    assert.match(failures[0].reason, /`knownHostsFile`/);
    assert.match(failures[0].reason, /ssh-keygen -lf/);
  });

  it("fails on a host key that is neither a fingerprint nor a key line, saying which forms it takes", () => {
    // given
    const c = connection({ hostKey: "MD5:16:27:ac:a5" });

    // when
    const { failures } = check(c);

    // then
    assert.deepEqual(failures, [
      { property: "connection.hostKey", reason: "`hostKey` must be a SHA256:... fingerprint or an `ssh-ed25519 AAAA...` public key line" },
    ]);
  });

  it("fails when there is nothing to log in with, naming both `privateKey` and `password`", () => {
    // given
    const c = connection({ privateKey: undefined });

    // when
    const { failures } = check(c);

    // then
    assert.equal(failures.length, 1);
    assert.equal(failures[0].property, "connection.privateKey");
    assert.match(failures[0].reason, /`privateKey`/);
    assert.match(failures[0].reason, /`password`/);
  });

  it("reports every problem at once", () => {
    // given
    const c = { port: 0 };

    // when
    const { failures } = check(c);

    // then
    assert.deepEqual(
      failures.map((f) => f.property),
      ["connection.host", "connection.port", "connection.hostKey", "connection.privateKey"],
    );
  });

  it("checks a jump host too, under its own property path", () => {
    // given
    const c = connection({ jump: connection({ host: "", hostKey: "nonsense" }) });

    // when
    const { failures } = check(c);

    // then
    assert.deepEqual(
      failures.map((f) => f.property),
      ["connection.jump.host", "connection.jump.hostKey"],
    );
  });

  it("uses the property name it is given", () => {
    // given
    const failures: Failures = [];

    // when
    checkConnection({ ...connection(), host: "" }, failures, "bastion");

    // then
    assert.deepEqual(failures.map((f) => f.property), ["bastion.host"]);
  });

  it("lets values not known yet (preview) through without failures", () => {
    // given
    const whole = UNKNOWN;
    const parts = connection({ host: UNKNOWN, port: UNKNOWN as never, privateKey: UNKNOWN, hostKey: UNKNOWN });

    // when
    const a = check(whole);
    const b = check(parts);

    // then
    assert.deepEqual(a.failures, []);
    assert.deepEqual(b.failures, []);
  });

  it("never puts the private key or the password in a failure", () => {
    // given
    const privateKey = "fake-test-key\nTOPSECRETKEYMATERIAL\n";
    const c = { host: "", port: 99999, privateKey, password: "hunter2-secret", hostKey: "bad" };

    // when
    const { failures } = check(c);

    // then
    assert.ok(failures.length >= 3);
    for (const f of failures) {
      assert.doesNotMatch(f.reason, /TOPSECRETKEYMATERIAL|hunter2-secret/);
    }
  });
});

describe("fixesFor", () => {
  const deploy: SshTarget = { host: "10.0.0.5", user: "deploy" };
  for (const stderr of ["sudo: a password is required", "sudo: a terminal is required to read the password", "deploy is not in the sudoers file.  This incident will be reported."]) {
    it(`names passwordless sudo or root for ${JSON.stringify(stderr)}`, () => {
      // when
      const fixes = fixesFor(deploy, stderr);
      // then
      assert.equal(fixes.length, 2);
      assert.match(fixes[0], /deploy ALL=\(ALL\) NOPASSWD:ALL' > \/etc\/sudoers\.d\/deploy/);
      assert.match(fixes[1], /user: "root"/);
    });
  }

  it("offers nothing for a failure it does not recognise", () => {
    assert.deepEqual(fixesFor(deploy, "cp: cannot stat 'x': No such file or directory"), []);
  });
});
