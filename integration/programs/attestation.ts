/**
 * Integration program: every lab machine attested by its own swtpm.
 *   golden     JSON of expected PCR values (hex by index) for every host; default: trust on first use
 *   pcrs       comma-separated PCR indices (default: the Attestation default, 0-7)
 *   maxAge     maxAgeSeconds (default: the Attestation default)
 *   ekCa       path of a PEM file with the CA that must have issued each TPM's EK certificate
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { App, Attestation, Host, loadInventory } from "../../src";

const config = new pulumi.Config();
const golden = config.get("golden");
const pcrs = config.get("pcrs")?.split(",").map(Number);
const maxAge = config.getNumber("maxAge");
const ekCa = config.get("ekCa");
const app = new App();
const attestations: Attestation[] = [];
for (const m of loadInventory().machines) {
  const host = Host.fromInventory(app, m);
  attestations.push(
    new Attestation(host, "attestation", {
      ...(pcrs ? { pcrs } : {}),
      ...(golden ? { golden: JSON.parse(golden) } : { trustOnFirstUse: true }),
      ...(maxAge !== undefined ? { maxAgeSeconds: maxAge } : {}),
      ...(ekCa ? { ekCa: readFileSync(ekCa, "utf8") } : {}),
    }),
  );
}
app.synth();

export const admitted = Object.fromEntries(attestations.map((a) => [a.host.node.id, a.admitted]));
