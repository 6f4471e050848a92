/**
 * The registrar side of enrolment (TPM 2.0 Library Part 1, 24 "Credential
 * Protection"; Part 3, TPM2_MakeCredential): a credential only the TPM that
 * holds the EK can open, and only for a key whose name is the AK's. The
 * machine proves it with `tpm2_activatecredential`, so an AK that answers is
 * an AK of that TPM (as Keylime's registrar checks).
 */
import { createCipheriv, createDecipheriv, createHmac, constants, publicEncrypt, randomBytes, timingSafeEqual } from "node:crypto";
import { Alg, hashAlg, parsePublic, publicKeyOf, Reader, tpm2b, TpmFormatError, type PublicArea } from "./structures";

/**
 * KDFa (Part 1, 11.4.10.2): counter-mode HMAC with `label` (a NUL is added),
 * `contextU` and `contextV`, to `bits` bits.
 */
export function kdfa(hash: string, key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const bytes = Math.ceil(bits / 8);
  const out: Buffer[] = [];
  const L = Buffer.from(label.endsWith("\0") ? label : `${label}\0`, "latin1");
  const size = Buffer.alloc(4);
  size.writeUInt32BE(bits);
  let have = 0;
  for (let i = 1; have < bytes; i++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    const block = createHmac(hash, key).update(Buffer.concat([counter, L, contextU, contextV, size])).digest();
    out.push(block);
    have += block.length;
  }
  const all = Buffer.concat(out).subarray(0, bytes);
  // A bit count that is not a whole number of bytes keeps only the low bits of the first byte.
  if (bits % 8 !== 0) all[0] &= (1 << bits % 8) - 1;
  return all;
}

export interface MadeCredential {
  /** TPM2B_ID_OBJECT: integrity HMAC and encrypted credential. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET: the seed, encrypted to the EK. */
  readonly secret: Buffer;
}

function ekParams(ek: PublicArea): { hash: string; digestSize: number; symBits: number } {
  if (ek.type !== "rsa") throw new TpmFormatError("drove makes credentials for RSA endorsement keys only; this EK is ECC. Either use the TPM's RSA EK (tpm2_createek -G rsa), or enrol with Keylime's ECC path");
  const h = hashAlg(ek.nameAlg, "EK nameAlg");
  if (!ek.symmetric || ek.symmetric.alg !== Alg.AES || ek.symmetric.mode !== Alg.CFB) {
    throw new TpmFormatError("the EK is not a storage key with AES-CFB as its symmetric algorithm, as the TCG EK templates are: it cannot receive a credential");
  }
  return { hash: h.name, digestSize: h.size, symBits: ek.symmetric.keyBits };
}

/** Wraps `credential` (at most the EK nameAlg's digest size) and a seed (encrypted to the EK) into a credential blob. */
function seal(ek: PublicArea, akName: Buffer, credential: Buffer, seed: Buffer): Buffer {
  const { hash, digestSize, symBits } = ekParams(ek);
  if (credential.length === 0 || credential.length > digestSize) throw new TpmFormatError(`a credential must be 1 to ${digestSize} bytes, not ${credential.length}`);
  const symKey = kdfa(hash, seed, "STORAGE", akName, Buffer.alloc(0), symBits);
  const cipher = createCipheriv(`aes-${symBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(tpm2b(credential)), cipher.final()]);
  const hmacKey = kdfa(hash, seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), digestSize * 8);
  const outerHmac = createHmac(hash, hmacKey).update(Buffer.concat([encIdentity, akName])).digest();
  return tpm2b(Buffer.concat([tpm2b(outerHmac), encIdentity]));
}

/**
 * TPM2_MakeCredential in software: `credential` can be recovered only by
 * `tpm2_activatecredential` on the TPM whose EK is `ekPublic`, for the loaded
 * object named `akName`.
 */
export function makeCredential(ekPublic: Buffer | PublicArea, akName: Buffer, credential: Buffer): MadeCredential {
  const ek = Buffer.isBuffer(ekPublic) ? parsePublic(ekPublic) : ekPublic;
  const { hash, digestSize } = ekParams(ek);
  const seed = randomBytes(digestSize);
  const encrypted = publicEncrypt({ key: publicKeyOf(ek), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, oaepLabel: Buffer.from("IDENTITY\0", "latin1") }, seed);
  return { credentialBlob: seal(ek, akName, credential, seed), secret: tpm2b(encrypted) };
}

/**
 * The software half of TPM2_ActivateCredential once the seed is known: checks
 * the integrity HMAC for `akName` and decrypts the credential. (The TPM gets
 * the seed by decrypting `secret` with the EK; tests pass it in.)
 * @internal
 */
export function openCredential(ekPublic: Buffer | PublicArea, akName: Buffer, credentialBlob: Buffer, seed: Buffer): Buffer {
  const ek = Buffer.isBuffer(ekPublic) ? parsePublic(ekPublic) : ekPublic;
  const { hash, digestSize, symBits } = ekParams(ek);
  const outer = new Reader(credentialBlob, "TPM2B_ID_OBJECT");
  const body = new Reader(outer.sized("credential"), "TPMS_ID_OBJECT");
  outer.end();
  const integrity = body.sized("integrityHMAC");
  const encIdentity = body.bytes(body.remaining, "encIdentity");
  const hmacKey = kdfa(hash, seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), digestSize * 8);
  const want = createHmac(hash, hmacKey).update(Buffer.concat([encIdentity, akName])).digest();
  if (want.length !== integrity.length || !timingSafeEqual(want, integrity)) throw new TpmFormatError("the credential's integrity HMAC does not match: wrong seed, or made for another AK name");
  const symKey = kdfa(hash, seed, "STORAGE", akName, Buffer.alloc(0), symBits);
  const d = createDecipheriv(`aes-${symBits}-cfb`, symKey, Buffer.alloc(16));
  const plain = new Reader(Buffer.concat([d.update(encIdentity), d.final()]), "TPM2B_DIGEST credential");
  const cred = plain.sized("credential");
  plain.end();
  return cred;
}

/** For tests: the same as makeCredential with a given seed and its OAEP-encrypted form. @internal */
export function sealWithSeed(ekPublic: Buffer | PublicArea, akName: Buffer, credential: Buffer, seed: Buffer): Buffer {
  return seal(Buffer.isBuffer(ekPublic) ? parsePublic(ekPublic) : ekPublic, akName, credential, seed);
}

const CRED_MAGIC = 0xbadcc0de;

/** The file `tpm2_makecredential -o` writes and `tpm2_activatecredential -i` reads: magic, version 1, blob, secret. */
export function toolsCredentialFile(made: MadeCredential): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(CRED_MAGIC, 0);
  head.writeUInt32BE(1, 4);
  return Buffer.concat([head, made.credentialBlob, made.secret]);
}

/** Reads a `tpm2_makecredential -o` file back. */
export function parseToolsCredentialFile(file: Buffer): MadeCredential {
  const r = new Reader(file, "tpm2-tools credential file");
  const magic = r.u32("magic");
  if (magic !== CRED_MAGIC) throw new TpmFormatError(`a tpm2-tools credential file starts with 0xbadcc0de, not 0x${magic.toString(16)}`);
  const version = r.u32("version");
  if (version !== 1) throw new TpmFormatError(`tpm2-tools credential file version ${version} is not 1`);
  const credentialBlob = tpm2b(r.sized("credentialBlob"));
  const secret = tpm2b(r.sized("secret"));
  r.end();
  return { credentialBlob, secret };
}
