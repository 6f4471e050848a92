/**
 * `drove:index:CertificateAuthority` and `drove:index:Certificate`: keys and
 * certificates made inside the provider at create (no SSH, no openssl), kept
 * as Pulumi secrets in state, replaced when what they certify changes or when
 * they near expiry.
 */
import type * as provider from "@pulumi/pulumi/provider";
import type { ResourceKind } from "../kind";
import { diffInputs, isUnknown, type Failures } from "../common";
import { certificateInfo, createCa, issueCertificate, validateCertificateOptions, type CertificateUsage } from "../../src/tls";
import { canonicalIp, renewalReason } from "./operations";

export const CA_VALIDITY_DAYS = 3650;
export const CERT_VALIDITY_DAYS = 825;

export interface CaInputs {
  readonly commonName: string;
  readonly validityDays: number;
}

export interface CaOutputs extends CaInputs {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: string;
  readonly fingerprint: string;
}

export interface CertificateInputs {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly commonName: string;
  readonly dnsNames: string[];
  readonly ipAddresses: string[];
  readonly usages: CertificateUsage[];
  readonly validityDays: number;
}

export interface CertificateOutputs extends CertificateInputs {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: string;
  readonly fingerprint: string;
}

const CERT_OUTPUTS = ["certPem", "keyPem", "notAfter", "fingerprint"] as const;

/** Failures as `check` reports them: the property the message names. */
function failuresOf(messages: string[]): Failures {
  return messages.map((reason) => ({ property: /^`(\w+)`/.exec(reason)?.[1] ?? "", reason }));
}

/** Validation that skips values not known yet (preview). */
function known<T>(v: T): T | undefined {
  return isUnknown(v) ? undefined : v;
}

function stringList(v: unknown, prop: string, failures: Failures): string[] {
  if (v === undefined) return [];
  if (isUnknown(v)) return v as unknown as string[];
  if (!Array.isArray(v)) {
    failures.push({ property: prop, reason: `\`${prop}\` must be a list of strings` });
    return [];
  }
  return v as string[];
}

/** The renewal check every diff makes: a certificate near its expiry is replaced. */
function withRenewal(d: provider.DiffResult, certPem: string | undefined, validityDays: number): provider.DiffResult {
  const why = renewalReason(certPem, validityDays, new Date());
  if (!why) return d;
  return { ...d, changes: true, replaces: [...new Set([...(d.replaces ?? []), "notAfter"])] };
}

/** A certificate authority drove makes: a self-signed ECDSA P-256 CA whose key stays in Pulumi state as a secret. */
export const caKind: ResourceKind<CaInputs, CaOutputs> = {
  token: "drove:index:CertificateAuthority",
  secretPaths: ["keyPem"],
  outputOnly: [...CERT_OUTPUTS],

  check(news) {
    const commonName = news.commonName ?? "drove CA";
    const validityDays = news.validityDays ?? CA_VALIDITY_DAYS;
    const failures = failuresOf(validateCertificateOptions({ commonName: known(commonName) ?? "x", validityDays: known(validityDays) }));
    return { inputs: { commonName: commonName as string, validityDays: validityDays as number }, failures };
  },

  diff(olds, news) {
    // The validity applies at the next renewal: a change is recorded in place.
    return withRenewal(diffInputs(olds as never, news as never, ["commonName"], this.outputOnly), olds.certPem, olds.validityDays ?? CA_VALIDITY_DAYS);
  },

  async create(inputs) {
    const { certPem, keyPem } = await createCa({ commonName: inputs.commonName, validityDays: inputs.validityDays });
    const info = certificateInfo(certPem);
    return { id: info.fingerprint, outs: { ...inputs, certPem, keyPem, notAfter: info.notAfter, fingerprint: info.fingerprint } };
  },

  async read(id, props) {
    if (!props.certPem) return undefined;
    // What the certificate itself says, so a state that does not match it shows as a diff.
    const info = certificateInfo(props.certPem);
    const inputs: CaInputs = { commonName: info.commonName, validityDays: props.validityDays ?? CA_VALIDITY_DAYS };
    void id;
    return { outs: { ...props, ...inputs, notAfter: info.notAfter, fingerprint: info.fingerprint }, inputs };
  },

  async update(_id, olds, news) {
    return { ...olds, ...news };
  },

  async delete() {
    // Nothing outside Pulumi's state: the key goes with the state entry.
  },
};

