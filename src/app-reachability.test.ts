/**
 * A Host's Reachability is registered only when its outputs say the machine
 * was lost (or refused by its Attestation). Pulumi's own test mocks stand in
 * for the engine here (unit test); the integration suites run the real CLI.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { App } from "./app";
import { hostIn } from "../constructs/testing";

const registered: { type: string; name: string; inputs: Record<string, unknown> }[] = [];

pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      // The Host named "lost" comes back from the refresh as unreachable; the others answer.
      const unreachable = args.type === "drove:index:Host" && args.name === "lost" ? "no route to host" : undefined;
      return { id: `${args.name}-id`, state: { ...args.inputs, ...(unreachable ? { unreachable } : {}) } };
    },
    call: () => ({}),
  },
  "drove-test",
  "dev",
  false,
);

/** Until the registrations stop coming (the Reachability waits on the Hosts' outputs). */
async function settled(): Promise<void> {
  let n = -1;
  while (n !== registered.length) {
    n = registered.length;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("App: a Host's Reachability", () => {
  it("is registered for a Host whose outputs say it was lost, naming it and its route, and for no Host that answers", async () => {
    // given
    const app = new App();
    hostIn(app, "up1");
    hostIn(app, "lost");
    hostIn(app, "up2");
    // when
    app.synth();
    await settled();
    // then
    const hosts = registered.filter((r) => r.type === "drove:index:Host").map((r) => r.name);
    assert.deepEqual(hosts.sort(), ["lost", "up1", "up2"]);
    const reach = registered.filter((r) => r.type === "drove:index:Reachability");
    assert.deepEqual(
      reach.map((r) => [r.name, r.inputs.host, r.inputs.route, r.inputs.unreachable]),
      [["lost/reachable", "lost", "10.0.0.5:22", "no route to host"]],
    );
  });
});
