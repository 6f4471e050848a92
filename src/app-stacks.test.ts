import assert from "node:assert/strict";
import { runInThisContext } from "node:vm";
import { describe, it } from "node:test";
import { skipSdkPromiseStacks } from "./app";

/** A function defined in a file of the given name, that returns the stack of an Error it makes. */
function stackFrom(filename: string): () => unknown {
  return runInThisContext("(function make() { return new Error('x').stack; })", { filename }) as () => unknown;
}

const sdk = stackFrom("/p/node_modules/@pulumi/pulumi/runtime/debuggable.js");
const user = stackFrom("/p/index.ts");

describe("skipSdkPromiseStacks", () => {
  it("formats the SDK's promise stamps as nothing and every other stack as before", () => {
    // given a program whose stacks go through source maps (here: a marker)
    const saved = Error.prepareStackTrace;
    const mapped = (err: Error) => `mapped ${err.message}`;
    Error.prepareStackTrace = skipSdkPromiseStacks(mapped, {});
    try {
      // then
      assert.equal(sdk(), "");
      assert.equal(user(), "mapped x");
    } finally {
      Error.prepareStackTrace = saved;
    }
  });

  it("keeps V8's own format where the program had set none", () => {
    const saved = Error.prepareStackTrace;
    Error.prepareStackTrace = skipSdkPromiseStacks(undefined, {});
    try {
      assert.match(String(user()), /^Error: x\n    at make \(\/p\/index\.ts:1:\d+\)/);
    } finally {
      Error.prepareStackTrace = saved;
    }
  });

  it("leaves the stamps alone when the user asked for leak reports (PULUMI_DEBUG_PROMISE_LEAKS)", () => {
    const mapped = (err: Error) => `mapped ${err.message}`;
    assert.equal(skipSdkPromiseStacks(mapped, { PULUMI_DEBUG_PROMISE_LEAKS: "1" }), mapped);
  });

  it("wraps once, however many apps synthesize", () => {
    const once = skipSdkPromiseStacks(undefined, {});
    assert.equal(skipSdkPromiseStacks(once, {}), once);
  });
});
