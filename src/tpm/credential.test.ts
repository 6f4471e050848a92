/**
 * MakeCredential (the registrar side of enrolment), checked against a round
 * trip recorded from a lab machine's swtpm (src/tpm/fixtures/enrolment.json:
 * a credential made here, opened by tpm2_activatecredential there).
 */
import { strict as assert } from "node:assert";
import { constants, createHmac, generateKeyPairSync, privateDecrypt, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { kdfa, makeCredential, openCredential, parseToolsCredentialFile, sealWithSeed, toolsCredentialFile } from "./credential";
import { attestationKeyProblems, objectName, parsePublic, Reader } from "./structures";

const fx = JSON.parse(readFileSync(join(__dirname, "fixtures", "enrolment.json"), "utf8")) as Record<string, string>;
const ekPublic = Buffer.from(fx.ekPublic, "base64");
const akPublic = Buffer.from(fx.akPublic, "base64");
const akName = Buffer.from(fx.akName, "hex");

describe("the recorded enrolment", () => {
  it("has an RSA EK with AES-128-CFB and an AK that is a restricted signing key of that TPM", () => {
    const ek = parsePublic(ekPublic);
    assert.equal(ek.type, "rsa");
    assert.equal(ek.rsa!.bits, 2048);
    assert.deepEqual(ek.symmetric, { alg: 0x0006, keyBits: 128, mode: 0x0043 });
    const ak = parsePublic(akPublic);
    assert.deepEqual(attestationKeyProblems(ak), []);
    assert.deepEqual(attestationKeyProblems(ek), ["it is not a signing key", "it is a decryption key"]);
  });

  it("computes the AK name the TPM reported (nameAlg || SHA-256(TPMT_PUBLIC))", () => {
    assert.equal(objectName(parsePublic(akPublic)).toString("hex"), fx.akName);
  });

  it("the credential made in TypeScript was opened by the real TPM to the same bytes", () => {
    // given: what drove sent, and what tpm2_activatecredential printed
    const file = parseToolsCredentialFile(Buffer.from(fx.credentialFile, "base64"));
    // then
    assert.equal(fx.activated, fx.credential);
    assert.equal(fx.credential.length, 64);
    // the blob has the shape the TPM checks: a SHA-256 integrity HMAC and a 2+32-byte encrypted identity
    const outer = new Reader(file.credentialBlob, "TPM2B_ID_OBJECT");
    const body = new Reader(outer.sized("credential"), "TPMS_ID_OBJECT");
    assert.equal(body.sized("integrityHMAC").length, 32);
    assert.equal(body.remaining, 34);
    // and the seed is encrypted to the 2048-bit EK
    assert.equal(file.secret.readUInt16BE(0), 256);
    assert.equal(file.secret.length, 258);
  });
});

describe("makeCredential", () => {
  it("wraps a credential that opens with the seed for the AK name and not for another", () => {
    // given
    const credential = randomBytes(32);
    const seed = randomBytes(32);
    // when
    const blob = sealWithSeed(ekPublic, akName, credential, seed);
    // then
    assert.deepEqual(openCredential(ekPublic, akName, blob, seed), credential);
    const other = Buffer.from(akName);
    other[5] ^= 1;
    assert.throws(() => openCredential(ekPublic, other, blob, seed), /integrity HMAC does not match/);
    assert.throws(() => openCredential(ekPublic, akName, blob, randomBytes(32)), /integrity HMAC does not match/);
  });

  it("encrypts the seed with RSA-OAEP(SHA-256, label IDENTITY\\0) to the EK", () => {
    // given: a software 'EK' whose private key the test holds, with the recorded EK's template
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = publicKey.export({ format: "jwk" });
    const ek = parsePublic(ekPublic);
    const soft = { ...ek, rsa: { ...ek.rsa!, modulus: Buffer.from(jwk.n!, "base64url") } };
    const credential = randomBytes(16);
    // when
    const made = makeCredential(soft, akName, credential);
    // then: what TPM2_ActivateCredential does, in software
    const encSeed = made.secret.subarray(2);
    const seed = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: Buffer.from("IDENTITY\0") }, encSeed);
    assert.equal(seed.length, 32);
    assert.deepEqual(openCredential(soft, akName, made.credentialBlob, seed), credential);
    assert.throws(() => privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: Buffer.from("STORAGE\0") }, encSeed));
  });

  it("round-trips the tpm2-tools credential file (magic 0xBADCC0DE, version 1)", () => {
    const made = makeCredential(ekPublic, akName, randomBytes(32));
    const file = toolsCredentialFile(made);
    assert.equal(file.readUInt32BE(0), 0xbadcc0de);
    assert.deepEqual(parseToolsCredentialFile(file), made);
    assert.equal(file.length, Buffer.from(fx.credentialFile, "base64").length);
  });

  it("refuses an empty or oversized credential, and an ECC EK", () => {
    assert.throws(() => makeCredential(ekPublic, akName, Buffer.alloc(0)), /a credential must be 1 to 32 bytes, not 0/);
    assert.throws(() => makeCredential(ekPublic, akName, Buffer.alloc(33)), /a credential must be 1 to 32 bytes, not 33/);
    assert.throws(() => makeCredential(akPublic, akName, Buffer.alloc(8)), /not a storage key with AES-CFB/);
  });
});

describe("kdfa", () => {
  it("is counter-mode HMAC over i || label\\0 || contextU || contextV || bits", () => {
    // given: the definition written out for two blocks
    const key = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    const u = Buffer.from("0102", "hex");
    const block = (i: number) =>
      createHmac("sha256", key)
        .update(Buffer.concat([Buffer.from([0, 0, 0, i]), Buffer.from("STORAGE\0"), u, Buffer.from([0, 0, 1, 0x80])]))
        .digest();
    // then
    assert.deepEqual(kdfa("sha256", key, "STORAGE", u, Buffer.alloc(0), 384), Buffer.concat([block(1), block(2)]).subarray(0, 48));
    assert.equal(kdfa("sha256", key, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), 128).length, 16);
  });
});
