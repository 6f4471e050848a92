import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { packageRoot } from "./paths";
import { redactDebugLog, withoutRpcPayload } from "./sdk-debug-log";

const SIG = "4dabf18193072939515e22adb298388d,,,1b47061264138c4ac30d75fd1eb44270";

describe("the SDK's debug log, as drove leaves it", () => {
  const table: { name: string; message: string; want: string }[] = [
    {
      name: "RegisterResource's answer (a secret in its outputs) is left out",
      message: `RegisterResource RPC finished: resource:web[drove:index:Host]; err: null, resp: urn:pulumi:it::p::drove:index:Host::web,,connection,,,,,privateKey,,,,,${SIG},value,,,KEY-MATERIAL-1,user,,,root`,
      want: "RegisterResource RPC finished: resource:web[drove:index:Host]; err: null, resp: (left out by drove: it may hold secrets)",
    },
    {
      name: "ReadResource's answer is left out",
      message: `ReadResource RPC finished: resource:a[t]; err: null, resp: urn,,${SIG},value,,,KEY-MATERIAL-2`,
      want: "ReadResource RPC finished: resource:a[t]; err: null, resp: (left out by drove: it may hold secrets)",
    },
    {
      name: "RegisterResourceOutputs' answer is left out",
      message: "RegisterResourceOutputs RPC finished: urn=urn:pulumi:it::p::pulumi:pulumi:Stack::p-it; err: null, resp: KEY-MATERIAL-3",
      want: "RegisterResourceOutputs RPC finished: urn=urn:pulumi:it::p::pulumi:pulumi:Stack::p-it; err: null, resp: (left out by drove: it may hold secrets)",
    },
    {
      name: "an answer over several lines (a PEM) is left out whole",
      message: "Invoke RPC finished: tok=x:y:z; err: null, resp: a\nKEY-MATERIAL-4\nb",
      want: "Invoke RPC finished: tok=x:y:z; err: null, resp: (left out by drove: it may hold secrets)",
    },
    { name: "the invoke arguments the SDK logs by mistake are left out", message: ', obj={"password":"KEY-MATERIAL-5"}', want: "Invoke RPC prepared (left out by drove: it may hold secrets)" },
    { name: "other debug messages stay as they are", message: "RegisterResource RPC prepared: t=drove:index:Host, name=web", want: "RegisterResource RPC prepared: t=drove:index:Host, name=web" },
    { name: "a message that only mentions an answer stays", message: "waiting for RegisterResource RPC finished events", want: "waiting for RegisterResource RPC finished events" },
  ];
  for (const t of table) {
    it(t.name, () => {
      assert.equal(withoutRpcPayload(t.message), t.want);
    });
  }

  it("wraps a log's debug once, passing the redacted message and the rest of the arguments on", () => {
    // given
    const calls: unknown[][] = [];
    const log = { debug: (...args: unknown[]) => calls.push(args) };
    // when
    redactDebugLog(log);
    redactDebugLog(log);
    log.debug("Call RPC finished: tok=t; err: null, resp: KEY-MATERIAL-6", "resource", 7);
    // then
    assert.deepEqual(calls, [["Call RPC finished: tok=t; err: null, resp: (left out by drove: it may hold secrets)", "resource", 7]]);
  });

  it("is in place in the SDK once a program imports drove", () => {
    // when a fresh process imports drove as a program does
    const out = execFileSync(process.execPath, ["--import", "tsx", "-e", 'require("./src"); console.log(require("@pulumi/pulumi/log").debug[Symbol.for("drove.sdkDebugLog")] === true)'], { cwd: packageRoot, encoding: "utf8" });
    // then
    assert.equal(out.trim(), "true");
  });
});
