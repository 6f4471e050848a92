import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "../src/app";
import { CertificateAuthority } from "./certificate";
import { hostIn, messagesOf } from "./testing";

describe("CertificateAuthority", () => {
  it("resolves defaults and renders a drove:index:CertificateAuthority with no host and no secret in the spec", async () => {
    // given
    const app = new App({ synthOut: "-" });
    // when
    const ca = new CertificateAuthority(app, "ca");
    // then
    assert.equal(ca.commonName, "drove CA ca");
    assert.equal(ca.validityDays, 3650);
    const spec = ca._toSpec();
    assert.equal(spec.type, "drove:index:CertificateAuthority");
    assert.deepEqual(spec.props, { commonName: "drove CA ca", validityDays: 3650 });
    assert.deepEqual(spec.outputs, ["certPem", "keyPem", "notAfter", "fingerprint"]);
    assert.equal(spec.parent, undefined);
  });

  it("issues certificates as its children, each depending on it, the CA key passed as a secret", async () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = hostIn(app, "m1");
    const ca = new CertificateAuthority(app, "ca", { commonName: "lab CA", validityDays: 100 });
    // when
    const cert = ca.issue("registry", { commonName: "m1", dnsNames: ["m1"], ipAddresses: [host.address, "127.0.0.1"], usages: ["server", "server"] });
    // then
    assert.equal(cert.node.path, "ca/registry");
    assert.deepEqual(cert.usages, ["server"]);
    assert.equal(cert.validityDays, 825);
    const spec = cert._toSpec();
    assert.equal(spec.type, "drove:index:Certificate");
    assert.deepEqual(spec.dependsOn, [ca]);
    const yamlText = await app.toYaml();
    assert.match(yamlText, /type: drove:index:Certificate\n\s+props:\n\s+caCertPem: \(known after create\)\n\s+caKeyPem: '\[secret\]'/);
    assert.match(yamlText, /ipAddresses:\n\s+- 10\.0\.0\.5\n\s+- 127\.0\.0\.1/);
  });

  it("refuses bad props at construction, naming the construct", () => {
    const app = new App({ synthOut: "-" });
    assert.deepEqual(messagesOf(() => new CertificateAuthority(app, "bad", { validityDays: 0 })), [
      "bad: `validityDays` must be a whole number between 1 and 36500, but 0 was provided",
    ]);
    const ca = new CertificateAuthority(app, "ca");
    assert.deepEqual(messagesOf(() => ca.issue("c", { commonName: "x", ipAddresses: ["300.1.1.1"], dnsNames: ["a b"], usages: [] })), [
      'ca/c: `dnsNames` entry "a b" is not a DNS name like "registry.example" or "*.example"',
      'ca/c: `ipAddresses` entry "300.1.1.1" is not an IPv4 or IPv6 address',
      'ca/c: `usages` must list at least one of "server" and "client"',
    ]);
  });
});
