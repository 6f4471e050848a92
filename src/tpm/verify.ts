/**
 * Quote verification, as a Keylime verifier does it: the quote is signed by
 * the enrolled attestation key, carries the nonce issued for this check, is
 * newer than the last quote accepted from the same TPM, its PCR digest matches
 * the PCR values reported with it, and those values match the policy.
 */
import { createHash, randomBytes, timingSafeEqual, verify as cryptoVerify, constants, createPublicKey, type KeyObject } from "node:crypto";
import {
  hashAlg,
  hashAlgId,
  parsePublic,
  parseQuoteAttest,
  parseSignature,
  publicKeyOf,
  TpmFormatError,
  type PublicArea,
  type QuoteAttest,
  type Signature,
} from "./structures";

/** Where a quote came from and what it reported: the bytes as `tpm2_quote` writes them. */
export interface QuoteEvidence {
  /** TPMS_ATTEST (`tpm2_quote -m`). */
  readonly message: Buffer;
  /** TPMT_SIGNATURE (`tpm2_quote -s`). */
  readonly signature: Buffer;
  /** The PCR values the machine reported with the quote, by index (`tpm2_quote -o -F values`). */
  readonly pcrValues: ReadonlyMap<number, Buffer>;
}

/** The last quote accepted from a TPM: a newer quote must be later than this. */
export interface AcceptedClock {
  readonly resetCount: number;
  readonly restartCount: number;
  /** TPMS_CLOCK_INFO.clock in milliseconds, as a decimal string (a 64-bit value). */
  readonly clock: string;
}

export interface QuoteCheck {
  /** The AK's public part: TPM2B_PUBLIC bytes, a parsed TPMT_PUBLIC, or a PEM (`tpm2_createak -f pem`). */
  readonly akPublic: Buffer | PublicArea | string;
  /** The nonce issued for this check. */
  readonly nonce: Buffer;
  /** The PCRs the policy names, and the bank they are read from. */
  readonly pcrs: readonly number[];
  readonly bank?: "sha1" | "sha256" | "sha384" | "sha512";
  /** Expected PCR values (hex) by index; PCRs without one are only reported. */
  readonly golden?: Readonly<Record<number, string>>;
  /** The last quote accepted from this TPM (replay protection). */
  readonly last?: AcceptedClock;
}

export type FailureCode = "format" | "signature" | "nonce" | "replay" | "selection" | "pcr-digest" | "pcr-mismatch";

export interface PcrMismatch {
  readonly pcr: number;
  readonly expected: string;
  readonly found: string;
}

export type QuoteVerdict =
  | {
      readonly ok: true;
      /** The PCR values the quote vouches for, hex by index. */
      readonly pcrs: Readonly<Record<number, string>>;
      readonly clock: AcceptedClock;
      readonly attest: QuoteAttest;
    }
  | {
      readonly ok: false;
      readonly code: FailureCode;
      /** One sentence a user can act on. */
      readonly reason: string;
      /** For `pcr-mismatch`: every PCR that differed, with expected and found values. */
      readonly mismatches?: readonly PcrMismatch[];
    };

function fail(code: FailureCode, reason: string, mismatches?: readonly PcrMismatch[]): QuoteVerdict {
  return { ok: false, code, reason, mismatches };
}

function keyOf(ak: QuoteCheck["akPublic"]): { key: KeyObject; area?: PublicArea } {
  if (typeof ak === "string") return { key: createPublicKey(ak) };
  if (Buffer.isBuffer(ak)) {
    const area = parsePublic(ak);
    return { key: publicKeyOf(area), area };
  }
  return { key: publicKeyOf(ak), area: ak };
}

/** Checks a TPMT_SIGNATURE over `message` with the AK. */
export function verifySignature(key: KeyObject, message: Buffer, sig: Signature): boolean {
  const hash = hashAlg(sig.hash, "signature hash").name;
  if (sig.scheme !== "ecdsa") {
    if (sig.scheme === "rsassa") return cryptoVerify(hash, message, { key, padding: constants.RSA_PKCS1_PADDING }, sig.sig);
    return cryptoVerify(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig.sig);
  }
  const jwk = key.export({ format: "jwk" });
  const size = jwk.crv === "P-256" ? 32 : jwk.crv === "P-384" ? 48 : jwk.crv === "P-521" ? 66 : undefined;
  if (!size) return false;
  const pad = (b: Buffer) => (b.length > size ? b.subarray(b.length - size) : Buffer.concat([Buffer.alloc(size - b.length), b]));
  return cryptoVerify(hash, message, { key, dsaEncoding: "ieee-p1363" }, Buffer.concat([pad(sig.r), pad(sig.s)]));
}

/** Compares two clock records: negative when `a` is older than `b`. */
export function compareClock(a: AcceptedClock, b: AcceptedClock): number {
  if (a.resetCount !== b.resetCount) return a.resetCount - b.resetCount;
  if (a.restartCount !== b.restartCount) return a.restartCount - b.restartCount;
  const ca = BigInt(a.clock);
  const cb = BigInt(b.clock);
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}

function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Verifies a quote. Never throws for bad evidence: the verdict says what
 * failed (the first check that did), in a sentence that names the fix.
 */
