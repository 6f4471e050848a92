/**
 * TPM attestation through the real `pulumi` CLI, on lab machines that each
 * have their own swtpm: enrolment (EK -> AK with MakeCredential made in
 * TypeScript, ActivateCredential on the TPM), a fresh quote on every
 * preview/up, a PCR extended on one machine refused with the PCR named
 * (expected and found), no change when nothing changed, destroy leaves no AK.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCa } from "../src/tls";
import { bootTestLab, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";
import { makeCredential, toolsCredentialFile } from "../src/tpm/credential";
import { objectName, parsePublic } from "../src/tpm/structures";
import { activateCredentialCommand, createAkCommand, parseActivated, parseKv, removeAkCommand } from "../providers/attestation/facts";

let lab: TestLab;
let project: TestProject;
const MACHINES = ["m1", "m2", "m3"];
const AK = "0x81018d00";
const TPM = sh`set -a; . /etc/environment; set +a;`;
/** The CA that swtpm_setup (run by the lab on this machine) issues EK certificates with. */
const SWTPM_CA = "/var/lib/swtpm-localca/issuercert.pem";

async function akOn(machine: string): Promise<string> {
  const r = await lab.ssh(machine, sh`${TPM} tpm2_readpublic -c ${AK} 2>/dev/null | sed -n 's/^name: //p'; tpm2_flushcontext -t >/dev/null 2>&1; true`);
  return r.stdout.trim();
}

async function pcr(machine: string, index: number): Promise<string> {
  const r = await lab.ssh(machine, sh`${TPM} tpm2_pcrread ${`sha256:${index}`} | sed -n 's/^ *[0-9]* *: 0x//p'`);
  return r.stdout.trim().toLowerCase();
}

interface AttestationState {
  admitted: boolean;
  refusal?: { code: string; reason: string; mismatches?: { pcr: number; expected: string; found: string }[] };
  akName: string;
  akPublic: string;
  urn: string;
}
function attestationStates(): Map<string, AttestationState> {
  const state = JSON.parse(project.stateText()) as { checkpoint: { latest: { resources?: { type: string; urn: string; outputs: Record<string, unknown> }[] } } };
  const out = new Map<string, AttestationState>();
  for (const r of state.checkpoint.latest.resources ?? []) {
    if (r.type !== "drove:index:Attestation") continue;
    out.set(String(r.outputs.host), { ...(r.outputs as unknown as AttestationState), urn: r.urn });
  }
  return out;
}

