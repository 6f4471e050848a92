import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "./app";
import { ValidationError } from "./errors";
import { hostIn } from "../constructs/testing";
import { ContainerRuntime } from "../constructs/container-runtime";

// Found by integration/hostile.test.ts: a lone surrogate was accepted, then the
// engine refused the whole program: "grpc: error unmarshalling request: string field contains invalid UTF-8".
describe("resource props that Pulumi cannot carry", () => {
  it("are refused at synth, before anything registers, naming the construct and the prop", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = hostIn(app);
    host.addFile("motd", { path: "/etc/motd\ud800", content: "x" });
    ContainerRuntime.docker(host).addContainer("web", { image: "r:5000/web@sha256:abc", env: { A: "ok 😀", B: "\udfffx" }, labels: { "k\ud83d": "v" } });
    // when
    const errors = app.validate();
    // then
    assert.deepEqual(errors, [
      "web1/motd: `path` must be well-formed Unicode text, but it has a lone surrogate (\\ud800) at index 9, which Pulumi cannot carry (UTF-8 only); remove it, or pair it",
      "web1/docker/web: `env.B` must be well-formed Unicode text, but it has a lone surrogate (\\udfff) at index 0, which Pulumi cannot carry (UTF-8 only); remove it, or pair it",
      'web1/docker/web: `labels` has the key "k\\ud83d", which must be well-formed Unicode text, but it has a lone surrogate, which Pulumi cannot carry (UTF-8 only); remove it, or pair it',
    ]);
    assert.throws(() => app.synth(), ValidationError);
  });

  it("take paired surrogates (emoji) as they are", () => {
    // given
    const app = new App({ synthOut: "-" });
    hostIn(app).addFile("motd", { path: "/etc/motd-😀", content: "👩‍👩‍👧" });
    // when / then
    assert.deepEqual(app.validate(), []);
  });
});
