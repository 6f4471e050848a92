import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { redact, redactError, secretStringsIn, wrapSecret } from "./secrets";

// A stand-in, not a key; the PEM marker is built here so that no tracked file reads like a private key.
const KEY = `-----BEGIN ${"PRIVATE"} KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNOTAREALKEYxxxxxx\nhRANCAAQ0kuxb6OcRchuHpSgbbviWFo8lBzNOTAREALKEYyyyyyyyyyyyyyyyyyy\n-----END ${"PRIVATE"} KEY-----\n`;
const LINE = KEY.split("\n")[1];

describe("redact", () => {
  const table: { name: string; text: string; secrets: string[]; want: string }[] = [
    { name: "a secret, wherever it appears", text: "pw=hunter22 and again hunter22", secrets: ["hunter22"], want: "pw=[secret] and again [secret]" },
    { name: "a key quoted whole", text: `it said ${KEY}`, secrets: [KEY], want: "it said [secret]" },
    { name: "one line of a key, quoted alone (a log line that printed it)", text: `exited with status 3: said: ${LINE} | bye`, secrets: [KEY], want: "exited with status 3: said: [secret] | bye" },
    { name: "short lines of a secret are not taken for it", text: "a }\n{ b", secrets: ['{\n  "a": "a-long-enough-value-1"\n}'], want: "a }\n{ b" },
    { name: "values too short to be told from text stay", text: "id 7", secrets: ["7"], want: "id 7" },
    { name: "nothing to redact", text: "all fine", secrets: [], want: "all fine" },
  ];
  for (const t of table) {
    it(t.name, () => {
      assert.equal(redact(t.text, t.secrets), t.want);
    });
  }
});

describe("secretStringsIn", () => {
  it("collects the strings inside secrets at any depth, and only those", () => {
    // given inputs as the engine sends them: some values wrapped as secrets
    const inputs = {
      connection: { host: "10.0.0.5", privateKey: wrapSecret(KEY) },
      env: { LOG_LEVEL: "info", TOKEN: wrapSecret("t0ken-value") },
      secrets: wrapSecret({ greeting: "hello-secret", nested: ["in-a-list"] }),
    };
    // when / then
    assert.deepEqual(secretStringsIn(inputs).sort(), [KEY, "hello-secret", "in-a-list", "t0ken-value"].sort());
  });
});

describe("redactError", () => {
  it("takes the secrets out of the message and the stack, keeping the error", () => {
    // given
    const err = new Error(`Unable to start replica web-1 on root@m1: it exited with status 3: ${LINE}`);
    // when
    const out = redactError(err, [KEY]);
    // then
    assert.equal(out, err);
    assert.equal(err.message, "Unable to start replica web-1 on root@m1: it exited with status 3: [secret]");
    assert.ok(!err.stack?.includes(LINE), "the stack still quotes the key");
  });
});