describe("Attestation on lab machines with swtpm, through the real pulumi CLI", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droveat", 50, 3);
    project = await TestProject.create("attestation.ts");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("a credential made in TypeScript (MakeCredential) is opened by the machine's real TPM, and only for the AK it names", async () => {
    // given: a scratch AK under m3's EK
    const handle = "0x81018d20";
    const made = await lab.ssh("m3", createAkCommand(handle, "rsa"));
    assert.equal(made.code, 0, made.stderr);
    const kv = parseKv(made.stdout);
    const ekPublic = Buffer.from(kv.get("ek")!, "base64");
    const akName = Buffer.from(kv.get("name")!, "base64");
    assert.deepEqual(objectName(parsePublic(Buffer.from(kv.get("ak")!, "base64"))), akName);
    try {
      // when: drove makes the credential, the TPM activates it
      const credential = randomBytes(32);
      const file = toolsCredentialFile(makeCredential(ekPublic, akName, credential));
      const activated = await activate("m3", handle, file);
      // then
      assert.equal(activated.code, 0, activated.stderr);
      assert.deepEqual(parseActivated(activated.stdout), credential);
      // and a credential bound to another name is refused by the TPM
      const other = Buffer.from(akName);
      other[other.length - 1] ^= 1;
      const refused = await activate("m3", handle, toolsCredentialFile(makeCredential(ekPublic, other, credential)));
      assert.notEqual(refused.code, 0, "the TPM opened a credential made for another AK name");
      assert.match(refused.stderr, /activatecredential|integrity|0x/i);
    } finally {
      await lab.ssh("m3", removeAkCommand(handle));
    }
  });

  test("an EK certificate from another CA is refused at enrolment, and nothing is left in the TPMs", async () => {
    // given: a CA that did not issue the lab's EK certificates
    const other = await createCa({ commonName: "not the TPM maker" });
    const path = join(project.dir, "other-ca.pem");
    writeFileSync(path, other.certPem);
    expectOk(await project.config({ ekCa: path }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0, "up enrolled a TPM whose EK certificate comes from another CA");
    expectMatch(up.output, /Unable to enrol the TPM on root@10\.213\.50\.1[123]: its endorsement key cannot be trusted: its EK certificate was issued by CN=swtpm-localca, which is none of the CAs in `ekCa`/);
    for (const m of MACHINES) assert.equal(await akOn(m), "", `${m} kept an AK`);
  });

  test("up enrols and attests the three machines (EK certificates checked against swtpm's local CA), and a second preview shows no changes", async () => {
    // given: the CA swtpm_setup issued the lab's EK certificates with
    expectOk(await project.config({ ekCa: SWTPM_CA }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "pulumi up");
    assert.match(up.stdout, /\+ \d+ created/);
    const states = attestationStates();
    assert.deepEqual([...states.keys()].sort(), MACHINES);
    for (const m of MACHINES) {
      const s = states.get(m)!;
      assert.equal(s.admitted, true, `${m} admitted`);
      assert.equal(s.refusal, undefined);
      assert.match((s as unknown as { ekCertificate: string }).ekCertificate, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, `${m}: the EK certificate was checked`);
      // the AK the state holds is the one kept in the machine's TPM
      assert.equal(await akOn(m), s.akName, `${m}: the AK in the TPM is the enrolled one`);
    }
    assert.equal(new Set([...states.values()].map((s) => s.akName)).size, 3, "each TPM has its own AK");
    // no secret in plain state: the SSH key is encrypted, and no private TPM material is kept
    const text = project.stateText();
    assert.doesNotMatch(text, /PRIVATE KEY/);
    assert.doesNotMatch(text, /"(credential|seed|akPrivate|ak\.priv)"/);
    const again = await project.pulumi(["preview", "--expect-no-changes"]);
    expectOk(again, "the second preview");
    assert.match(again.stdout, /\d+ unchanged/);
    assert.doesNotMatch(again.stdout, /[~+-] \d+ (updated|created|deleted|replaced)/);
  });

  test("a PCR extended on one machine: the next preview and up refuse it, naming the PCR with expected and found; a refresh records it refused, the others admitted; a run without refresh quotes in its plan", async () => {
    // given: PCR 7 on m2 extended by hand
    const expected = await pcr("m2", 7);
    assert.match(expected, /^[0-9a-f]{64}$/);
    const digest = randomBytes(32);
    const found = createHash("sha256").update(Buffer.concat([Buffer.from(expected, "hex"), digest])).digest("hex");
    const ext = await lab.ssh("m2", sh`${TPM} tpm2_pcrextend ${`7:sha256=${digest.toString("hex")}`}`);
    assert.equal(ext.code, 0, ext.stderr);
    assert.equal(await pcr("m2", 7), found);
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    // then the preview plans m2's refusal, naming the PCR with expected and found (and plans nothing for m1, m3)
    expectOk(preview, "preview");
    // (each mismatch in full: the preview cuts long strings like the reason short)
    expectMatch(preview.output, new RegExp(`expected: "${expected}"[\\s+~-]+found\\s*: "${found}"[\\s+~-]+pcr\\s*: 7`));
    assert.equal((preview.output.match(/notAdmitted/g) ?? []).length > 0, true, preview.output);
    // and up refuses it, recording the refusal, while m1 and m3 pass a fresh quote
    const up = await project.pulumi(["up", "--yes"]);
    assert.notEqual(up.code, 0, "up admitted a tampered machine");
    expectMatch(up.output, new RegExp(`Unable to admit m2 \\(10\\.213\\.50\\.12:22\\): attestation failed: PCR 7 \\(sha256\\) expected ${expected}, found ${found}`));
    assert.doesNotMatch(up.output, /Unable to admit m[13]/);
    // and a refresh records the verdict in the state: m2 refused with the PCR, m1 and m3 admitted
    expectOk(await project.pulumi(["refresh", "--yes"]), "refresh");
    const states = attestationStates();
    assert.equal(states.get("m2")!.admitted, false);
    assert.deepEqual(states.get("m2")!.refusal?.mismatches, [{ pcr: 7, expected, found }]);
    assert.equal(states.get("m1")!.admitted, true);
    assert.equal(states.get("m3")!.admitted, true);
    // and a run without a refresh quotes in its plan: m3, tampered after that refresh (its state still says admitted), is refused too
    const m3Before = await pcr("m3", 7);
    const ext3 = await lab.ssh("m3", sh`${TPM} tpm2_pcrextend ${`7:sha256=${digest.toString("hex")}`}`);
    assert.equal(ext3.code, 0, ext3.stderr);
    const m3Found = createHash("sha256").update(Buffer.concat([Buffer.from(m3Before, "hex"), digest])).digest("hex");
    // (targeted at m3, so that m2's own refusal does not show too)
    const noRefresh = await project.pulumi(["preview", "--diff", "--refresh=false", "--target", states.get("m3")!.urn]);
    expectOk(noRefresh, "the preview without refresh");
    assert.doesNotMatch(noRefresh.output, /refreshing/);
    expectMatch(noRefresh.output, new RegExp(`expected: "${m3Before}"[\\s+~-]+found\\s*: "${m3Found}"[\\s+~-]+pcr\\s*: 7`));
  });

  test("destroy removes the attestation key from every TPM", async () => {
    const destroy = await project.pulumi(["destroy", "--yes"]);
    expectOk(destroy, "destroy");
    for (const m of MACHINES) assert.equal(await akOn(m), "", `${m} still has an AK at ${AK}`);
  });
});

function activate(machine: string, handle: string, file: Buffer) {
  return lab.ssh(machine, sh`printf %s ${file.toString("base64")} | { ${activateCredentialCommand(handle)}\n}`);
}
