/**
 * Attestation decisions, pure: whether the TPM a host shows is the one that
 * was enrolled, whether a fresh quote admits the host, and the sentence that
 * says why not. No SSH here; the provider feeds facts in.
 */
import { X509Certificate } from "node:crypto";
import { attestationKeyProblems, objectName, parsePublic, publicKeyOf } from "../../src/tpm/structures";
import { compareClock, pcrValuesFromRaw, verifyQuote, type AcceptedClock, type QuoteVerdict } from "../../src/tpm/verify";
import type { QuoteFacts, TpmFacts } from "./facts";

export type Bank = "sha1" | "sha256" | "sha384" | "sha512";

/** What the program asks for. */
export interface AttestationPolicy {
  readonly pcrs: readonly number[];
  readonly bank: Bank;
  /** Expected PCR values (hex) by index; absent with trust on first use. */
  readonly golden?: Readonly<Record<string, string>>;
  readonly trustOnFirstUse: boolean;
  /** How long a passed attestation counts, in seconds. */
  readonly maxAgeSeconds: number;
}

/** What enrolment recorded (public data only: no secret is kept). */
export interface Enrolment {
  /** Name of the TPM's endorsement key (hex): which TPM this is. */
  readonly ekName: string;
  /** The AK's TPM2B_PUBLIC, base64. */
  readonly akPublic: string;
  /** The AK's name (hex). */
  readonly akName: string;
}

/** The golden values in force: the program's, or those accepted at enrolment (trust on first use). */
export function baselineOf(policy: AttestationPolicy, firstSeen?: Readonly<Record<string, string>>): Readonly<Record<string, string>> | undefined {
  if (policy.golden) return policy.golden;
  return policy.trustOnFirstUse ? firstSeen : undefined;
}

/**
 * Checks a freshly made AK before it is trusted: a restricted signing key of
 * the TPM, whose name is the one the TPM reported. Returns the problems (empty when none).
 */
export function akProblems(akPublic: Buffer, reportedName: Buffer): string[] {
  const area = parsePublic(akPublic);
  const out = attestationKeyProblems(area);
  const name = objectName(area);
  if (!name.equals(reportedName)) out.push(`its name ${reportedName.toString("hex")} is not the hash of its public area (${name.toString("hex")})`);
  return out;
}

/** Whether the TPM the machine shows now is the enrolled one, with its AK in place; a reason when not. */
export function tpmMismatch(enrolled: Enrolment, facts: TpmFacts, akHandle: string): string | undefined {
  const ekName = objectName(parsePublic(facts.ekPublic)).toString("hex");
  if (ekName !== enrolled.ekName) return `its TPM's endorsement key is ${ekName}, not the enrolled ${enrolled.ekName}: this is another TPM (or the TPM was cleared)`;
  if (!facts.akPublic) return `the attestation key at ${akHandle} is gone from its TPM (evicted, or the TPM was cleared)`;
  const akName = objectName(parsePublic(facts.akPublic)).toString("hex");
  if (akName !== enrolled.akName) return `the key at ${akHandle} is ${akName}, not the enrolled attestation key ${enrolled.akName}`;
  return undefined;
}

/** Verifies a quote the machine returned for `nonce` against the policy and the last accepted clock. */
export function judgeQuote(
  enrolled: Enrolment,
  policy: AttestationPolicy,
  quote: QuoteFacts,
  nonce: Buffer,
  baseline: Readonly<Record<string, string>> | undefined,
  last: AcceptedClock | undefined,
): QuoteVerdict {
  let pcrValues: Map<number, Buffer>;
  try {
    pcrValues = pcrValuesFromRaw(quote.pcrValues, policy.pcrs, policy.bank);
  } catch (err) {
    return { ok: false, code: "format", reason: (err as Error).message };
  }
  const golden = baseline ? Object.fromEntries(Object.entries(baseline).map(([k, v]) => [Number(k), v])) : undefined;
  return verifyQuote(
    { message: quote.message, signature: quote.signature, pcrValues },
    { akPublic: Buffer.from(enrolled.akPublic, "base64"), nonce, pcrs: policy.pcrs, bank: policy.bank, golden, last },
  );
}

/** Why a stored result no longer counts (older than maxAge), or undefined. */
export function staleness(verifiedAt: string | undefined, maxAgeSeconds: number, now: Date): string | undefined {
  if (!verifiedAt) return "it has never passed attestation";
  const age = (now.getTime() - Date.parse(verifiedAt)) / 1000;
  if (!(age <= maxAgeSeconds)) return `its last passed attestation (${verifiedAt}) is ${Math.round(age)} s old, more than maxAge ${maxAgeSeconds} s`;
  return undefined;
}

/** The refusal, as a user reads it. */
export function refusalMessage(host: string, reason: string): string {
  return `Unable to admit ${host}: attestation failed: ${reason}`;
}

/** What can be done about a refusal, by its cause. */
export function refusalFixes(code: string): string[] {
  if (code === "pcr-mismatch") {
    return [
      "find out what changed the measured state of the machine (firmware, boot loader, kernel, a PCR extended by hand) and restore it",
      "if the change is intended, set the new value in the Attestation's `golden` (or replace the resource to trust the machine again: `pulumi up --replace <urn>`)",
    ];
  }
  if (code === "tpm") return ["restore the TPM and its attestation key", "enrol the machine again with `pulumi up --replace <urn>` if its TPM was replaced on purpose"];
  if (code === "stale") return ["run `pulumi up` with a refresh (the default in drove projects) so the host is attested again", "raise `maxAge`"];
  return ["check the machine's TPM (tpm2_quote) and that nothing sits between drove and the machine", "enrol it again with `pulumi up --replace <urn>`"];
}

/** Newer of two clocks (for keeping the last accepted). */
export function later(a: AcceptedClock | undefined, b: AcceptedClock): AcceptedClock {
  return a && compareClock(a, b) > 0 ? a : b;
}

/**
 * Checks the TPM's EK certificate, as Keylime's registrar does: it must
 * certify this EK, and, when the program names the manufacturer CAs
 * (`ekCa`), be issued by one of them and valid now. Returns the problems
 * (empty when none) and the certificate's SHA-256 fingerprint.
 */
export function ekCertificateProblems(ekPublic: Buffer, certificate: Buffer | undefined, cas: readonly string[] | undefined, now = new Date()): { problems: string[]; fingerprint?: string } {
  if (!certificate) return { problems: cas?.length ? ["its TPM has no EK certificate (NV index 0x01c00002), so its EK cannot be checked against `ekCa`"] : [] };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificate);
  } catch (err) {
    return { problems: [`its EK certificate does not parse: ${(err as Error).message}`] };
  }
  const problems: string[] = [];
  const a = cert.publicKey.export({ format: "jwk" });
  const b = publicKeyOf(parsePublic(ekPublic)).export({ format: "jwk" });
  if (a.kty !== b.kty || a.n !== b.n || a.e !== b.e || a.x !== b.x || a.y !== b.y) problems.push(`its EK certificate (${cert.subject}) certifies another key than its EK`);
  if (cas?.length) {
    const issued = cas.some((pem) => {
      try {
        const ca = new X509Certificate(pem);
        return cert.checkIssued(ca) && cert.verify(ca.publicKey);
      } catch {
        return false;
      }
    });
    if (!issued) problems.push(`its EK certificate was issued by ${cert.issuer.replace(/\n/g, ", ")}, which is none of the CAs in \`ekCa\``);
    if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) problems.push(`its EK certificate is valid from ${cert.validFrom} to ${cert.validTo}, not now`);
  }
  return { problems, fingerprint: cert.fingerprint256 };
}