/** A certificate signed by a drove CertificateAuthority, with a new ECDSA P-256 key (a secret in state). */
export const certificateKind: ResourceKind<CertificateInputs, CertificateOutputs> = {
  token: "drove:index:Certificate",
  secretPaths: ["keyPem", "caKeyPem"],
  outputOnly: [...CERT_OUTPUTS],

  check(news) {
    const failures: Failures = [];
    const dnsNames = stringList(news.dnsNames, "dnsNames", failures);
    const ipAddresses = stringList(news.ipAddresses, "ipAddresses", failures);
    const usages = stringList(news.usages, "usages", failures) as CertificateUsage[];
    const validityDays = news.validityDays ?? CERT_VALIDITY_DAYS;
    const knownList = (l: string[]) => (isUnknown(l) ? [] : l.filter((x) => !isUnknown(x)));
    failures.push(
      ...failuresOf(
        validateCertificateOptions({
          commonName: known(news.commonName) ?? "x",
          dnsNames: knownList(dnsNames),
          ipAddresses: knownList(ipAddresses),
          usages: isUnknown(usages) ? undefined : (news.usages === undefined ? [] : usages),
          validityDays: known(validityDays),
        }),
      ),
    );
    for (const p of ["caCertPem", "caKeyPem"] as const) {
      const v = news[p];
      if (!isUnknown(v) && (typeof v !== "string" || !v.includes("-----BEGIN"))) {
        failures.push({ property: p, reason: `\`${p}\` must be the PEM of a drove CertificateAuthority (ca.certPem, ca.keyPem)` });
      }
    }
    const inputs: CertificateInputs = {
      caCertPem: news.caCertPem as string,
      caKeyPem: news.caKeyPem as string,
      commonName: news.commonName as string,
      dnsNames,
      ipAddresses: isUnknown(ipAddresses) ? ipAddresses : ipAddresses.map((ip) => (typeof ip === "string" && !isUnknown(ip) ? canonicalIp(ip) : ip)),
      usages: isUnknown(usages) ? usages : [...new Set(usages)],
      validityDays: validityDays as number,
    };
    return { inputs, failures };
  },

  diff(olds, news) {
    // The CA's key follows its certificate: a new CA shows as a new caCertPem.
    const d = diffInputs({ ...olds, caKeyPem: undefined } as never, { ...news, caKeyPem: undefined } as never, ["caCertPem", "commonName", "dnsNames", "ipAddresses", "usages"], this.outputOnly);
    return withRenewal(d, olds.certPem, olds.validityDays ?? CERT_VALIDITY_DAYS);
  },

  async create(inputs) {
    const { certPem, keyPem } = await issueCertificate({
      ca: { certPem: inputs.caCertPem, keyPem: inputs.caKeyPem },
      commonName: inputs.commonName,
      dnsNames: inputs.dnsNames,
      ipAddresses: inputs.ipAddresses,
      usages: inputs.usages,
      validityDays: inputs.validityDays,
    });
    const info = certificateInfo(certPem);
    return { id: info.fingerprint, outs: { ...inputs, certPem, keyPem, notAfter: info.notAfter, fingerprint: info.fingerprint } };
  },

  async read(id, props) {
    if (!props.certPem) return undefined;
    // The subject, SANs and usages as the certificate itself carries them.
    const info = certificateInfo(props.certPem);
    const inputs: CertificateInputs = {
      caCertPem: props.caCertPem,
      caKeyPem: props.caKeyPem,
      commonName: info.commonName,
      dnsNames: info.dnsNames,
      ipAddresses: info.ipAddresses.map(canonicalIp),
      usages: info.usages,
      validityDays: props.validityDays ?? CERT_VALIDITY_DAYS,
    };
    void id;
    return { outs: { ...props, ...inputs, notAfter: info.notAfter, fingerprint: info.fingerprint }, inputs };
  },

  async update(_id, olds, news) {
    return { ...olds, ...news };
  },

  async delete() {
    // Nothing outside Pulumi's state.
  },
};
