import { strict as assert } from "node:assert";
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { describe, it } from "node:test";
import { certificateInfo, createCa, daysLeft, isIssuedBy, issueCertificate, keyMatches, validateCertificateOptions } from "./tls";

describe("createCa", () => {
  it("makes a self-signed CA certificate whose key signs", async () => {
    // given / when
    const ca = await createCa({ commonName: "drove registry CA", validityDays: 30 });
    // then
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.subject, "CN=drove registry CA");
    assert.ok(cert.checkIssued(cert), "self-issued");
    assert.ok(cert.verify(cert.publicKey), "self-signed");
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.match(ca.keyPem, new RegExp(`^-----BEGIN ${"PRIVATE"} KEY-----\n`));
    assert.ok(cert.checkPrivateKey(createPrivateKey(ca.keyPem)));
    const days = (new Date(cert.validTo).getTime() - Date.now()) / 86400000;
    assert.ok(days > 29.9 && days <= 30.01, `30 days of validity, got ${days}`);
    assert.equal(certificateInfo(ca.certPem).isCa, true);
  });

  it("makes a new key every time", async () => {
    const a = await createCa({ commonName: "x" });
    const b = await createCa({ commonName: "x" });
    assert.notEqual(a.keyPem, b.keyPem);
    assert.notEqual(certificateInfo(a.certPem).fingerprint, certificateInfo(b.certPem).fingerprint);
  });

  it("refuses a bad common name or validity, saying what to change", async () => {
    await assert.rejects(createCa({ commonName: "" }), /`commonName` must be 1 to 64 printable characters/);
    await assert.rejects(createCa({ commonName: "ok", validityDays: 0 }), /`validityDays` must be a whole number between 1 and 36500, but 0 was provided/);
  });
});

describe("issueCertificate", () => {
  it("issues a server certificate that chains to the CA, with its SANs and usages", async () => {
    // given
    const ca = await createCa({ commonName: "drove CA" });
    // when
    const leaf = await issueCertificate({ ca, commonName: "m1", dnsNames: ["m1", "registry.lab"], ipAddresses: ["10.213.35.11", "fd00::1"], usages: ["server"], validityDays: 90 });
    // then
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(cert.ca, false);
    assert.equal(cert.subjectAltName, "DNS:m1, DNS:registry.lab, IP Address:10.213.35.11, IP Address:FD00:0:0:0:0:0:0:1");
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
    assert.ok(cert.checkHost("registry.lab"));
    assert.ok(cert.checkIP("10.213.35.11"));
    assert.equal(cert.checkHost("other.lab"), undefined);
    assert.ok(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)));
    const info = certificateInfo(leaf.certPem);
    assert.deepEqual(info.usages, ["server"]);
    assert.equal(info.commonName, "m1");
    assert.equal(info.authorityKeyId, certificateInfo(ca.certPem).subjectKeyId);
    assert.ok(Math.abs(daysLeft(leaf.certPem) - 90) < 0.01);
  });

  it("issues a client-and-server certificate (etcd peers)", async () => {
    const ca = await createCa({ commonName: "etcd CA" });
    const leaf = await issueCertificate({ ca, commonName: "etcd-1", ipAddresses: ["127.0.0.1"], usages: ["server", "client"] });
    assert.deepEqual(new X509Certificate(leaf.certPem).keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    assert.deepEqual(certificateInfo(leaf.certPem).usages, ["server", "client"]);
  });

  it("gives a key that signs what the certificate's public key verifies", async () => {
    const ca = await createCa({ commonName: "CA" });
    const leaf = await issueCertificate({ ca, commonName: "c", usages: ["client"] });
    const sig = sign("sha256", Buffer.from("hello"), createPrivateKey(leaf.keyPem));
    assert.ok(verify("sha256", Buffer.from("hello"), createPublicKey(leaf.certPem), sig));
    assert.ok(keyMatches(leaf.certPem, leaf.keyPem));
    assert.equal(keyMatches(leaf.certPem, ca.keyPem), false);
  });

  it("is not issued by another CA", async () => {
    const a = await createCa({ commonName: "same name" });
    const b = await createCa({ commonName: "same name" });
    const leaf = await issueCertificate({ ca: a, commonName: "x", usages: ["server"] });
    assert.equal(isIssuedBy(leaf.certPem, a.certPem), true);
    assert.equal(isIssuedBy(leaf.certPem, b.certPem), false, "same subject, other key: the signature does not verify");
  });

  it("refuses bad SANs and usages before signing anything", async () => {
    const ca = await createCa({ commonName: "CA" });
    await assert.rejects(issueCertificate({ ca, commonName: "x", ipAddresses: ["10.0.0.300"], usages: ["server"] }), /`ipAddresses` entry "10.0.0.300" is not an IPv4 or IPv6 address/);
    await assert.rejects(issueCertificate({ ca, commonName: "x", dnsNames: ["bad name"], usages: ["server"] }), /`dnsNames` entry "bad name" is not a DNS name/);
    await assert.rejects(issueCertificate({ ca, commonName: "x", usages: [] }), /`usages` must list at least one/);
    await assert.rejects(issueCertificate({ ca, commonName: "x", usages: ["peer" as "server"] }), /`usages` entry "peer" must be "server" or "client"/);
  });
});

describe("validateCertificateOptions", () => {
  it("accepts good options and wildcard DNS names", () => {
    assert.deepEqual(validateCertificateOptions({ commonName: "a", dnsNames: ["*.lab", "m1"], ipAddresses: ["::1"], usages: ["server"], validityDays: 1 }), []);
  });
});
