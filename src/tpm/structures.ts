/**
 * TPM 2.0 wire structures that a verifier needs (TPM 2.0 Library, Part 2:
 * Structures): TPMS_ATTEST of a quote, TPMT_SIGNATURE, TPM2B_PUBLIC and the
 * object name. Big-endian throughout; every parser refuses trailing or missing
 * bytes with the name of the structure and field it was reading.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;

/** TPM_ALG_ID values drove understands. */
export const Alg = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDAA: 0x001a,
  ECC: 0x0023,
  CFB: 0x0043,
} as const;

const HASHES: Record<number, { name: string; size: number }> = {
  [Alg.SHA1]: { name: "sha1", size: 20 },
  [Alg.SHA256]: { name: "sha256", size: 32 },
  [Alg.SHA384]: { name: "sha384", size: 48 },
  [Alg.SHA512]: { name: "sha512", size: 64 },
};

/** The node:crypto name and digest size of a TPM hash algorithm; throws for anything else. */
export function hashAlg(alg: number, what = "hash algorithm"): { name: string; size: number } {
  const h = HASHES[alg];
  if (!h) throw new TpmFormatError(`${what} 0x${alg.toString(16).padStart(4, "0")} is not a hash drove supports (sha1, sha256, sha384, sha512)`);
  return h;
}

/** The TPM_ALG_ID of a hash by its name (`sha256`). */
export function hashAlgId(name: string): number {
  const e = Object.entries(HASHES).find(([, h]) => h.name === name);
  if (!e) throw new TpmFormatError(`${name} is not a hash drove supports (sha1, sha256, sha384, sha512)`);
  return Number(e[0]);
}

/** Bytes that do not parse as the TPM structure they claim to be. */
export class TpmFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TpmFormatError";
  }
}

/** A big-endian reader over a buffer, failing with the structure and field it was reading. */
export class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly structure: string,
  ) {}
  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  private need(n: number, field: string): void {
    if (this.pos + n > this.buf.length) {
      throw new TpmFormatError(`${this.structure} is truncated: ${field} needs ${n} byte(s) at offset ${this.pos}, but only ${this.buf.length - this.pos} remain`);
    }
  }
  u8(field: string): number {
    this.need(1, field);
    return this.buf.readUInt8(this.pos++);
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return Buffer.from(v);
  }
  /** A TPM2B_*: a 16-bit size, then that many bytes. */
  sized(field: string): Buffer {
    return this.bytes(this.u16(`${field}.size`), field);
  }
  end(): void {
    if (this.remaining !== 0) throw new TpmFormatError(`${this.structure} has ${this.remaining} unexpected trailing byte(s) at offset ${this.pos}`);
  }
}

/** Marshals a TPM2B_*: a 16-bit size, then the bytes. */
export function tpm2b(data: Buffer): Buffer {
  if (data.length > 0xffff) throw new TpmFormatError(`a TPM2B cannot hold ${data.length} bytes`);
  const size = Buffer.alloc(2);
  size.writeUInt16BE(data.length);
  return Buffer.concat([size, data]);
}

export interface PcrSelection {
  /** TPM_ALG_ID of the bank. */
  readonly hash: number;
  /** PCR indices, ascending. */
  readonly pcrs: readonly number[];
}

export interface ClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** TPMS_ATTEST with TPMS_QUOTE_INFO. */
export interface QuoteAttest {
  readonly qualifiedSigner: Buffer;
  /** The nonce the verifier asked for (`tpm2_quote -q`). */
  readonly extraData: Buffer;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
  readonly pcrSelect: readonly PcrSelection[];
  readonly pcrDigest: Buffer;
}

/** Parses the PCR selection list (TPML_PCR_SELECTION). */
function readPcrSelectionList(r: Reader): PcrSelection[] {
  const count = r.u32("pcrSelect.count");
  if (count > 16) throw new TpmFormatError(`TPMS_ATTEST names ${count} PCR banks; a TPM has at most 16`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hash = r.u16(`pcrSelect[${i}].hash`);
    const sizeofSelect = r.u8(`pcrSelect[${i}].sizeofSelect`);
    const bitmap = r.bytes(sizeofSelect, `pcrSelect[${i}].pcrSelect`);
    const pcrs: number[] = [];
    for (let b = 0; b < bitmap.length; b++) for (let bit = 0; bit < 8; bit++) if (bitmap[b] & (1 << bit)) pcrs.push(b * 8 + bit);
    out.push({ hash, pcrs });
  }
  return out;
}

/**
 * Parses a quote's TPMS_ATTEST, as `tpm2_quote -m` writes it, or a TPM2B_ATTEST
 * (the same with a 16-bit size in front). Refuses anything but a TPM-made quote.
 */
