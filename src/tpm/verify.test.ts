/**
 * Quote verification against real quotes recorded from a lab machine's swtpm
 * (src/tpm/fixtures/quotes.json, made by scripts/record-tpm-fixtures.ts).
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { marshalSignature, parsePublic, parseQuoteAttest, parseSignature, publicKeyOf } from "./structures";
import { NonceBook, pcrValuesFromRaw, verifyQuote, type QuoteCheck, type QuoteEvidence } from "./verify";

interface RecordedQuote {
  label: string;
  nonce: string;
  message: string;
  signature: string;
  pcrs: Record<string, string>;
}
const fx = JSON.parse(readFileSync(join(__dirname, "fixtures", "quotes.json"), "utf8")) as {
  pcrList: number[];
  akPublic: string;
  eccAkPublic: string;
  extendedPcr: number;
  quotes: RecordedQuote[];
};
const byLabel = (l: string) => fx.quotes.find((q) => q.label === l)!;
const clean = byLabel("clean");
const extended = byLabel("pcr16-extended");
const ecc = byLabel("ecc");
const akPublic = Buffer.from(fx.akPublic, "base64");

function evidence(q: RecordedQuote): QuoteEvidence {
  return {
    message: Buffer.from(q.message, "base64"),
    signature: Buffer.from(q.signature, "base64"),
    pcrValues: new Map(Object.entries(q.pcrs).map(([k, v]) => [Number(k), Buffer.from(v, "hex")])),
  };
}
/** The golden values: what the clean quote reported. */
const golden = Object.fromEntries(Object.entries(clean.pcrs).map(([k, v]) => [Number(k), v]));
function check(q: RecordedQuote, extra: Partial<QuoteCheck> = {}): QuoteCheck {
  return { akPublic, nonce: Buffer.from(q.nonce, "hex"), pcrs: fx.pcrList, golden, ...extra };
}

