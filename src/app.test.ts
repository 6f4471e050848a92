import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "./app";
import { Construct } from "constructs";
import { File } from "../constructs/file";
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
