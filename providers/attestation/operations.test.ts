import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { objectName, parsePublic } from "../../src/tpm/structures";
import { parseKv, parseQuote, parseTpmFacts, quoteCommand } from "./facts";
import { createCa } from "../../src/tls";
import { akProblems, baselineOf, ekCertificateProblems, judgeQuote, refusalMessage, staleness, tpmMismatch, type AttestationPolicy, type Enrolment } from "./operations";
import { attestationKind, type AttestationOutputs } from "./provider";

const enrolFx = JSON.parse(readFileSync(join(__dirname, "../../src/tpm/fixtures/enrolment.json"), "utf8")) as Record<string, string>;
const quotesFx = JSON.parse(readFileSync(join(__dirname, "../../src/tpm/fixtures/quotes.json"), "utf8")) as {
  pcrList: number[];
  akPublic: string;
  eccAkPublic: string;
  quotes: { label: string; nonce: string; message: string; signature: string; pcrs: Record<string, string> }[];
};
const ekPublic = Buffer.from(enrolFx.ekPublic, "base64");
const akPublic = Buffer.from(quotesFx.akPublic, "base64");
const enrolled: Enrolment = {
  ekName: objectName(parsePublic(ekPublic)).toString("hex"),
  akPublic: quotesFx.akPublic,
  akName: objectName(parsePublic(akPublic)).toString("hex"),
};
const policy: AttestationPolicy = { pcrs: quotesFx.pcrList, bank: "sha256", trustOnFirstUse: true, maxAgeSeconds: 60 };
const clean = quotesFx.quotes.find((q) => q.label === "clean")!;
const extended = quotesFx.quotes.find((q) => q.label === "pcr16-extended")!;

/** The machine's answer, as the quote probe prints it. */
function probeOutput(q: typeof clean): string {
  const raw = Buffer.concat(quotesFx.pcrList.map((i) => Buffer.from(q.pcrs[String(i)], "hex")));
  return `message=${q.message}\nsignature=${q.signature}\npcrs=${raw.toString("base64")}\n`;
}

describe("judgeQuote (recorded quotes, as the probe returns them)", () => {
  it("admits the enrolled AK's quote for the nonce issued, against the baseline", () => {
    const v = judgeQuote(enrolled, policy, parseQuote(probeOutput(clean)), Buffer.from(clean.nonce, "hex"), clean.pcrs, undefined);
    assert.equal(v.ok, true, v.ok ? "" : v.reason);
  });

  it("refuses the PCR that moved, expected and found", () => {
    const v = judgeQuote(enrolled, policy, parseQuote(probeOutput(extended)), Buffer.from(extended.nonce, "hex"), clean.pcrs, undefined);
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.reason, `PCR 16 (sha256) expected ${clean.pcrs["16"]}, found ${extended.pcrs["16"]}`);
  });

  it("refuses a probe answer with the wrong number of PCR values", () => {
    const q = parseQuote(probeOutput(clean));
    const v = judgeQuote(enrolled, policy, { ...q, pcrValues: q.pcrValues.subarray(32) }, Buffer.from(clean.nonce, "hex"), clean.pcrs, undefined);
    assert.equal(v.ok ? "accepted" : v.code, "format");
  });
});

describe("tpmMismatch", () => {
  const facts = parseTpmFacts(`ek=${enrolFx.ekPublic}\nak=${quotesFx.akPublic}\n`);
  it("is nothing for the enrolled TPM with its AK", () => {
    assert.equal(tpmMismatch(enrolled, facts, "0x81018d00"), undefined);
  });
  it("names a gone AK, another AK, another TPM", () => {
    assert.match(tpmMismatch(enrolled, { ekPublic }, "0x81018d00")!, /the attestation key at 0x81018d00 is gone/);
    assert.match(tpmMismatch(enrolled, { ekPublic, akPublic: Buffer.from(quotesFx.eccAkPublic, "base64") }, "0x81018d00")!, /is [0-9a-f]+, not the enrolled attestation key/);
    assert.match(tpmMismatch({ ...enrolled, ekName: "000b" + "00".repeat(32) }, facts, "0x81018d00")!, /this is another TPM/);
  });
});

describe("akProblems", () => {
  it("accepts a restricted signing key whose name matches, refuses the EK and a wrong name", () => {
    assert.deepEqual(akProblems(akPublic, objectName(parsePublic(akPublic))), []);
    assert.ok(akProblems(ekPublic, objectName(parsePublic(ekPublic))).includes("it is not a signing key"));
    assert.match(akProblems(akPublic, Buffer.alloc(34)).join(), /is not the hash of its public area/);
  });
});

describe("staleness and baseline", () => {
  it("counts a result older than maxAge as failed", () => {
    const now = new Date("2026-01-01T00:10:00Z");
    assert.equal(staleness("2026-01-01T00:09:30Z", 60, now), undefined);
    assert.match(staleness("2026-01-01T00:08:00Z", 60, now)!, /is 120 s old, more than maxAge 60 s/);
    assert.match(staleness(undefined, 60, now)!, /never passed/);
  });
  it("uses the program's golden values, else what was first seen with trust on first use", () => {
    assert.deepEqual(baselineOf({ ...policy, trustOnFirstUse: false, golden: { "0": "aa" } }, { "0": "bb" }), { "0": "aa" });
    assert.deepEqual(baselineOf(policy, { "0": "bb" }), { "0": "bb" });
  });
  it("words a refusal as the house style wants", () => {
    assert.equal(refusalMessage("m2 (root@h:22)", "PCR 7 (sha256) expected a, found b"), "Unable to admit m2 (root@h:22): attestation failed: PCR 7 (sha256) expected a, found b");
  });
});