describe("verifyQuote (recorded swtpm quotes)", () => {
  it("accepts a good quote and reports its PCRs and clock", () => {
    // given / when
    const v = verifyQuote(evidence(clean), check(clean));
    // then
    assert.equal(v.ok, true, v.ok ? "" : v.reason);
    if (!v.ok) return;
    assert.deepEqual(Object.keys(v.pcrs).map(Number), fx.pcrList);
    assert.equal(v.pcrs[0], clean.pcrs["0"]);
    assert.ok(BigInt(v.clock.clock) > 0n);
  });

  it("accepts the AK as a PEM too (tpm2_createak -f pem)", () => {
    const pem = publicKeyOf(parsePublic(akPublic)).export({ type: "spki", format: "pem" }) as string;
    const v = verifyQuote(evidence(clean), check(clean, { akPublic: pem }));
    assert.equal(v.ok, true, v.ok ? "" : v.reason);
  });

  it("accepts an ECDSA quote by an ECC AK", () => {
    const v = verifyQuote(evidence(ecc), check(ecc, { akPublic: Buffer.from(fx.eccAkPublic, "base64"), golden: undefined }));
    assert.equal(v.ok, true, v.ok ? "" : v.reason);
    assert.equal(parseSignature(Buffer.from(ecc.signature, "base64")).scheme, "ecdsa");
  });

  it("refuses a quote made for another nonce", () => {
    // given: the quote of the clean check, presented for the other check's nonce
    const v = verifyQuote(evidence(clean), check(clean, { nonce: Buffer.from(extended.nonce, "hex") }));
    // then
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.code, "nonce");
    assert.match(v.reason, new RegExp(`carries nonce ${clean.nonce}, not the nonce ${extended.nonce} issued for this check`));
  });

  it("refuses a quote whose signature has one byte flipped", () => {
    // given
    const e = evidence(clean);
    const sig = parseSignature(e.signature);
    assert.ok(sig.scheme === "rsassa");
    const flipped = Buffer.from(sig.sig);
    flipped[100] ^= 0x01;
    // when
    const v = verifyQuote({ ...e, signature: marshalSignature({ ...sig, sig: flipped }) }, check(clean));
    // then
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.code, "signature");
    if (!v.ok) assert.match(v.reason, /signature does not verify with the enrolled attestation key/);
  });

  it("refuses a quote whose signed message was altered (the nonce rewritten to match)", () => {
    // given: an attacker rewrites extraData to the nonce of this check
    const e = evidence(clean);
    const msg = Buffer.from(e.message);
    const at = msg.indexOf(Buffer.from(clean.nonce, "hex"));
    Buffer.from(extended.nonce, "hex").copy(msg, at);
    // when
    const v = verifyQuote({ ...e, message: msg }, check(clean, { nonce: Buffer.from(extended.nonce, "hex") }));
    // then
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.code, "signature");
  });

  it("refuses a quote signed by another key", () => {
    const v = verifyQuote(evidence(clean), check(clean, { akPublic: Buffer.from(fx.eccAkPublic, "base64") }));
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.code, "signature");
  });

  it("refuses a replayed quote: its TPM clock is not later than the last accepted", () => {
    // given: the later quote was accepted
    const later = verifyQuote(evidence(extended), check(extended, { golden: undefined }));
    assert.ok(later.ok);
    // when: the earlier quote is presented again (with its own nonce, as a replayer would)
    const v = verifyQuote(evidence(clean), check(clean, { last: later.clock }));
    // then
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.code, "replay");
    assert.match(v.reason, /not later than the last accepted quote's/);
    // and the same quote twice is a replay too
    const first = verifyQuote(evidence(clean), check(clean));
    assert.ok(first.ok);
    const again = verifyQuote(evidence(clean), check(clean, { last: first.clock }));
    assert.equal(again.ok ? "accepted" : again.code, "replay");
  });

  it("refuses a nonce it did not issue, and each issued nonce after its first use", () => {
    const book = new NonceBook();
    const n = book.issue();
    assert.equal(book.redeem(Buffer.from(clean.nonce, "hex")), false, "a nonce not issued here");
    assert.equal(book.redeem(n), true);
    assert.equal(book.redeem(n), false, "used once already");
  });

  it("names the PCR that differs from the golden value, expected and found (a real extend of PCR 16)", () => {
    // when
    const v = verifyQuote(evidence(extended), check(extended));
    // then
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.code, "pcr-mismatch");
    assert.deepEqual(v.mismatches, [{ pcr: fx.extendedPcr, expected: clean.pcrs[String(fx.extendedPcr)], found: extended.pcrs[String(fx.extendedPcr)] }]);
    assert.match(v.reason, new RegExp(`PCR ${fx.extendedPcr} \\(sha256\\) expected ${clean.pcrs[String(fx.extendedPcr)]}, found ${extended.pcrs[String(fx.extendedPcr)]}`));
  });

  it("refuses PCR values altered after the quote (they no longer hash to the signed digest)", () => {
    // given: the machine reports the clean value for PCR 16 with the extended quote
    const e = evidence(extended);
    const values = new Map(e.pcrValues);
    values.set(fx.extendedPcr, Buffer.from(clean.pcrs[String(fx.extendedPcr)], "hex"));
    // when
    const v = verifyQuote({ ...e, pcrValues: values }, check(extended));
    // then
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.code, "pcr-digest");
    if (!v.ok) assert.match(v.reason, /hash to [0-9a-f]{64}, but the TPM signed [0-9a-f]{64}: the reported values were altered/);
  });

  it("refuses a quote over other PCRs than the policy names", () => {
    const v = verifyQuote(evidence(clean), check(clean, { pcrs: [0, 1, 2, 3, 4, 5, 6, 7], golden: undefined }));
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.code, "selection");
    if (!v.ok) assert.match(v.reason, /covers sha256:0,1,2,3,4,5,6,7,16, not the PCRs the policy names \(sha256:0,1,2,3,4,5,6,7\)/);
  });

  it("says why bytes are not a quote", () => {
    const notQuote = Buffer.from(clean.message, "base64");
    notQuote.writeUInt32BE(0x12345678, 0);
    const v = verifyQuote({ ...evidence(clean), message: notQuote }, check(clean));
    assert.equal(v.ok ? "accepted" : v.code, "format");
    if (!v.ok) assert.match(v.reason, /not TPM_GENERATED_VALUE/);
    const short = verifyQuote({ ...evidence(clean), message: Buffer.from(clean.message, "base64").subarray(0, 40) }, check(clean));
    if (!short.ok) assert.match(short.reason, /TPMS_ATTEST is truncated/);
    assert.equal(short.ok, false);
  });
});

describe("parseQuoteAttest", () => {
  it("reads magic, type, nonce, clock, selection and digest of a recorded quote", () => {
    const a = parseQuoteAttest(Buffer.from(clean.message, "base64"));
    assert.equal(a.extraData.toString("hex"), clean.nonce);
    assert.deepEqual(a.pcrSelect, [{ hash: 0x000b, pcrs: fx.pcrList }]);
    assert.equal(a.pcrDigest.length, 32);
    assert.equal(a.qualifiedSigner.length, 34);
  });

  it("reads a TPM2B_ATTEST (size in front) the same", () => {
    const m = Buffer.from(clean.message, "base64");
    const size = Buffer.alloc(2);
    size.writeUInt16BE(m.length);
    assert.deepEqual(parseQuoteAttest(Buffer.concat([size, m])), parseQuoteAttest(m));
  });
});

describe("pcrValuesFromRaw", () => {
  it("splits tpm2_quote -F values output by PCR index, and refuses a wrong size", () => {
    const raw = Buffer.concat(fx.pcrList.map((i) => Buffer.from(clean.pcrs[String(i)], "hex")));
    const m = pcrValuesFromRaw(raw, fx.pcrList);
    assert.equal(m.get(16)!.toString("hex"), clean.pcrs["16"]);
    assert.throws(() => pcrValuesFromRaw(raw.subarray(1), fx.pcrList), /9 sha256 PCR\(s\) take 288/);
  });
});
