/** Shared fixtures for construct tests (no machine, no engine). */
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import type { App } from "../src/app";
import { ValidationError } from "../src/errors";
import { Host } from "./host";

export const HOST_KEY = "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8";

/** A stand-in key text (not a key), marked so a leak of it is easy to find. */
const marker = ["-----BEGIN", "OPENSSH", "PRIVATE", "KEY-----"].join(" ");
export const PRIVATE_KEY = `${marker}\nb3BlbnNzaC1rZXktdjEAAAAAtest-only-not-a-real-key-DO-NOT-LEAK\n${marker.replace("BEGIN", "END")}\n`;

export function hostIn(app: App, id = "web1"): Host {
  return new Host(app, id, { address: "10.0.0.5", privateKey: pulumi.secret(PRIVATE_KEY), hostKey: HOST_KEY });
}

/** The messages of the ValidationError that `fn` throws. */
export function messagesOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    return err.messages;
  }
  assert.fail("expected a ValidationError, but nothing was thrown");
}