describe("probe commands", () => {
  it("quote the sorted PCR list for the nonce, in hex, at the AK handle", () => {
    const text = quoteCommand("0x81018d00", [7, 0, 16], Buffer.from("0a0b", "hex")).text;
    assert.match(text, /tpm2_quote -c 0x81018d00 -l sha256:0,7,16 -q 0a0b /);
    assert.match(text, /tpm2_flushcontext -t/);
    assert.deepEqual(parseKv("a=b=c\nnothing\n x = y "), new Map([["a", "b=c"], ["x", "y"]]));
  });
});

describe("attestationKind.check and diff", () => {
  const connection = { host: "10.0.0.5", privateKey: "k", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" };
  it("refuses a policy without golden values or trust on first use, and bad values, naming the property", () => {
    const { failures } = attestationKind.check({ connection, host: "m1", pcrs: [0, 99], golden: { "5": "xyz" } });
    const byProp = Object.fromEntries(failures.map((f) => [f.property, f.reason]));
    assert.match(byProp.pcrs, /distinct PCR indices from 0 to 23/);
    assert.match(byProp["golden.5"], /64 hex digits/);
  });

  const inputs = attestationKind.check({ connection, host: "m2", pcrs: [0, 7], trustOnFirstUse: true, maxAgeSeconds: 600 }).inputs;
  const outs: AttestationOutputs = {
    ...inputs,
    ...enrolled,
    baseline: { "0": "00".repeat(32), "7": "00".repeat(32) },
    pcrValues: { "0": "00".repeat(32), "7": "00".repeat(32) },
    clock: { resetCount: 1, restartCount: 0, clock: "5" },
    verifiedAt: new Date().toISOString(),
    admitted: true,
  };

  it("shows no change when the policy is the same and the last check passed", () => {
    assert.deepEqual(attestationKind.diff(outs, inputs), { changes: false, replaces: [] });
  });

  it("re-enrols (replaces) when the PCR list changes", () => {
    assert.deepEqual(attestationKind.diff(outs, { ...inputs, pcrs: [0, 1, 7] }).replaces, ["pcrs"]);
  });

  it("plans no refusal for a host that passed, and no change", async () => {
    const { failures } = await attestationKind.plan!({ connection, host: "m2", pcrs: [0, 7], trustOnFirstUse: true, maxAgeSeconds: 600 }, inputs as never);
    assert.deepEqual(failures, []);
  });

  it("plans the refusal of a host whose last check failed as its change, which records it (admitted false) without touching the machine", async () => {
    // given: the refresh that began the run recorded a refusal in the inputs
    const refusal = { code: "pcr-mismatch", reason: `PCR 7 (sha256) expected ${"00".repeat(32)}, found ${"11".repeat(32)}` };
    // when
    const planned = await attestationKind.plan!({ connection, host: "m2", pcrs: [0, 7], trustOnFirstUse: true, maxAgeSeconds: 600 }, { ...inputs, refusal });
    // then: no check failure (the engine would stop planning every other resource), but a change
    assert.deepEqual(planned.failures, []);
    assert.deepEqual(planned.inputs.notAdmitted, refusal);
    assert.equal(attestationKind.diff(outs, planned.inputs).changes, true);
    // and that change records the refusal (the host's Reachability fails the run, naming it), with no SSH at all
    const updated = await attestationKind.update!("m2/attestation", outs, planned.inputs);
    assert.equal(updated.admitted, false);
    assert.deepEqual(updated.refusal, refusal);
    // and the diff of the refresh itself (outputs against what read returned) shows nothing, so a destroy still runs
    assert.deepEqual(attestationKind.diff({ ...outs, admitted: false, refusal }, { ...inputs, refusal } as never), { changes: false, replaces: [] });
  });

});

describe("ekCertificateProblems (the EK certificate swtpm_setup wrote to NV 0x01c00002, recorded)", () => {
  const cert = Buffer.from(enrolFx.ekCertificate, "base64");
  it("accepts the certificate of this EK, issued by the swtpm local CA", () => {
    const r = ekCertificateProblems(ekPublic, cert, [enrolFx.ekCa]);
    assert.deepEqual(r.problems, []);
    assert.match(r.fingerprint!, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual(ekCertificateProblems(ekPublic, cert, undefined).problems, []);
  });

  it("refuses a certificate issued by another CA, one for another key, and a missing one when a CA is required", async () => {
    const other = await createCa({ commonName: "not the TPM maker" });
    assert.match(ekCertificateProblems(ekPublic, cert, [other.certPem]).problems.join(), /was issued by CN=swtpm-localca, which is none of the CAs in `ekCa`/);
    assert.match(ekCertificateProblems(akPublic, cert, undefined).problems.join(), /certifies another key than its EK/);
    assert.match(ekCertificateProblems(ekPublic, undefined, [enrolFx.ekCa]).problems.join(), /has no EK certificate \(NV index 0x01c00002\)/);
    assert.deepEqual(ekCertificateProblems(ekPublic, undefined, undefined).problems, []);
  });
});
