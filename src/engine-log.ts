/**
 * Tells the user something through the Pulumi engine, as a provider may: the
 * engine passes its address as the plugin's first argument, and shows what is
 * sent to its Log service in the command's output. (What a plugin writes to
 * its standard error is only kept in the engine's debug log.)
 */
import { createRequire } from "node:module";
import type * as grpcTypes from "@grpc/grpc-js";
import * as engineRpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engineProto from "@pulumi/pulumi/proto/engine_pb";

// gRPC as the Pulumi SDK itself resolves it (its own dependency), so both speak the same version.
const grpc = createRequire(require.resolve("@pulumi/pulumi"))("@grpc/grpc-js") as typeof grpcTypes;

let client: engineRpc.EngineClient | undefined | null;

/** The engine's address: the plugin's first argument that is not a logging or tracing flag. */
export function engineAddress(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--tracing") i++;
    else if (!args[i].startsWith("-")) return /^[A-Za-z0-9.:[\]-]+:[0-9]+$/.test(args[i]) ? args[i] : undefined;
  }
  return undefined;
}

function engine(): engineRpc.EngineClient | undefined {
  if (client === undefined) {
    const address = engineAddress(process.argv.slice(2));
    client = address ? new engineRpc.EngineClient(address, grpc.credentials.createInsecure()) : null;
  }
  return client ?? undefined;
}

/** A warning in the Pulumi command's output; on standard error when no engine is there (tests, a bare run). */
export function warn(message: string): Promise<void> {
  const e = engine();
  if (!e) {
    process.stderr.write(`warning: ${message}\n`);
    return Promise.resolve();
  }
  const req = new engineProto.LogRequest();
  req.setSeverity(engineProto.LogSeverity.WARNING);
  req.setMessage(message);
  return new Promise((resolve) => e.log(req, () => resolve()));
}
