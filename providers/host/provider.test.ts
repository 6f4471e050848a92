import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { HostFacts } from "./facts";
import { Admissions, hostKind, reachabilityKind, routeOf, type HostOutputs } from "./provider";

const facts = (machineId: string, hostname: string): HostFacts => ({ machineId, hostname } as HostFacts);

describe("Admissions (preflight across the stack)", () => {
  it("admits distinct machines, and one machine again by the same route (another login, a later step)", () => {
    // given
    const a = new Admissions();
    // when / then
    a.admit({ host: "10.0.0.5" }, facts("aa", "web1"));
    a.admit({ host: "10.0.0.6" }, facts("bb", "web2"));
    a.admit({ host: "10.0.0.5", user: "deploy" }, facts("aa", "web1"));
  });

  it("refuses one machine reached by two routes, naming both and the fixes", () => {
    // given
    const a = new Admissions();
    a.admit({ host: "10.0.0.5" }, facts("aa", "web1"));
    // when / then
    assert.throws(
      () => a.admit({ host: "10.0.0.5", jump: { host: "203.0.113.1" } }, facts("aa", "web1")),
      /Unable to admit 10\.0\.0\.5:22 via 203\.0\.113\.1:22: it is the same machine \(machine-id aa\) as 10\.0\.0\.5:22, .* Either manage it as one Host, or, if these are two machines cloned from one image, give each its own machine-id/,
    );
  });

  it("refuses two machines answering to one hostname", () => {
    // given
    const a = new Admissions();
    a.admit({ host: "10.0.0.5" }, facts("aa", "web1"));
    // when / then
    assert.throws(() => a.admit({ host: "10.0.0.6" }, facts("bb", "web1")), /Unable to admit 10\.0\.0\.6:22: it says its hostname is "web1", as 10\.0\.0\.5:22 does/);
  });

  it("lets a Host be replaced by one reaching the same machine another way (the old one was read, the new one is made)", () => {
    // given
    const a = new Admissions();
    a.admit({ host: "web1.example" }, facts("aa", "web1"), "read");
    // when / then
    a.admit({ host: "10.0.0.5" }, facts("aa", "web1"), "apply");
  });

  it("refuses two Hosts in the state that are one machine, when both are read", () => {
    // given
    const a = new Admissions();
    a.admit({ host: "web1.example" }, facts("aa", "web1"), "read");
    // when / then
    assert.throws(() => a.admit({ host: "10.0.0.5" }, facts("aa", "web1"), "read"), /same machine \(machine-id aa\) as web1\.example:22/);
  });

  it("names a route through every bastion", () => {
    assert.equal(routeOf({ host: "c", port: 2222, jump: { host: "b", jump: { host: "a" } } }), "c:2222 via b:22 via a:22");
  });
});

describe("a machine lost at plan time", () => {
  const connection = { host: "10.0.0.7", port: 22, user: "root" };
  const known: HostOutputs = { connection, facts: facts("cc", "web3"), unreachable: "connect ETIMEDOUT" };

  it("leaves its Host unchanged, so that nothing that depends on the Host is skipped", () => {
    // given a Host whose last refresh could not reach it
    // when
    const d = hostKind.diff(known, { connection });
    // then
    assert.equal(d.changes, false);
  });

  it("makes its Reachability change on every run until it is back, and the change fails naming the machine and the ways out", async () => {
    // given
    const { inputs, failures } = reachabilityKind.check({ host: "lab/m3", route: "10.0.0.7:22", unreachable: "connect ETIMEDOUT" });
    assert.deepEqual(failures, []);
    // when
    const d = reachabilityKind.diff({ host: "lab/m3", route: "10.0.0.7:22" }, inputs);
    // then
    assert.equal(d.changes, true);
    await assert.rejects(
      reachabilityKind.update("lab/m3", { host: "lab/m3" }, inputs),
      /^Error: Unable to reach lab\/m3 \(10\.0\.0\.7:22\) when this run began: connect ETIMEDOUT\. .*Either bring the machine back and run `pulumi up` again .*, or remove it from the program$/,
    );
  });

  it("has nothing to do in a preview where the Host's reason is not known (its state has none)", () => {
    // given
    const { inputs } = reachabilityKind.check({ host: "lab/m3", unreachable: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" });
    // when / then
    assert.equal(reachabilityKind.diff({ host: "lab/m3" }, inputs).changes, false);
  });

  it("has nothing to do for a machine that answered", async () => {
    // given
    const { inputs } = reachabilityKind.check({ host: "lab/m3", route: "10.0.0.7:22" });
    // when / then
    assert.equal(reachabilityKind.diff({ host: "lab/m3" }, inputs).changes, false);
    assert.deepEqual(await reachabilityKind.update("lab/m3", { host: "lab/m3" }, inputs), { host: "lab/m3", route: "10.0.0.7:22" });
  });
});
