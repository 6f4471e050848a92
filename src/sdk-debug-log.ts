/**
 * `pulumi up --debug` shows what the Node.js SDK logs at debug level, and
 * @pulumi/pulumi 3.248 (the pinned SDK) logs the engine's whole answer to
 * RegisterResource, ReadResource, RegisterResourceOutputs, Invoke and Call
 * there: every secret in a resource's inputs and outputs in plaintext (the
 * private keys a program reads, the keys drove's CA makes). The engine filters
 * only config secrets from its output. Newer SDKs log the answer only with
 * excessive debug output (pulumi/pulumi#24478); drove does the same for the
 * pinned one: the answer is left out of the message, the rest stays.
 */
const LEFT_OUT = "(left out by drove: it may hold secrets)";
const RESPONSE = /^((?:getResource Invoke|ReadResource|RegisterResource|RegisterResourceOutputs|Invoke|Call) RPC finished: [\s\S]*?err: [\s\S]*?, resp: )[\s\S]+$/;
/** invoke.js logs `, obj=<the serialized arguments>` for every invoke (an operator-precedence slip in the SDK). */
const INVOKE_ARGS = /^, obj=[\s\S]*$/;

/** A debug message of the SDK without the parts that may hold secrets. */
export function withoutRpcPayload(message: string): string {
  if (INVOKE_ARGS.test(message)) return `Invoke RPC prepared ${LEFT_OUT}`;
  const m = RESPONSE.exec(message);
  return m ? `${m[1]}${LEFT_OUT}` : message;
}

type DebugFn = (msg: string, ...rest: unknown[]) => unknown;
const WRAPPED = Symbol.for("drove.sdkDebugLog");

/** Makes `log.debug` (the SDK's log module, or a stand-in in tests) pass every message through withoutRpcPayload, once. */
export function redactDebugLog(log: { debug: DebugFn }): void {
  const original = log.debug;
  if ((original as unknown as Record<symbol, boolean>)[WRAPPED]) return;
  const wrapped: DebugFn = (msg, ...rest) => original(typeof msg === "string" ? withoutRpcPayload(msg) : msg, ...rest);
  Object.defineProperty(wrapped, WRAPPED, { value: true });
  log.debug = wrapped;
}

// The SDK's modules call `log.debug` on this module object at each call, so wrapping it here covers them all.
redactDebugLog(require("@pulumi/pulumi/log") as { debug: DebugFn });
