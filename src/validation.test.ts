import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ownershipErrors, pathErrors } from "./validation";

// Found by integration/hostile.test.ts: each was accepted, then failed on the machine or never converged.
describe("pathErrors", () => {
  it("refuses a name longer than 255 bytes and a path longer than 4095 bytes, which Linux refuses (ENAMETOOLONG)", () => {
    // given
    const long = "é".repeat(128); // 256 bytes
    // when / then
    assert.deepEqual(pathErrors("h/f", `/srv/${long}`, "file", "/etc/motd"), [`h/f: \`path\` must have names of at most 255 bytes each, but it has one of 256 bytes (${JSON.stringify("é".repeat(40) + "...")})`]);
    assert.deepEqual(pathErrors("h/f", `/srv/${"a".repeat(255)}`, "file", "/etc/motd"), []);
    assert.deepEqual(pathErrors("h/f", "/a".repeat(2048), "file", "/etc/motd"), ["h/f: `path` must be at most 4095 bytes long, but it is 4096 bytes"]);
  });
});

describe("ownershipErrors", () => {
  it("refuses an owner or group of digits alone, which chown would take for a numeric id (\"0\" is root)", () => {
    // when
    const errors = ownershipErrors("h/f", { owner: "0", group: "1000" });
    // then
    assert.deepEqual(errors, [
      'h/f: `owner` must be a name like "www-data", not a number (chown would take "0" for a numeric id), but "0" was provided',
      'h/f: `group` must be a name like "www-data", not a number (chown would take "1000" for a numeric id), but "1000" was provided',
    ]);
    assert.deepEqual(ownershipErrors("h/f", { owner: "www-data", group: "g1" }), []);
  });
});
