import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { UNKNOWN } from "../common";
import { caKind, certificateKind, type CertificateInputs } from "./provider";
import { renewalReason, renewalWindowDays } from "./operations";

async function world() {
  const ca = await caKind.create(caKind.check({ commonName: "test CA" }).inputs);
  const inputs = certificateKind.check({ caCertPem: ca.outs.certPem, caKeyPem: ca.outs.keyPem, commonName: "m1", dnsNames: ["m1"], ipAddresses: ["10.213.35.11"], usages: ["server"] });
  assert.deepEqual(inputs.failures, []);
  const cert = await certificateKind.create(inputs.inputs);
  return { ca, inputs: inputs.inputs, cert };
}

describe("CertificateAuthority kind", () => {
  it("makes a CA with its key secret and a 0-change diff against the same inputs", async () => {
    // given
    const { inputs, failures } = caKind.check({ commonName: "test CA" });
    // when
    const { id, outs } = await caKind.create(inputs);
    // then
    assert.deepEqual(failures, []);
    assert.deepEqual(caKind.secretPaths, ["keyPem"]);
    assert.equal(id, outs.fingerprint);
    assert.equal(new X509Certificate(outs.certPem).ca, true);
    assert.equal(outs.validityDays, 3650);
    assert.deepEqual(caKind.diff(outs, inputs), { changes: false, replaces: [] });
    const read = await caKind.read(id, outs);
    assert.deepEqual(read?.inputs, inputs);
  });

  it("replaces on a new common name, changes validity in place", async () => {
    const { outs } = await caKind.create(caKind.check({ commonName: "a" }).inputs);
    assert.deepEqual(caKind.diff(outs, caKind.check({ commonName: "b" }).inputs).replaces, ["commonName"]);
    const d = caKind.diff(outs, caKind.check({ commonName: "a", validityDays: 10 }).inputs);
    assert.deepEqual(d, { changes: true, replaces: [] });
  });

  it("refuses a bad validity in check", () => {
    assert.deepEqual(caKind.check({ validityDays: -1 }).failures.map((f) => f.property), ["validityDays"]);
  });
});

describe("Certificate kind", () => {
  it("issues a certificate from the CA in its inputs; keys are secret paths; the same inputs diff to nothing", async () => {
    const { ca, inputs, cert } = await world();
    assert.deepEqual(certificateKind.secretPaths, ["keyPem", "caKeyPem"]);
    assert.ok(new X509Certificate(cert.outs.certPem).checkIssued(new X509Certificate(ca.outs.certPem)));
    assert.deepEqual(certificateKind.diff(cert.outs, inputs), { changes: false, replaces: [] });
    const read = await certificateKind.read(cert.id, cert.outs);
    assert.deepEqual(read?.inputs, inputs);
  });

  for (const [change, prop] of [
    [{ commonName: "m2" }, "commonName"],
    [{ dnsNames: ["m1", "registry"] }, "dnsNames"],
    [{ ipAddresses: ["10.213.35.12"] }, "ipAddresses"],
    [{ usages: ["server", "client"] }, "usages"],
    [{ caCertPem: UNKNOWN }, "caCertPem"],
  ] as const) {
    it(`is replaced when ${prop} changes`, async () => {
      const { inputs, cert } = await world();
      const news = { ...inputs, ...change } as CertificateInputs;
      assert.deepEqual(certificateKind.diff(cert.outs, news), { changes: true, replaces: [prop] });
    });
  }

  it("keeps IPv6 addresses in the spelling the certificate reads back with", async () => {
    const { ca } = await world();
    const { inputs } = certificateKind.check({ caCertPem: ca.outs.certPem, caKeyPem: ca.outs.keyPem, commonName: "x", ipAddresses: ["FD00:0::1"], usages: ["server"] });
    const cert = await certificateKind.create(inputs);
    assert.deepEqual(inputs.ipAddresses, ["fd00::1"]);
    assert.deepEqual((await certificateKind.read(cert.id, cert.outs))?.inputs.ipAddresses, ["fd00::1"]);
  });

  it("is replaced when it nears its expiry", async () => {
    const { ca } = await world();
    const { inputs } = certificateKind.check({ caCertPem: ca.outs.certPem, caKeyPem: ca.outs.keyPem, commonName: "x", usages: ["client"], validityDays: 29 });
    const cert = await certificateKind.create(inputs);
    // 29 days: within a third (9.7 days) is renewal time, so not yet
    assert.deepEqual(certificateKind.diff(cert.outs, inputs).replaces, []);
    assert.match(renewalReason(cert.outs.certPem, 29, new Date(Date.now() + 25 * 86400000)) ?? "", /^it expires on .*, within 9.7 days$/);
    assert.match(renewalReason(cert.outs.certPem, 29, new Date(Date.now() + 30 * 86400000)) ?? "", /^it expired on /);
  });

  it("refuses bad inputs in check, leaving unknown values for later", async () => {
    const { failures } = certificateKind.check({ caCertPem: "nope", caKeyPem: UNKNOWN, commonName: "x", ipAddresses: [UNKNOWN, "1.2.3"], usages: ["peer"] });
    assert.deepEqual(failures.map((f) => f.property), ["ipAddresses", "usages", "caCertPem"]);
  });
});

describe("renewalWindowDays", () => {
  it("is 30 days, or a third of a shorter validity", () => {
    assert.equal(renewalWindowDays(825), 30);
    assert.equal(renewalWindowDays(90), 30);
    assert.equal(renewalWindowDays(30), 10);
  });
});