export function verifyQuote(evidence: QuoteEvidence, check: QuoteCheck): QuoteVerdict {
  const bankName = check.bank ?? "sha256";
  let attest: QuoteAttest;
  let sig: Signature;
  let key: KeyObject;
  try {
    attest = parseQuoteAttest(evidence.message);
    sig = parseSignature(evidence.signature);
    key = keyOf(check.akPublic).key;
  } catch (err) {
    if (err instanceof TpmFormatError || err instanceof Error) return fail("format", `the quote does not parse: ${err.message}`);
    throw err;
  }

  let signed = false;
  try {
    signed = verifySignature(key, evidence.message, sig);
  } catch {
    signed = false;
  }
  if (!signed) return fail("signature", "the quote's signature does not verify with the enrolled attestation key: it was not made by this TPM's AK, or it was altered");

  if (!same(attest.extraData, check.nonce)) {
    return fail("nonce", `the quote carries nonce ${attest.extraData.toString("hex") || "(empty)"}, not the nonce ${check.nonce.toString("hex")} issued for this check: it was made for another check`);
  }

  const clock: AcceptedClock = { resetCount: attest.clockInfo.resetCount, restartCount: attest.clockInfo.restartCount, clock: attest.clockInfo.clock.toString() };
  if (check.last && compareClock(clock, check.last) <= 0) {
    return fail(
      "replay",
      `the quote's TPM clock (resetCount ${clock.resetCount}, restartCount ${clock.restartCount}, clock ${clock.clock}) is not later than the last accepted quote's (resetCount ${check.last.resetCount}, restartCount ${check.last.restartCount}, clock ${check.last.clock}): it is a replay, or the TPM's clock went back`,
    );
  }

  const bank = hashAlgId(bankName);
  const wanted = [...new Set(check.pcrs)].sort((a, b) => a - b);
  const selected = attest.pcrSelect.filter((s) => s.pcrs.length > 0);
  if (selected.length !== 1 || selected[0].hash !== bank || selected[0].pcrs.join(",") !== wanted.join(",")) {
    const got = selected.map((s) => `${hashAlg(s.hash).name}:${s.pcrs.join(",")}`).join(" ") || "nothing";
    return fail("selection", `the quote covers ${got}, not the PCRs the policy names (${bankName}:${wanted.join(",")})`);
  }

  const size = hashAlg(bank).size;
  const parts: Buffer[] = [];
  for (const i of wanted) {
    const v = evidence.pcrValues.get(i);
    if (!v || v.length !== size) return fail("pcr-digest", `the machine reported no ${bankName} value for PCR ${i} with its quote`);
    parts.push(v);
  }
  const digest = createHash(hashAlg(sig.hash, "signature hash").name).update(Buffer.concat(parts)).digest();
  if (!same(digest, attest.pcrDigest)) {
    return fail("pcr-digest", `the PCR values reported with the quote hash to ${digest.toString("hex")}, but the TPM signed ${attest.pcrDigest.toString("hex")}: the reported values were altered`);
  }

  const pcrs: Record<number, string> = {};
  for (const i of wanted) pcrs[i] = evidence.pcrValues.get(i)!.toString("hex");
  const mismatches: PcrMismatch[] = [];
  for (const [k, expected] of Object.entries(check.golden ?? {})) {
    const i = Number(k);
    const found = pcrs[i];
    const want = expected.toLowerCase().replace(/^0x/, "");
    if (found === undefined) return fail("selection", `the policy has a golden value for PCR ${i}, but PCR ${i} is not among the quoted PCRs (${wanted.join(",")})`);
    if (found !== want) mismatches.push({ pcr: i, expected: want, found });
  }
  if (mismatches.length > 0) {
    const list = mismatches.map((m) => `PCR ${m.pcr} (${bankName}) expected ${m.expected}, found ${m.found}`).join("; ");
    return fail("pcr-mismatch", `${list}`, mismatches);
  }
  return { ok: true, pcrs, clock, attest };
}

/** Splits `tpm2_quote -o FILE -F values` output (the values, concatenated in PCR order) by index. */
export function pcrValuesFromRaw(raw: Buffer, pcrs: readonly number[], bank: "sha1" | "sha256" | "sha384" | "sha512" = "sha256"): Map<number, Buffer> {
  const size = hashAlg(hashAlgId(bank)).size;
  const wanted = [...new Set(pcrs)].sort((a, b) => a - b);
  if (raw.length !== size * wanted.length) {
    throw new TpmFormatError(`the PCR values file has ${raw.length} bytes; ${wanted.length} ${bank} PCR(s) take ${size * wanted.length}`);
  }
  return new Map(wanted.map((p, i) => [p, raw.subarray(i * size, (i + 1) * size)]));
}

/**
 * Issues nonces and accepts each one once: a quote for a nonce this book did
 * not issue, or one already used, is refused.
 */
export class NonceBook {
  private readonly open = new Set<string>();
  constructor(private readonly size = 20) {}
  issue(): Buffer {
    const n = randomBytes(this.size);
    this.open.add(n.toString("hex"));
    return n;
  }
  /** True (once) for a nonce issued here and not yet used. */
  redeem(nonce: Buffer): boolean {
    return this.open.delete(nonce.toString("hex"));
  }
}