export function parseQuoteAttest(data: Buffer): QuoteAttest {
  let body = data;
  if (data.length >= 6 && data.readUInt32BE(0) !== TPM_GENERATED_VALUE && data.readUInt32BE(2) === TPM_GENERATED_VALUE) {
    const outer = new Reader(data, "TPM2B_ATTEST");
    body = outer.sized("attestationData");
    outer.end();
  }
  const r = new Reader(body, "TPMS_ATTEST");
  const magic = r.u32("magic");
  if (magic !== TPM_GENERATED_VALUE) {
    throw new TpmFormatError(`TPMS_ATTEST magic is 0x${magic.toString(16)}, not TPM_GENERATED_VALUE (0xff544347): this was not made by a TPM`);
  }
  const type = r.u16("type");
  if (type !== TPM_ST_ATTEST_QUOTE) throw new TpmFormatError(`TPMS_ATTEST type is 0x${type.toString(16)}, not TPM_ST_ATTEST_QUOTE (0x8018)`);
  const qualifiedSigner = r.sized("qualifiedSigner");
  const extraData = r.sized("extraData");
  const clockInfo: ClockInfo = {
    clock: r.u64("clockInfo.clock"),
    resetCount: r.u32("clockInfo.resetCount"),
    restartCount: r.u32("clockInfo.restartCount"),
    safe: r.u8("clockInfo.safe") !== 0,
  };
  const firmwareVersion = r.u64("firmwareVersion");
  const pcrSelect = readPcrSelectionList(r);
  const pcrDigest = r.sized("pcrDigest");
  r.end();
  return { qualifiedSigner, extraData, clockInfo, firmwareVersion, pcrSelect, pcrDigest };
}

/** TPMT_SIGNATURE: RSASSA, RSAPSS (one signature) or ECDSA (r and s). */
export type Signature =
  | { readonly scheme: "rsassa" | "rsapss"; readonly hash: number; readonly sig: Buffer }
  | { readonly scheme: "ecdsa"; readonly hash: number; readonly r: Buffer; readonly s: Buffer };

/** Parses a TPMT_SIGNATURE as `tpm2_quote -s` writes it (the default `tss` format). */
export function parseSignature(data: Buffer): Signature {
  const r = new Reader(data, "TPMT_SIGNATURE");
  const alg = r.u16("sigAlg");
  const hash = r.u16("hash");
  let out: Signature;
  if (alg === Alg.RSASSA || alg === Alg.RSAPSS) {
    out = { scheme: alg === Alg.RSASSA ? "rsassa" : "rsapss", hash, sig: r.sized("signature.sig") };
  } else if (alg === Alg.ECDSA) {
    out = { scheme: "ecdsa", hash, r: r.sized("signature.signatureR"), s: r.sized("signature.signatureS") };
  } else {
    throw new TpmFormatError(`TPMT_SIGNATURE algorithm 0x${alg.toString(16)} is not RSASSA, RSAPSS or ECDSA`);
  }
  r.end();
  return out;
}

/** Marshals a TPMT_SIGNATURE (used by tests to alter a signature field by field). */
export function marshalSignature(s: Signature): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(s.scheme === "rsassa" ? Alg.RSASSA : s.scheme === "rsapss" ? Alg.RSAPSS : Alg.ECDSA, 0);
  head.writeUInt16BE(s.hash, 2);
  return s.scheme === "ecdsa" ? Buffer.concat([head, tpm2b(s.r), tpm2b(s.s)]) : Buffer.concat([head, tpm2b(s.sig)]);
}

const CURVES: Record<number, { crv: string; size: number }> = {
  0x0003: { crv: "P-256", size: 32 },
  0x0004: { crv: "P-384", size: 48 },
  0x0005: { crv: "P-521", size: 66 },
};

/** TPMT_PUBLIC of an RSA or ECC key, with what a verifier needs. */
export interface PublicArea {
  readonly type: "rsa" | "ecc";
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Buffer;
  /** TPMT_SYM_DEF_OBJECT: the inner wrapper of a storage key (an EK's AES-128-CFB); undefined when NULL. */
  readonly symmetric?: { readonly alg: number; readonly keyBits: number; readonly mode: number };
  /** The signing scheme (RSASSA, RSAPSS, ECDSA) and its hash; undefined when NULL. */
  readonly scheme?: { readonly alg: number; readonly hash: number };
  readonly rsa?: { readonly bits: number; readonly exponent: number; readonly modulus: Buffer };
  readonly ecc?: { readonly curve: number; readonly x: Buffer; readonly y: Buffer };
  /** The marshaled TPMT_PUBLIC (what the name hashes). */
  readonly bytes: Buffer;
}

