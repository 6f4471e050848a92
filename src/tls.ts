/**
 * Certificates for drove's own CAs: pure, no SSH, no openssl subprocess.
 * ECDSA P-256 keys from node's webcrypto, X.509 by `@peculiar/x509`.
 */
import { X509Certificate as NodeX509, createHash, createPrivateKey, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import type * as X509 from "@peculiar/x509";

let loaded: typeof X509 | undefined;

/**
 * `@peculiar/x509`, loaded on first use: about 0.1 s of start-up that a
 * program or a provider without certificates never needs.
 */
function x509(): typeof X509 {
  if (!loaded) {
    require("reflect-metadata");
    loaded = require("@peculiar/x509") as typeof X509;
    loaded.cryptoProvider.set(webcrypto as never);
  }
  return loaded;
}

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 24 * 60 * 60 * 1000;

/** A certificate and its private key, both PEM (key: PKCS#8). */
export interface KeyPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export type CertificateUsage = "server" | "client";

export interface CreateCaOptions {
  /** The CA's subject common name. */
  readonly commonName: string;
  /** @default 3650 */
  readonly validityDays?: number;
}

export interface IssueCertificateOptions {
  /** The CA that signs. */
  readonly ca: KeyPair;
  /** The certificate's subject common name. */
  readonly commonName: string;
  /** DNS subject alternative names. @default [] */
  readonly dnsNames?: readonly string[];
  /** IP subject alternative names (IPv4 or IPv6). @default [] */
  readonly ipAddresses?: readonly string[];
  /** Extended key usages: `server` (TLS server auth), `client` (TLS client auth). */
  readonly usages: readonly CertificateUsage[];
  /** @default 825 */
  readonly validityDays?: number;
}

/** What drove compares to decide whether a certificate still fits. */
export interface CertificateInfo {
  /** Subject common name. */
  readonly commonName: string;
  /** The whole subject, as a string (`CN=...`). */
  readonly subject: string;
  readonly issuer: string;
  readonly dnsNames: string[];
  readonly ipAddresses: string[];
  readonly usages: CertificateUsage[];
  readonly isCa: boolean;
  /** ISO 8601. */
  readonly notBefore: string;
  /** ISO 8601. */
  readonly notAfter: string;
  /** SHA-256 of the certificate (DER), hex. */
  readonly fingerprint: string;
  /** The issuer's key identifier (authority key identifier extension), hex. */
  readonly authorityKeyId: string | undefined;
  readonly subjectKeyId: string | undefined;
}

const COMMON_NAME = /^[^\x00-\x1f\x7f]{1,64}$/;
const DNS_NAME = /^(\*\.)?([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?)*$/;

/** Problems with certificate options, each a sentence that says what to change. Empty when fine. */
export function validateCertificateOptions(o: {
  commonName?: unknown;
  dnsNames?: readonly unknown[];
  ipAddresses?: readonly unknown[];
  usages?: readonly unknown[];
  validityDays?: unknown;
}): string[] {
  const errors: string[] = [];
  if (typeof o.commonName !== "string" || !COMMON_NAME.test(o.commonName)) {
    errors.push(`\`commonName\` must be 1 to 64 printable characters, but ${JSON.stringify(o.commonName)} was provided`);
  }
  for (const d of o.dnsNames ?? []) {
    if (typeof d !== "string" || d.length > 253 || !DNS_NAME.test(d)) errors.push(`\`dnsNames\` entry ${JSON.stringify(d)} is not a DNS name like "registry.example" or "*.example"`);
  }
  for (const ip of o.ipAddresses ?? []) {
    if (typeof ip !== "string" || isIP(ip) === 0) errors.push(`\`ipAddresses\` entry ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  }
  if (o.usages !== undefined) {
    if (!Array.isArray(o.usages) || o.usages.length === 0) errors.push('`usages` must list at least one of "server" and "client"');
    else for (const u of o.usages) if (u !== "server" && u !== "client") errors.push(`\`usages\` entry ${JSON.stringify(u)} must be "server" or "client"`);
  }
  if (o.validityDays !== undefined && (typeof o.validityDays !== "number" || !Number.isInteger(o.validityDays) || o.validityDays < 1 || o.validityDays > 36500)) {
    errors.push(`\`validityDays\` must be a whole number between 1 and 36500, but ${JSON.stringify(o.validityDays)} was provided`);
  }
  return errors;
}

function check(o: Parameters<typeof validateCertificateOptions>[0]): void {
  const errors = validateCertificateOptions(o);
  if (errors.length) throw new Error(errors.join("; "));
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509().PemConverter.encode(der, "PRIVATE KEY") + "\n";
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = x509().PemConverter.decode(pem)[0];
  if (!der) throw new Error("the CA's private key is not a PEM block");
  return webcrypto.subtle.importKey("pkcs8", der, ALG, false, ["sign"]);
}

/** The CN value escaped for an X.500 name string. */
function cn(name: string): string {
  return `CN=${name.replace(/([,+"\\<>;=#])/g, "\\$1")}`;
}

/** A validity window that starts a minute back, so a clock a little behind still accepts it. */
function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + days * DAY) };
}

