import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App, registrationOrder } from "./app";
import { ValidationError } from "./errors";
import { isResourceConstruct } from "./resource";
import { Construct } from "constructs";
import { File } from "../constructs/file";
import { ContainerRuntime } from "../constructs/container-runtime";
import { hostIn } from "../constructs/testing";

describe("App.validate: dependency cycles", () => {
  it("names a cycle of resources that wait for each other, once, with every path in it", () => {
    // given: three files on a host, a -> b -> c -> a
    const app = new App();
    const host = hostIn(app);
    const [a, b, c] = ["a", "b", "c"].map((n) => host.addFile(n, { path: `/etc/${n}`, content: n }));
    a.node.addDependency(b);
    b.node.addDependency(c);
    c.node.addDependency(a);
    // when
    const errors = app.validate();
    // then
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0], /resources wait for each other in a cycle \(web1\/(a|b|c) -> web1\/(a|b|c) -> web1\/(a|b|c) -> web1\/\1\), so none can be made first; remove one of these dependencies$/);
  });

  it("follows a dependency on a group of constructs that holds resources", () => {
    // given: b in a group; a waits for the group, b waits for a
    const app = new App();
    const host = hostIn(app);
    const group = new Construct(host, "group");
    const a = host.addFile("a", { path: "/etc/a", content: "a" });
    const b = new File(group, "b", { path: "/etc/b", content: "b" });
    a.node.addDependency(group);
    assert.deepEqual(app.validate(), []);
    // when
    b.node.addDependency(a);
    // then
    assert.match(app.validate().join("\n"), /cycle \(web1\/(a|group\/b) -> web1\/(a|group\/b) -> web1\/\1\)/);
  });

  it("accepts a program without cycles", () => {
    const app = new App();
    const host = hostIn(app);
    const a = host.addFile("a", { path: "/etc/a", content: "a" });
    const b = host.addFile("b", { path: "/etc/b", content: "b" });
    b.node.addDependency(a);
    assert.deepEqual(app.validate(), []);
  });
});

describe("App.synth: what each resource waits for", () => {
  const order = (app: App) => registrationOrder(app.node.findAll().filter(isResourceConstruct).map((c) => ({ construct: c, spec: c._toSpec() })));
  const paths = (cs: readonly Construct[]) => cs.map((c) => c.node.path);

  it("registers a resource after one it waits for, even when that one was declared later", () => {
    // given: b declared first, waiting for a
    const app = new App();
    const host = hostIn(app);
    const b = host.addFile("b", { path: "/etc/b", content: "b" });
    const a = host.addFile("a", { path: "/etc/a", content: "a" });
    b.node.addDependency(a);
    // when
    const specs = order(app);
    // then
    const at = (p: string) => specs.findIndex((s) => s.construct.node.path === p);
    assert.ok(at("web1") < at("web1/a") && at("web1/a") < at("web1/b"), paths(specs.map((s) => s.construct)).join(", "));
    assert.deepEqual(paths(specs[at("web1/b")].waitsFor), ["web1/a"]);
  });

  it("expands a dependency on a group of constructs to every resource inside it", () => {
    // given: a waits for a group holding b and c
    const app = new App();
    const host = hostIn(app);
    const a = host.addFile("a", { path: "/etc/a", content: "a" });
    const group = new Construct(host, "group");
    new File(group, "b", { path: "/etc/b", content: "b" });
    new File(group, "c", { path: "/etc/c", content: "c" });
    a.node.addDependency(group);
    // when
    const specs = order(app);
    // then
    const spec = specs.find((s) => s.construct === a)!;
    assert.deepEqual(paths(spec.waitsFor).sort(), ["web1/group/b", "web1/group/c"]);
    assert.ok(specs.indexOf(spec) > specs.findIndex((s) => s.construct.node.path === "web1/group/c"));
  });

  it("adds nothing for a dependency on a group the resource belongs to (so siblings doing so make no cycle)", () => {
    const app = new App();
    const host = hostIn(app);
    const group = new Construct(host, "group");
    const b = new File(group, "b", { path: "/etc/b", content: "b" });
    const c = new File(group, "c", { path: "/etc/c", content: "c" });
    b.node.addDependency(group);
    c.node.addDependency(group);
    assert.deepEqual(app.validate(), []);
    assert.deepEqual(paths(order(app).find((s) => s.construct === b)!.waitsFor), []);
  });

  it("keeps a dependency on a resource that is an ancestor but not the Pulumi parent (a Container on its runtime)", () => {
    const app = new App();
    const host = hostIn(app);
    const web = ContainerRuntime.docker(host).addContainer("web", { image: "registry:5000/web@sha256:" + "a".repeat(64) });
    const specs = order(app);
    const spec = specs.find((s) => s.construct === web)!;
    assert.ok(paths(spec.waitsFor).includes("web1/docker"), paths(spec.waitsFor).join(", "));
    assert.ok(specs.indexOf(spec) > specs.findIndex((s) => s.construct.node.path === "web1/docker"));
  });

  it("refuses a host that waits for a resource on itself, naming the cycle", () => {
    const app = new App();
    const host = hostIn(app);
    const a = host.addFile("a", { path: "/etc/a", content: "a" });
    host.node.addDependency(a);
    assert.throws(() => order(app), /web1: resources wait for each other in a cycle \(web1 -> web1\/a -> web1\)/);
  });
});

describe("construct ids", () => {
  it("refuses a second construct with a sibling's id, naming its path and the fix", () => {
    const app = new App();
    const host = hostIn(app);
    host.addFile("motd", { path: "/etc/motd", content: "a" });
    assert.throws(
      () => host.addFile("motd", { path: "/etc/motd2", content: "b" }),
      (e: Error) => e instanceof ValidationError && /web1\/motd: a File with the id "motd" already exists under web1; give each construct an id of its own among its siblings/.test(e.message),
    );
  });
});

describe("App.synth: stack traces", () => {
  it("registers with empty stack traces (Pulumi takes one per resource and promise) and gives the program its settings back", () => {
    // given a program with its own limit and formatter
    const app = new App();
    hostIn(app).addFile("a", { path: "/etc/a", content: "a" });
    const before = { limit: Error.stackTraceLimit, format: Error.prepareStackTrace };
    const format = () => "the program's own";
    Error.stackTraceLimit = 17;
    Error.prepareStackTrace = format;
    let during: string | undefined;
    const original = App.prototype["register" as keyof App] as unknown as (...a: unknown[]) => void;
    (App.prototype as unknown as Record<string, unknown>).register = function (this: App, ...a: unknown[]) {
      // (as Pulumi's Resource.callsites() does: no limit, then the formatted stack)
      Error.stackTraceLimit = Number.POSITIVE_INFINITY;
      during = new Error().stack;
      Error.stackTraceLimit = 0;
      return original.apply(this, a);
    };
    try {
      // when
      app.synth();
      // then: no frame to format or keep, and the program's settings back
      assert.equal(during, "Error: ");
      assert.equal(Error.stackTraceLimit, 17);
      assert.equal(new Error("mine").stack, "the program's own", "the program's formatter is back (behind one that skips only the SDK's promise stamps)");
    } finally {
      (App.prototype as unknown as Record<string, unknown>).register = original;
      Error.stackTraceLimit = before.limit;
      Error.prepareStackTrace = before.format;
    }
  });
});
