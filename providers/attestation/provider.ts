import { randomBytes, X509Certificate } from "node:crypto";
import type { ResourceKind } from "../kind";
import { checkConnection, diffInputs, isUnknown, withHost, type Failures } from "../common";
import { DroveError, HostError } from "../../src/errors";
import { describeTarget, SshPool, type SshConnection, type SshTarget } from "../../src/ssh";
import type { ShellCommand } from "../../src/quote";
import { makeCredential, toolsCredentialFile } from "../../src/tpm/credential";
import { objectName, parsePublic } from "../../src/tpm/structures";
import type { AcceptedClock } from "../../src/tpm/verify";
import {
  activateCredentialCommand,
  createAkCommand,
  DEFAULT_AK_HANDLE,
  parseActivated,
  parseKv,
  parseQuote,
  parseTpmFacts,
  quoteCommand,
  removeAkCommand,
  tpmFactsCommand,
  tpmFailure,
} from "./facts";
import {
  akProblems,
  ekCertificateProblems,
  baselineOf,
  judgeQuote,
  later,
  refusalFixes,
  refusalMessage,
  staleness,
  tpmMismatch,
  type AttestationPolicy,
  type Bank,
  type Enrolment,
} from "./operations";

export interface AttestationInputs extends AttestationPolicy {
  readonly connection: SshTarget;
  /** The Host's name, for messages. */
  readonly host: string;
  /** Persistent handle of the AK, hex (`0x81018d00`). */
  readonly akHandle: string;
  readonly keyType: "rsa" | "ecc";
  /** PEM certificates of the CAs that may issue the TPM's EK certificate; absent: the certificate (if any) must only match the EK. */
  readonly ekCa?: readonly string[];
  /** Set by the plan when the host failed its attestation in this run (or its last pass is too old): why. */
  readonly notAdmitted?: { readonly code: string; readonly reason: string; readonly mismatches?: readonly { pcr: number; expected: string; found: string }[] };
}

export interface AttestationOutputs extends AttestationInputs, Enrolment {
  /** The PCR values in force (the golden values, or those trusted on first use), hex by index. */
  readonly baseline: Readonly<Record<string, string>>;
  /** The PCR values of the last quote that passed. */
  readonly pcrValues: Readonly<Record<string, string>>;
  /** The TPM clock of the last quote that passed (replay protection). */
  readonly clock: AcceptedClock;
  /** When the last quote passed (ISO 8601). */
  readonly verifiedAt: string;
  /** SHA-256 fingerprint of the EK certificate checked at enrolment, when the TPM has one. */
  readonly ekCertificate?: string;
  /** True while the last check passed and is younger than maxAge. */
  readonly admitted: boolean;
  /** Why the host is not admitted; absent when it is. */
  readonly refusal?: { readonly code: string; readonly reason: string; readonly mismatches?: readonly { pcr: number; expected: string; found: string }[] };
}

const OUTPUT_ONLY = ["enrolment", "ekCertificate", "ekName", "akPublic", "akName", "baseline", "pcrValues", "clock", "verifiedAt", "admitted", "refusal"];
const BANK_SIZE: Record<Bank, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

async function run(conn: SshConnection, action: string, command: ShellCommand, stdin?: string): Promise<string> {
  const r = await conn.exec(command, stdin === undefined ? {} : { stdin });
  if (r.code !== 0) {
    throw new HostError(describeTarget(conn.target), action, tpmFailure(r.code, r.stderr), {
      fixes: r.code === 3 ? ["install tpm2-tools on the machine (`apt-get install tpm2-tools`)", "remove the Attestation from this host"] : ["check that the machine's TPM answers (`tpm2_getcap properties-fixed` with TPM2TOOLS_TCTI from /etc/environment)"],
    });
  }
  return r.stdout;
}

