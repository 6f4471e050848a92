import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectError, DroveError, HostError, isConnectError, reasonOf, ValidationError } from "./errors";

describe("HostError", () => {
  it("reads 'Unable to <action> on <host>: <reason>. Either A, or B.' with two fixes", () => {
    // given
    const fixes = ["log in as root", "set `user` to a sudoer"];

    // when
    const err = new HostError("deploy@web1", "write /etc/motd", "permission denied", { fixes });

    // then
    assert.equal(err.message, "Unable to write /etc/motd on deploy@web1: permission denied. Either log in as root, or set `user` to a sudoer.");
  });

  it("chains three fixes with 'or'", () => {
    // given
    const fixes = ["install the package", "remove the unit", "set `enabled` to false"];

    // when
    const err = new HostError("web1", "start nginx.service", "unit not found", { fixes });

    // then
    assert.equal(err.message, "Unable to start nginx.service on web1: unit not found. Either install the package, or remove the unit, or set `enabled` to false.");
  });

  it("states a single fix as a sentence of its own", () => {
    // given
    const fixes = ["install coreutils on the machine"];

    // when
    const err = new HostError("web1", "inspect /etc/motd", "stat: not found", { fixes });

    // then
    assert.equal(err.message, "Unable to inspect /etc/motd on web1: stat: not found. Install coreutils on the machine.");
  });

  it("ends with the reason when there is no fix", () => {
    // given / when
    const err = new HostError("web1", "remove /etc/motd", "read-only file system");

    // then
    assert.equal(err.message, "Unable to remove /etc/motd on web1: read-only file system.");
  });

  it("does not double the full stop when the reason already has one", () => {
    // given / when
    const err = new HostError("web1", "write /etc/motd", "disk full.", { fixes: ["free some space"] });

    // then
    assert.equal(err.message, "Unable to write /etc/motd on web1: disk full. Free some space.");
  });

  it("says 'to' rather than 'on' the host for connecting and logging in", () => {
    // given / when
    const connect = new HostError("web1:2222", "connect", "host key mismatch", { fixes: ["update `hostKey`"] });
    const login = new HostError("deploy@web1", "log in", "permission denied (publickey)");

    // then
    assert.equal(connect.message, "Unable to connect to web1:2222: host key mismatch. Update `hostKey`.");
    assert.equal(login.message, "Unable to log in to deploy@web1: permission denied (publickey).");
  });

  it("keeps the host, the fixes and the cause, and is a DroveError that Pulumi prints without a stack", () => {
    // given
    const cause = new Error("ECONNREFUSED");

    // when
    const err = new HostError("web1", "connect", "refused", { fixes: ["a", "b"], cause });

    // then
    assert.ok(err instanceof DroveError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, "HostError");
    assert.equal(err.host, "web1");
    assert.deepEqual(err.fixes, ["a", "b"]);
    assert.equal(err.cause, cause);
    assert.equal(err.__pulumiRunError, true);
  });
});

describe("ConnectError", () => {
  it("is a HostError that says whether trying again may help", () => {
    // given / when
    const retryable = new ConnectError("web1", "connect", "connection refused", { retryable: true });
    const final = new ConnectError("web1", "log in", "permission denied");

    // then
    assert.ok(retryable instanceof HostError);
    assert.equal(retryable.retryable, true);
    assert.equal(final.retryable, false);
    assert.equal(retryable.message, "Unable to connect to web1: connection refused.");
    assert.ok(isConnectError(retryable));
    assert.ok(!isConnectError(new HostError("web1", "connect", "x")));
    assert.ok(!isConnectError("ConnectError"));
  });
});

describe("ValidationError", () => {
  it("states one message on one line", () => {
    // given
    const messages = ["web1: `port` must be between 1 and 65535, but 0 was provided"];

    // when
    const err = new ValidationError(messages);

    // then
    assert.equal(err.message, "Validation failed: web1: `port` must be between 1 and 65535, but 0 was provided.");
    assert.equal(err.name, "ValidationError");
    assert.deepEqual(err.messages, messages);
  });

  it("lists several messages, one per line, with their count", () => {
    // given
    const messages = ["web1: `port` must be between 1 and 65535, but 0 was provided", "web1/motd: `path` must be absolute"];

    // when
    const err = new ValidationError(messages);

    // then
    assert.equal(
      err.message,
      "Validation failed with 2 errors:\n  - web1: `port` must be between 1 and 65535, but 0 was provided\n  - web1/motd: `path` must be absolute\n",
    );
    assert.doesNotMatch(err.message, /^\.$/m, "no stray full stop on a line of its own");
    assert.deepEqual(err.messages, messages);
  });

  it("is a DroveError", () => {
    // given / when
    const err = new ValidationError(["x"]);

    // then
    assert.ok(err instanceof DroveError);
    assert.deepEqual(err.fixes, []);
  });
});

describe("reasonOf", () => {
  it("takes an Error's message and stringifies anything else", () => {
    // given
    const values: unknown[] = [new Error("boom"), "plain", 42, undefined];

    // when
    const reasons = values.map(reasonOf);

    // then
    assert.deepEqual(reasons, ["boom", "plain", "42", "undefined"]);
  });
});