/** The objectAttributes bits a verifier looks at. */
export const Attr = {
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/**
 * Parses a TPM2B_PUBLIC, as `tpm2_createak -u`, `tpm2_createek -u` and
 * `tpm2_readpublic -o` write it, or a bare TPMT_PUBLIC.
 */
export function parsePublic(data: Buffer): PublicArea {
  let body = data;
  if (data.length >= 2 && data.readUInt16BE(0) === data.length - 2) body = data.subarray(2);
  const r = new Reader(body, "TPMT_PUBLIC");
  const typeId = r.u16("type");
  if (typeId !== Alg.RSA && typeId !== Alg.ECC) throw new TpmFormatError(`TPMT_PUBLIC type 0x${typeId.toString(16)} is neither RSA nor ECC`);
  const nameAlg = r.u16("nameAlg");
  const objectAttributes = r.u32("objectAttributes");
  const authPolicy = r.sized("authPolicy");
  const symAlg = r.u16("parameters.symmetric.algorithm");
  const symmetric = symAlg === Alg.NULL ? undefined : { alg: symAlg, keyBits: r.u16("parameters.symmetric.keyBits"), mode: r.u16("parameters.symmetric.mode") };
  const schemeAlg = r.u16("parameters.scheme.scheme");
  let scheme: PublicArea["scheme"];
  if (schemeAlg !== Alg.NULL) {
    scheme = { alg: schemeAlg, hash: r.u16("parameters.scheme.hashAlg") };
    if (schemeAlg === Alg.ECDAA) r.u16("parameters.scheme.count");
  }
  let out: Omit<PublicArea, "bytes">;
  if (typeId === Alg.RSA) {
    const bits = r.u16("parameters.keyBits");
    const exponent = r.u32("parameters.exponent") || 65537;
    const modulus = r.sized("unique.rsa");
    out = { type: "rsa", nameAlg, objectAttributes, authPolicy, symmetric, scheme, rsa: { bits, exponent, modulus } };
  } else {
    const curve = r.u16("parameters.curveID");
    const kdf = r.u16("parameters.kdf.scheme");
    if (kdf !== Alg.NULL) r.u16("parameters.kdf.hashAlg");
    const x = r.sized("unique.ecc.x");
    const y = r.sized("unique.ecc.y");
    out = { type: "ecc", nameAlg, objectAttributes, authPolicy, symmetric, scheme, ecc: { curve, x, y } };
  }
  r.end();
  return { ...out, bytes: Buffer.from(body) };
}

/** The TPM name of an object: nameAlg (2 bytes) || H_nameAlg(TPMT_PUBLIC). */
export function objectName(pub: PublicArea): Buffer {
  const alg = Buffer.alloc(2);
  alg.writeUInt16BE(pub.nameAlg);
  return Buffer.concat([alg, createHash(hashAlg(pub.nameAlg, "nameAlg").name).update(pub.bytes).digest()]);
}

function b64url(b: Buffer): string {
  return b.toString("base64url");
}

/** The public key of an RSA or ECC TPMT_PUBLIC as a node:crypto key. */
export function publicKeyOf(pub: PublicArea): KeyObject {
  if (pub.type === "rsa") {
    const e = Buffer.alloc(4);
    e.writeUInt32BE(pub.rsa!.exponent);
    let i = 0;
    while (i < 3 && e[i] === 0) i++;
    return createPublicKey({ key: { kty: "RSA", n: b64url(pub.rsa!.modulus), e: b64url(e.subarray(i)) }, format: "jwk" });
  }
  const c = CURVES[pub.ecc!.curve];
  if (!c) throw new TpmFormatError(`ECC curve 0x${pub.ecc!.curve.toString(16)} is not one drove supports (NIST P-256, P-384, P-521)`);
  const pad = (b: Buffer) => (b.length >= c.size ? b : Buffer.concat([Buffer.alloc(c.size - b.length), b]));
  return createPublicKey({ key: { kty: "EC", crv: c.crv, x: b64url(pad(pub.ecc!.x)), y: b64url(pad(pub.ecc!.y)) }, format: "jwk" });
}

/** The byte size of an ECC curve's coordinates (for ECDSA r||s). */
export function curveSize(curve: number): number | undefined {
  return CURVES[curve]?.size;
}

/**
 * Why a public area cannot be an attestation key (empty when it can): an AK
 * must be a restricted signing key made inside the TPM and never leave it
 * (fixedTPM, fixedParent, sensitiveDataOrigin), as Keylime's registrar requires.
 */
export function attestationKeyProblems(pub: PublicArea): string[] {
  const out: string[] = [];
  const need: [keyof typeof Attr, string][] = [
    ["sign", "a signing key"],
    ["restricted", "restricted (it signs only what the TPM made)"],
    ["fixedTPM", "fixedTPM (it cannot leave this TPM)"],
    ["fixedParent", "fixedParent"],
    ["sensitiveDataOrigin", "sensitiveDataOrigin (made inside the TPM)"],
  ];
  for (const [bit, what] of need) if ((pub.objectAttributes & Attr[bit]) === 0) out.push(`it is not ${what}`);
  if (pub.objectAttributes & Attr.decrypt) out.push("it is a decryption key");
  return out;
}