/** Makes an AK under the EK and proves, with MakeCredential/ActivateCredential, that it lives in that TPM. */
async function enrol(conn: SshConnection, i: AttestationInputs): Promise<Enrolment & { ekCertificate?: string }> {
  const kv = parseKv(await run(conn, "create an attestation key", createAkCommand(i.akHandle, i.keyType)));
  const ekPublic = Buffer.from(kv.get("ek") ?? "", "base64");
  const cert = kv.get("ekcert");
  const ekCheck = ekCertificateProblems(ekPublic, cert ? Buffer.from(cert, "base64") : undefined, i.ekCa);
  if (ekCheck.problems.length) {
    await run(conn, "remove the attestation key", removeAkCommand(i.akHandle)).catch(() => undefined);
    throw new HostError(describeTarget(conn.target), "enrol the TPM", `its endorsement key cannot be trusted: ${ekCheck.problems.join("; ")}`, {
      fixes: ["give the CA that issued this TPM's EK certificate in `ekCa`", "check that this machine has the TPM you expect"],
    });
  }
  const akPublic = Buffer.from(kv.get("ak") ?? "", "base64");
  const akName = Buffer.from(kv.get("name") ?? "", "base64");
  const problems = akProblems(akPublic, akName);
  if (problems.length) throw new HostError(describeTarget(conn.target), "enrol the attestation key", `the key tpm2_createak made cannot attest: ${problems.join("; ")}`);
  const credential = randomBytes(32);
  const file = toolsCredentialFile(makeCredential(ekPublic, akName, credential));
  const opened = parseActivated(await run(conn, "activate the enrolment credential", activateCredentialCommand(i.akHandle), file.toString("base64")));
  if (!opened.equals(credential)) {
    throw new HostError(describeTarget(conn.target), "enrol the attestation key", "the TPM opened the enrolment credential to other bytes than were sent: the AK is not bound to this EK");
  }
  return {
    ekName: objectName(parsePublic(ekPublic)).toString("hex"),
    akPublic: akPublic.toString("base64"),
    akName: akName.toString("hex"),
    ...(ekCheck.fingerprint ? { ekCertificate: ekCheck.fingerprint } : {}),
  };
}

type Check =
  | { ok: true; pcrValues: Record<string, string>; clock: AcceptedClock }
  | { ok: false; code: string; reason: string; mismatches?: readonly { pcr: number; expected: string; found: string }[] };

/** One fresh check: the TPM is the enrolled one, and a quote for a new nonce passes. */
async function attest(conn: SshConnection, i: AttestationInputs, enrolled: Enrolment, baseline: Readonly<Record<string, string>> | undefined, last?: AcceptedClock): Promise<Check> {
  const facts = parseTpmFacts(await run(conn, "read the TPM", tpmFactsCommand(i.akHandle)));
  const moved = tpmMismatch(enrolled, facts, i.akHandle);
  if (moved) return { ok: false, code: "tpm", reason: moved };
  const nonce = randomBytes(20);
  const quote = parseQuote(await run(conn, "quote the PCRs", quoteCommand(i.akHandle, i.pcrs, nonce, i.bank)));
  const v = judgeQuote(enrolled, i, quote, nonce, baseline, last);
  if (!v.ok) return { ok: false, code: v.code, reason: v.reason, mismatches: v.mismatches };
  return { ok: true, pcrValues: Object.fromEntries(Object.entries(v.pcrs).map(([k, val]) => [String(k), val])), clock: v.clock };
}

/** What read returns in the inputs besides the program's: the enrolment's public data. */
interface StableEnrolment extends Enrolment {
  readonly baseline: Readonly<Record<string, string>>;
}

/** The checks made in this run (one provider process per run), by host: what plan decides on. */
const verdicts = new Map<string, { check: Check; at: Date }>();

function verdictKey(i: AttestationInputs): string {
  return `${i.host}|${describeTarget(i.connection)}|${i.akHandle}`;
}

/** The same checks by connection, for other kinds of the same run (a Service places no replica on a refused host). */
const admissions = new Map<string, { check: Check; at: Date; maxAgeSeconds: number }>();

function record(i: AttestationInputs, check: Check): { check: Check; at: Date } {
  const v = { check, at: new Date() };
  verdicts.set(verdictKey(i), v);
  admissions.set(SshPool.key(i.connection), { ...v, maxAgeSeconds: i.maxAgeSeconds });
  return v;
}

/**
 * The check of the host behind `target` in this run, for other kinds of the
 * same run: `{ checked: false }` when there was none, else whether it passed
 * (a pass older than maxAge counts as failed) and why not.
 */
export function attestationRefusal(target: SshTarget): { checked: boolean; reason?: string } {
  const v = admissions.get(SshPool.key(target));
  if (!v) return { checked: false };
  if (!v.check.ok) return { checked: true, reason: v.check.reason };
  const stale = staleness(v.at.toISOString(), v.maxAgeSeconds, new Date());
  return stale ? { checked: true, reason: stale } : { checked: true };
}

function refuse(i: AttestationInputs, code: string, reason: string): never {
  throw new DroveError(refusalMessage(`${i.host} (${describeTarget(i.connection)})`, reason), { fixes: refusalFixes(code) });
}

function inputsOf(o: AttestationOutputs): AttestationInputs {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !OUTPUT_ONLY.includes(k))) as unknown as AttestationInputs;
}

/**
 * A host's TPM attestation (as Keylime does it): enrolment binds an AK to the
 * EK; every refresh and update verifies a quote for a fresh nonce. A host
 * whose quote fails is refused with the PCR, expected and found.
 */
