import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { containerKind } from "./provider";
import { unitFile } from "./systemd";
import { UNKNOWN } from "../common";

// Found by integration/hostile.test.ts: env values travel as KEY=value lines of an env file,
// and Docker's reader drops a CR at a line's end ("x\r" arrived as "x"). A secret, known only
// here and not at construction, gets the same check as a plain value.
describe("Container check: env values", () => {
  const connection = { host: "10.0.0.5", privateKey: "k", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" };
  const base = { connection, engine: "docker", name: "web", image: "reg/web@sha256:abc" };

  it("refuses CR, LF and NUL in a value, naming the variable; takes any other text", () => {
    // when
    const bad = containerKind.check({ ...base, env: { A: "x\r", B: "a\nb", C: "a\0b" } }).failures;
    const good = containerKind.check({ ...base, env: { D: "$(touch /tmp/x) 'q' \"r\" \\ \t 😀 %n" } }).failures;
    // then
    const why = "must be a single line, without CR, LF or NUL characters (an env file line drops a CR at its end)";
    assert.deepEqual(bad, ["A", "B", "C"].map((k) => ({ property: "env", reason: `environment variable ${k} ${why}` })));
    assert.deepEqual(good, []);
  });
});

describe("Container check: the systemd unit", () => {
  const connection = { host: "10.0.0.5", privateKey: "k", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" };
  const base = { connection, name: "web", image: "reg/web@sha256:abc" };

  it("is an input of a systemd + runc container only, the text drove writes; unknown while the image is", () => {
    // when
    const systemd = containerKind.check({ ...base, engine: "systemd", restart: "on-failure" }).inputs;
    const docker = containerKind.check({ ...base, engine: "docker" }).inputs;
    const pending = containerKind.check({ ...base, engine: "systemd", image: UNKNOWN }).inputs;
    // then
    assert.equal(systemd.unitFile, unitFile({ name: "web", image: "reg/web@sha256:abc", restart: "on-failure" }));
    assert.match(systemd.unitFile!, /^Restart=on-failure$/m);
    assert.equal("unitFile" in docker, false);
    assert.equal(pending.unitFile, UNKNOWN);
  });

  it("a unit that differs is an update, not a replacement", () => {
    const news = containerKind.check({ ...base, engine: "systemd" }).inputs;
    const d = containerKind.diff({ ...news, unitFile: news.unitFile!.replace("TimeoutStopSec=10", "TimeoutStopSec=90"), instance: "i" }, news);
    assert.deepEqual(d, { changes: true, replaces: [], deleteBeforeReplace: false });
  });
});
