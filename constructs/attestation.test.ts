import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { App } from "../src/app";
import { Attestation } from "./attestation";
import { hostIn, messagesOf } from "./testing";

const ZERO = "00".repeat(32);

describe("Attestation props", () => {
  it("resolves defaults: PCRs 0-7 in the sha256 bank, an RSA AK at 0x81018d00, maxAge one hour", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    // when
    const a = new Attestation(host, "attestation", { trustOnFirstUse: true });
    // then
    assert.deepEqual(a.pcrs, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(a.bank, "sha256");
    assert.equal(a.keyType, "rsa");
    assert.equal(a.akHandle, 0x81018d00);
    assert.equal(a.maxAgeSeconds, 3600);
    assert.equal(a.golden, undefined);
    assert.equal(Attestation.of(host), a);
  });

  it("renders the policy for the provider, golden values normalised", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    const a = new Attestation(host, "attestation", { pcrs: [7, 0], golden: { 7: `0x${"AB".repeat(32)}` }, maxAgeSeconds: 60, keyType: "ecc" });
    // when
    const spec = a._toSpec();
    // then
    const { connection, ...props } = spec.props;
    assert.ok(connection);
    assert.equal(spec.type, "drove:index:Attestation");
    assert.equal(spec.parent, host);
    assert.deepEqual(props, {
      host: "web1",
      pcrs: [0, 7],
      bank: "sha256",
      golden: { "7": "ab".repeat(32) },
      trustOnFirstUse: false,
      maxAgeSeconds: 60,
      keyType: "ecc",
      akHandle: "0x81018d00",
    });
    assert.ok(spec.outputs?.includes("admitted"));
  });

  it("needs golden values or trust on first use, not both, and not neither", () => {
    const host = hostIn(new App({ synthOut: "-" }));
    assert.match(messagesOf(() => new Attestation(host, "a")).join("\n"), /give `golden` PCR values .* or set `trustOnFirstUse: true`/);
    assert.match(messagesOf(() => new Attestation(host, "b", { golden: { 0: ZERO }, trustOnFirstUse: true })).join("\n"), /either `golden` or `trustOnFirstUse`, not both/);
  });

  for (const [props, message] of [
    [{ pcrs: [24], trustOnFirstUse: true }, /`pcrs` must be PCR indices from 0 to 23, but \[24\] was provided/],
    [{ pcrs: [], trustOnFirstUse: true }, /`pcrs` must be PCR indices from 0 to 23/],
    [{ pcrs: [1, 1], trustOnFirstUse: true }, /`pcrs` names a PCR twice/],
    [{ golden: { 9: ZERO } }, /`golden` has a value for PCR 9, which is not in `pcrs`/],
    [{ golden: { 0: "abc" } }, /`golden` value for PCR 0 must be 64 hex digits \(a sha256 digest\), but "abc" was provided/],
    [{ maxAgeSeconds: 0, trustOnFirstUse: true }, /`maxAgeSeconds` must be a whole number of seconds, at least 1, but 0 was provided/],
    [{ akHandle: 0x81010001, trustOnFirstUse: true }, /reserves for endorsement keys/],
    [{ akHandle: 5, trustOnFirstUse: true }, /`akHandle` must be a persistent handle/],
  ] as const) {
    it(`refuses ${JSON.stringify(props)} with the path and the fix`, () => {
      const host = hostIn(new App({ synthOut: "-" }));
      const msgs = messagesOf(() => new Attestation(host, "attestation", props as never));
      assert.match(msgs.join("\n"), message);
      assert.ok(msgs.every((m) => m.startsWith("web1/attestation: ")), msgs.join("\n"));
    });
  }

  it("takes the EK CA as one PEM or several, and refuses what is not a certificate", () => {
    const pem = (JSON.parse(readFileSync(join(__dirname, "../src/tpm/fixtures/enrolment.json"), "utf8")) as { ekCa: string }).ekCa;
    const host = hostIn(new App({ synthOut: "-" }));
    assert.deepEqual(new Attestation(host, "a", { trustOnFirstUse: true, ekCa: pem })._toSpec().props.ekCa, [pem]);
    assert.match(messagesOf(() => new Attestation(host, "b", { trustOnFirstUse: true, ekCa: [pem, "not a cert"] })).join("\n"), /`ekCa` entry 1 is not a PEM certificate/);
  });

  it("must be inside a Host, once per Host", () => {
    const app = new App({ synthOut: "-" });
    assert.match(messagesOf(() => new Attestation(app, "lost", { trustOnFirstUse: true })).join("\n"), /must be created inside a Host/);
    const host = hostIn(app);
    new Attestation(host, "a", { trustOnFirstUse: true });
    new Attestation(host, "b", { trustOnFirstUse: true });
    const errors = host.node.findAll().flatMap((c) => c.node.validate());
    assert.match(errors.join("\n"), /web1 has more than one Attestation/);
  });
});