export const attestationKind: ResourceKind<AttestationInputs, AttestationOutputs> = {
  token: "drove:index:Attestation",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],
  outputOnly: OUTPUT_ONLY,

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    const bank = (news.bank ?? "sha256") as Bank;
    if (!isUnknown(bank) && !(bank in BANK_SIZE)) failures.push({ property: "bank", reason: `\`bank\` must be sha1, sha256, sha384 or sha512, but ${JSON.stringify(news.bank)} was provided` });
    const pcrs = news.pcrs;
    if (!Array.isArray(pcrs) || pcrs.length === 0 || pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > 23) || new Set(pcrs).size !== pcrs.length) {
      failures.push({ property: "pcrs", reason: `\`pcrs\` must be distinct PCR indices from 0 to 23, but ${JSON.stringify(pcrs)} was provided` });
    }
    const golden = news.golden as Record<string, unknown> | undefined;
    const tofu = news.trustOnFirstUse === true;
    if (golden !== undefined && tofu) failures.push({ property: "golden", reason: "give either `golden` values or `trustOnFirstUse`, not both" });
    if (golden === undefined && !tofu) failures.push({ property: "golden", reason: "give `golden` PCR values (hex by PCR index), or set `trustOnFirstUse` to accept what the first quote shows" });
    if (golden !== undefined && !isUnknown(golden)) {
      const size = BANK_SIZE[bank] ?? 32;
      for (const [k, v] of Object.entries(golden)) {
        if (Array.isArray(pcrs) && !pcrs.includes(Number(k))) failures.push({ property: `golden.${k}`, reason: `golden value for PCR ${k}, which is not in \`pcrs\` (${JSON.stringify(pcrs)}); add it to \`pcrs\` or remove the value` });
        if (typeof v !== "string" || !new RegExp(`^(0x)?[0-9a-fA-F]{${size * 2}}$`).test(v)) failures.push({ property: `golden.${k}`, reason: `golden value for PCR ${k} must be ${size * 2} hex digits (a ${bank} digest), but ${JSON.stringify(v)} was provided` });
      }
    }
    const maxAgeSeconds = news.maxAgeSeconds ?? 3600;
    if (!Number.isInteger(maxAgeSeconds) || (maxAgeSeconds as number) < 1) failures.push({ property: "maxAgeSeconds", reason: `\`maxAgeSeconds\` must be a whole number of seconds, at least 1, but ${JSON.stringify(news.maxAgeSeconds)} was provided` });
    const akHandle = String(news.akHandle ?? DEFAULT_AK_HANDLE);
    if (!/^0x81[0-9a-f]{6}$/i.test(akHandle)) failures.push({ property: "akHandle", reason: `\`akHandle\` must be a persistent handle like 0x81018d00, but ${JSON.stringify(news.akHandle)} was provided` });
    const keyType = news.keyType ?? "rsa";
    if (keyType !== "rsa" && keyType !== "ecc") failures.push({ property: "keyType", reason: `\`keyType\` must be "rsa" or "ecc", but ${JSON.stringify(keyType)} was provided` });
    const ekCa = news.ekCa;
    if (ekCa !== undefined && !isUnknown(ekCa)) {
      if (!Array.isArray(ekCa) || ekCa.length === 0) failures.push({ property: "ekCa", reason: "`ekCa` must be a list of PEM certificates" });
      else
        ekCa.forEach((pem, n) => {
          try {
            new X509Certificate(String(pem));
          } catch {
            failures.push({ property: `ekCa[${n}]`, reason: `\`ekCa\` entry ${n} is not a PEM certificate (-----BEGIN CERTIFICATE-----)` });
          }
        });
    }
    const inputs: AttestationInputs = {
      connection,
      host: String(news.host ?? ""),
      pcrs: Array.isArray(pcrs) ? [...(pcrs as number[])].sort((a, b) => a - b) : [],
      bank,
      ...(golden !== undefined ? { golden: Object.fromEntries(Object.entries(golden).map(([k, v]) => [String(Number(k)), String(v).toLowerCase().replace(/^0x/, "")])) } : {}),
      trustOnFirstUse: tofu,
      maxAgeSeconds: maxAgeSeconds as number,
      akHandle: akHandle.toLowerCase(),
      keyType: keyType as "rsa" | "ecc",
      ...(Array.isArray(ekCa) ? { ekCa: ekCa.map(String) } : {}),
    };
    return { inputs, failures };
  },

  /**
   * Runs before any change (not before destroy): a host whose check in this
   * run failed (at the refresh that began it, or here when the run has no
   * refresh), or whose last pass is older than maxAge, is refused, naming the
   * PCR with expected and found.
   */
  async plan(news, olds) {
    const { inputs, failures } = this.check(news);
    if (failures.length || isUnknown(inputs.connection) || !olds) return { inputs, failures };
    const last = olds as Partial<AttestationInputs & { enrolment: StableEnrolment; refusal: AttestationOutputs["refusal"] }>;
    const key = verdictKey(inputs);
    let verdict = verdicts.get(key);
    if (!verdict && last.enrolment) {
      // No refresh in this run: quote now, with a fresh nonce.
      const e = last.enrolment;
      const check = await withHost(inputs.connection, (conn) => attest(conn, inputs, e, baselineOf(inputs, e.baseline)));
      verdict = record(inputs, check);
    }
    const refusal = verdict ? (verdict.check.ok ? undefined : verdict.check) : last.refusal;
    const stale = !refusal && verdict ? staleness(verdict.at.toISOString(), inputs.maxAgeSeconds, new Date()) : undefined;
    // Not a check failure (the engine would stop planning the whole stack there): the refusal is
    // planned as this resource's change, recorded by its update, and the run goes on without the
    // host (a Service moves its replicas, registry credentials are taken back) and then fails at
    // the host's Reachability, naming why.
    // (the mismatches too: a preview shows long strings cut short, each PCR's expected and found in full)
    const notAdmitted = refusal
      ? { code: refusal.code, reason: refusal.reason, ...(refusal.mismatches ? { mismatches: refusal.mismatches } : {}) }
      : stale
        ? { code: "stale", reason: stale }
        : undefined;
    return { inputs: notAdmitted ? { ...inputs, notAdmitted } : inputs, failures };
  },

  diff(olds, news) {
    // A new policy or key is a new enrolment.
    const d = diffInputs(olds as never, news as never, ["pcrs", "bank", "golden", "trustOnFirstUse", "akHandle", "keyType", "ekCa"], OUTPUT_ONLY);
    // A host refused in this run is news on every run until it passes again.
    return news.notAdmitted && !d.replaces?.length ? { ...d, changes: true } : d;
  },

  async create(inputs) {
    const { enrolled, check } = await withHost(inputs.connection, async (conn) => {
      const enrolled = await enrol(conn, inputs);
      return { enrolled, check: await attest(conn, inputs, enrolled, inputs.golden) };
    });
    record(inputs, check);
    if (!check.ok) {
      await withHost(inputs.connection, (conn) => run(conn, "remove the attestation key", removeAkCommand(inputs.akHandle))).catch(() => undefined);
      refuse(inputs, check.code, check.reason);
    }
    const baseline = baselineOf(inputs, check.pcrValues)!;
    return {
      id: `${inputs.host}/attestation`,
      outs: { ...inputs, ...enrolled, baseline, pcrValues: check.pcrValues, clock: check.clock, verifiedAt: new Date().toISOString(), admitted: true },
    };
  },

  async read(_id, props) {
    const inputs = inputsOf(props);
    const check = await withHost(props.connection, (conn) => attest(conn, inputs, props, props.baseline, props.clock));
    record(inputs, check);
    const { refusal: _r, ...rest } = props;
    // The enrolment's public data rides in the inputs (it does not change from one check to the next),
    // so a run without a refresh can still quote in its plan.
    const enrolment: StableEnrolment = { ekName: props.ekName, akPublic: props.akPublic, akName: props.akName, baseline: props.baseline };
    if (!check.ok) {
      // Recorded, not thrown: the refresh goes on for the other hosts (and a destroy still works); the plan refuses this one.
      const refusal = { code: check.code, reason: check.reason, ...(check.mismatches ? { mismatches: check.mismatches } : {}) };
      return { outs: { ...rest, admitted: false, refusal }, inputs: { ...inputs, enrolment, refusal } as AttestationInputs };
    }
    const verifiedAt = new Date().toISOString();
    return { outs: { ...rest, pcrValues: check.pcrValues, clock: later(props.clock, check.clock), verifiedAt, admitted: true }, inputs: { ...inputs, enrolment } as AttestationInputs };
  },

  async update(_id, olds, news) {
    if (news.notAdmitted) {
      // Recorded, not thrown: what waits for this host's admission (a Service's placement, registry
      // credentials) goes on without it, and the host's Reachability fails the run at its end, naming why.
      const { refusal: _old, ...kept } = olds;
      return { ...kept, ...news, admitted: false, refusal: news.notAdmitted };
    }
    const check = await withHost(news.connection, (conn) => attest(conn, news, olds, baselineOf(news, olds.baseline), olds.clock));
    record(news, check);
    if (!check.ok) refuse(news, check.code, check.reason);
    const { refusal: _r, ...rest } = olds;
    return { ...rest, ...news, baseline: baselineOf(news, olds.baseline)!, pcrValues: check.pcrValues, clock: later(olds.clock, check.clock), verifiedAt: new Date().toISOString(), admitted: true };
  },

  async delete(_id, props) {
    await withHost(props.connection, (conn) => run(conn, "remove the attestation key", removeAkCommand(props.akHandle ?? DEFAULT_AK_HANDLE)));
  },
};
