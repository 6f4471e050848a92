/**
 * Records real TPM data from one lab machine's swtpm into src/tpm/fixtures/,
 * for the unit tests of the quote verifier and of MakeCredential.
 *
 *   DROVE_INVENTORY=<lab>/inventory.yaml node --import tsx scripts/record-tpm-fixtures.ts [machine]
 *
 * (a lab from `drove lab up`, or the one an integration test boots; the
 * machine defaults to the first one). What it does on the machine, all with
 * tpm2-tools against the machine's own swtpm:
 *   1. reads the EK (persistent 0x81010001) and its certificate (NV 0x01c00002),
 *      with the swtpm local CA that issued it (/var/lib/swtpm-localca/issuercert.pem
 *      on this machine, where the lab's swtpm_setup keeps it), makes an RSA AK under it
 *      (tpm2_createak) and keeps it at a scratch persistent handle;
 *   2. makes a credential for that AK's name in TypeScript (src/tpm/credential.ts)
 *      and has the TPM open it (tpm2_activatecredential), recording both sides;
 *   3. quotes sha256 PCRs 0-7 and 16 for a fresh nonce; extends PCR 16
 *      (tpm2_pcrextend), quotes again for another nonce; resets PCR 16;
 *   4. makes an ECC AK (ECDSA/SHA-256) and quotes with it;
 *   5. removes both AKs (the machine's TPM is left as it was found).
 * It overwrites src/tpm/fixtures/{enrolment,quotes}.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { loadInventory } from "../src/inventory";
import { SshConnection } from "../src/ssh";
import { sh } from "../src/quote";
import { makeCredential, toolsCredentialFile } from "../src/tpm/credential";
import { objectName, parsePublic, publicKeyOf } from "../src/tpm/structures";
import { pcrValuesFromRaw } from "../src/tpm/verify";
import {
  activateCredentialCommand,
  createAkCommand,
  parseActivated,
  parseKv,
  parseQuote,
  quoteCommand,
  removeAkCommand,
  tpmFailure,
} from "../providers/attestation/facts";

const RSA_HANDLE = "0x81018d10";
const ECC_HANDLE = "0x81018d11";
const PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 16];

async function main(): Promise<void> {
  const inventory = loadInventory();
  const name = process.argv[2] ?? inventory.machines[0]?.name;
  const m = inventory.machines.find((x) => x.name === name);
  if (!m) throw new Error(`no machine ${name} in the inventory; pass one of ${inventory.machines.map((x) => x.name).join(", ")}`);
  const conn = await SshConnection.open({ host: m.address, port: m.port, user: m.user, privateKey: readFileSync(m.privateKeyPath, "utf8"), hostKey: m.hostKey });
  const run = async (what: string, cmd: Parameters<typeof conn.exec>[0], stdin?: string) => {
    const r = await conn.exec(cmd, stdin === undefined ? {} : { stdin });
    if (r.code !== 0) throw new Error(`${what} on ${m.name}: ${tpmFailure(r.code, r.stderr)}`);
    return r.stdout;
  };
  try {
    const version = (await conn.exec(sh`tpm2_quote --version`)).stdout.trim();

    // 1. EK and an RSA AK.
    const made = parseKv(await run("create the RSA AK", createAkCommand(RSA_HANDLE, "rsa")));
    const ekPublic = Buffer.from(made.get("ek")!, "base64");
    const akPublic = Buffer.from(made.get("ak")!, "base64");
    const akName = Buffer.from(made.get("name")!, "base64");
    const ekCertificate = made.get("ekcert");
    const CA = "/var/lib/swtpm-localca/issuercert.pem";
    const ekCa = existsSync(CA) ? readFileSync(CA, "utf8") : undefined;
    const computed = objectName(parsePublic(akPublic));
    if (!computed.equals(akName)) throw new Error(`the AK name the TPM reports (${akName.toString("hex")}) is not the one computed from its public area (${computed.toString("hex")})`);

    // 2. MakeCredential in TypeScript, ActivateCredential on the TPM.
    const credential = randomBytes(32);
    const cred = makeCredential(ekPublic, akName, credential);
    const file = toolsCredentialFile(cred);
    const activated = parseActivated(await run("activate the credential", activateCredentialCommand(RSA_HANDLE), file.toString("base64")));
    if (!activated.equals(credential)) throw new Error("the TPM opened the credential, but it held something else");

    // 3. Quotes: clean, then with PCR 16 extended.
    const quote = async (handle: string, label: string) => {
      const nonce = randomBytes(20);
      const q = parseQuote(await run(`quote (${label})`, quoteCommand(handle, PCRS, nonce)));
      const values = pcrValuesFromRaw(q.pcrValues, PCRS);
      return {
        label,
        nonce: nonce.toString("hex"),
        message: q.message.toString("base64"),
        signature: q.signature.toString("base64"),
        pcrs: Object.fromEntries([...values].map(([k, v]) => [k, v.toString("hex")])),
      };
    };
    const clean = await quote(RSA_HANDLE, "clean");
    const extendedWith = randomBytes(32).toString("hex");
    await run("extend PCR 16", sh`set -a; . /etc/environment; set +a; tpm2_pcrextend ${`16:sha256=${extendedWith}`}`);
    const tampered = await quote(RSA_HANDLE, "pcr16-extended");
    await run("reset PCR 16", sh`set -a; . /etc/environment; set +a; tpm2_pcrreset 16`);

    // 4. An ECC AK (ECDSA over P-256).
    const eccMade = parseKv(await run("create the ECC AK", createAkCommand(ECC_HANDLE, "ecc")));
    const eccAkPublic = Buffer.from(eccMade.get("ak")!, "base64");
    const ecc = await quote(ECC_HANDLE, "ecc");

    const dir = join(__dirname, "..", "src", "tpm", "fixtures");
    mkdirSync(dir, { recursive: true });
    const source = { machine: m.name, tpm: "swtpm (lab)", tools: version, recorded: new Date().toISOString() };
    writeFileSync(
      join(dir, "enrolment.json"),
      JSON.stringify(
        {
          source,
          ekPublic: ekPublic.toString("base64"),
          ...(ekCertificate ? { ekCertificate } : {}),
          ...(ekCa ? { ekCa } : {}),
          akPublic: akPublic.toString("base64"),
          akName: akName.toString("hex"),
          akPem: publicKeyOf(parsePublic(akPublic)).export({ type: "spki", format: "pem" }),
          credential: credential.toString("hex"),
          credentialFile: file.toString("base64"),
          activated: activated.toString("hex"),
        },
        null,
        2,
      ) + "\n",
    );
    writeFileSync(
      join(dir, "quotes.json"),
      JSON.stringify({ source, bank: "sha256", pcrList: PCRS, akPublic: akPublic.toString("base64"), eccAkPublic: eccAkPublic.toString("base64"), extendedPcr: 16, extendedWith, quotes: [clean, tampered, ecc] }, null, 2) + "\n",
    );
    console.log(`recorded from ${m.name} (${version}) into ${dir}`);
  } finally {
    for (const h of [RSA_HANDLE, ECC_HANDLE]) await conn.exec(removeAkCommand(h)).catch(() => undefined);
    conn.close();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
