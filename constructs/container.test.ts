import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "../src/app";
import { ContainerRuntime } from "./container-runtime";
import { hostIn, messagesOf } from "./testing";

const IMAGE = "r:5000/web@sha256:abc";

// Found by integration/hostile.test.ts: each of these was accepted at construction,
// then failed at preview or halfway through a run, or did not arrive as given.
describe("Container refuses, at construction, what cannot reach the machine as given", () => {
  it("refuses an image reference the provider would refuse at preview", () => {
    // given
    const docker = ContainerRuntime.docker(hostIn(new App({ synthOut: "-" })));
    // when
    const messages = messagesOf(() => docker.addContainer("web", { image: "$(touch /tmp/x)" }));
    // then
    assert.deepEqual(messages, ['web1/docker/web: `image` must be an image reference like registry:5000/web@sha256:..., but "$(touch /tmp/x)" was provided']);
  });

  it("refuses env values with a line break, a CR or a NUL byte (values travel as KEY=value lines)", () => {
    // given
    const docker = ContainerRuntime.docker(hostIn(new App({ synthOut: "-" })));
    // when
    const messages = messagesOf(() => docker.addContainer("web", { image: IMAGE, env: { A: "x\nB=y", C: "z\r", D: "a\0b", E: "fine $(x) 'q' \"r\" \\" } }));
    // then
    assert.deepEqual(messages, [
      'web1/docker/web: environment variable A must be a single line, without CR, LF or NUL characters, but "x\\nB=y" was provided',
      'web1/docker/web: environment variable C must be a single line, without CR, LF or NUL characters, but "z\\r" was provided',
      'web1/docker/web: environment variable D must be a single line, without CR, LF or NUL characters, but "a\\u0000b" was provided',
    ]);
  });

  it("refuses label keys that are empty or hold '=' (the engine splits key=value at the first '=') or whitespace (Docker refuses it), and NUL bytes in labels and command arguments", () => {
    // given
    const docker = ContainerRuntime.docker(hostIn(new App({ synthOut: "-" })));
    // when
    const messages = messagesOf(() => docker.addContainer("web", { image: IMAGE, labels: { "": "a", "a=b": "c", "a b": "d", ok: "x\0y", fine: "$(x)\n'\"" }, command: ["/bin/sh", "a\0b", "--help"] }));
    // then
    assert.deepEqual(messages, [
      `web1/docker/web: label key "" must be non-empty, without whitespace, '=' or NUL characters`,
      `web1/docker/web: label key "a=b" must be non-empty, without whitespace, '=' or NUL characters`,
      `web1/docker/web: label key "a b" must be non-empty, without whitespace, '=' or NUL characters`,
      'web1/docker/web: label ok must be a string without NUL characters, but "x\\u0000y" was provided',
      'web1/docker/web: `command` must list strings without NUL characters (no command line can carry one), but "a\\u0000b" was provided',
    ]);
  });

  it("refuses a one-character name on Docker, which Docker itself refuses, and takes it on Podman", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    // when
    const messages = messagesOf(() => ContainerRuntime.docker(host).addContainer("w", { image: IMAGE }));
    const podman = ContainerRuntime.podman(hostIn(new App({ synthOut: "-" }), "web2")).addContainer("w", { image: IMAGE });
    // then
    assert.deepEqual(messages, ['web1/docker/w: `name` must be at least 2 characters for Docker, but "w" was provided; give a longer `name`']);
    assert.equal(podman.containerName, "w");
  });
});