/** A new self-signed certificate authority (ECDSA P-256), allowed to sign certificates only (path length 0). */
export async function createCa(opts: CreateCaOptions): Promise<KeyPair> {
  check({ commonName: opts.commonName, validityDays: opts.validityDays });
  const keys = await newKeys();
  const cert = await x509().X509CertificateGenerator.createSelfSigned({
    name: cn(opts.commonName),
    keys,
    signingAlgorithm: ALG,
    ...validity(opts.validityDays ?? 3650),
    extensions: [
      new (x509()).BasicConstraintsExtension(true, 0, true),
      new (x509()).KeyUsagesExtension(x509().KeyUsageFlags.keyCertSign | x509().KeyUsageFlags.cRLSign | x509().KeyUsageFlags.digitalSignature, true),
      await x509().SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: await keyPem(keys.privateKey) };
}

/** A leaf certificate signed by `ca`, with a new key, for TLS servers and/or clients. */
export async function issueCertificate(opts: IssueCertificateOptions): Promise<KeyPair> {
  check(opts);
  const caCert = new (x509()).X509Certificate(opts.ca.certPem);
  const caKey = await importKey(opts.ca.keyPem);
  const keys = await newKeys();
  const names: X509.JsonGeneralName[] = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const eku = [...new Set(opts.usages)].map((u) => (u === "server" ? x509().ExtendedKeyUsage.serverAuth : x509().ExtendedKeyUsage.clientAuth));
  const extensions: X509.Extension[] = [
    new (x509()).BasicConstraintsExtension(false, undefined, true),
    new (x509()).KeyUsagesExtension(x509().KeyUsageFlags.digitalSignature | x509().KeyUsageFlags.keyEncipherment, true),
    new (x509()).ExtendedKeyUsageExtension(eku, false),
    await x509().SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509().AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (names.length) extensions.push(new (x509()).SubjectAlternativeNameExtension(names, false));
  const cert = await x509().X509CertificateGenerator.create({
    subject: cn(opts.commonName),
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    ...validity(opts.validityDays ?? 825),
    extensions,
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: await keyPem(keys.privateKey) };
}

/** Reads a PEM certificate: subject, SANs, usages, validity, fingerprints. */
export function certificateInfo(pem: string): CertificateInfo {
  const cert = new (x509()).X509Certificate(pem);
  const node = new NodeX509(pem);
  const san = cert.getExtension(x509().SubjectAlternativeNameExtension);
  const eku = cert.getExtension(x509().ExtendedKeyUsageExtension);
  const bc = cert.getExtension(x509().BasicConstraintsExtension);
  const aki = cert.getExtension(x509().AuthorityKeyIdentifierExtension);
  const ski = cert.getExtension(x509().SubjectKeyIdentifierExtension);
  const usages: CertificateUsage[] = [];
  for (const u of eku?.usages ?? []) {
    if (u === x509().ExtendedKeyUsage.serverAuth) usages.push("server");
    if (u === x509().ExtendedKeyUsage.clientAuth) usages.push("client");
  }
  const cnOf = cert.subjectName.getField("CN")[0] ?? "";
  return {
    commonName: cnOf,
    subject: cert.subject,
    issuer: cert.issuer,
    dnsNames: (san?.names.items ?? []).filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: (san?.names.items ?? []).filter((n) => n.type === "ip").map((n) => n.value),
    usages,
    isCa: bc?.ca === true,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    fingerprint: createHash("sha256").update(node.raw).digest("hex"),
    authorityKeyId: aki?.keyId,
    subjectKeyId: ski?.keyId,
  };
}

/** True when `certPem` was signed by `caPem`'s key (a real signature check). */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  const cert = new NodeX509(certPem);
  const ca = new NodeX509(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

/** Days left before `notAfter` (negative when expired). */
export function daysLeft(certPem: string, now: Date = new Date()): number {
  return (new (x509()).X509Certificate(certPem).notAfter.getTime() - now.getTime()) / DAY;
}

/** True when the private key (PKCS#8 PEM) belongs to the certificate. */
export function keyMatches(certPem: string, keyPemText: string): boolean {
  try {
    return new NodeX509(certPem).checkPrivateKey(createPrivateKey(keyPemText));
  } catch {
    return false;
  }
}
