/**
 * Fail closed: a service on three attested machines (each with its own
 * swtpm); a PCR extended on one of them, and the next `pulumi up` refuses it
 * naming the PCR, moves its replica to the others, and leaves no secret on it.
 * Through the real pulumi CLI.
 */
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, eventually, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";
import { serviceChecks } from "./service-checks";
import { pushWebImage } from "./fixtures";
import { vipFor } from "../providers/service/operations";

const MACHINES = ["m1", "m2", "m3"];
const VIP = vipFor("lab", "web");
const SECRET = `attested-secret-${randomBytes(8).toString("hex")}`;
const TPM = sh`set -a; . /etc/environment; set +a;`;
let lab: TestLab;
let project: TestProject;

const checks = serviceChecks(() => lab, { machines: MACHINES, vip: VIP, service: "lab/web" });
const replicas = async (machine: string) => (await checks.replicasPerMachine([machine]))[0];

/** Every file on the machine that holds the service's secret (in drove's secret folders, and any container's). */
async function secretFiles(machine: string): Promise<string> {
  const r = await lab.ssh(machine, sh`grep -rl ${SECRET} /run/drove /var/lib/docker/containers 2>/dev/null; true`);
  return r.stdout.trim();
}

const viaVip = (machine: string) => eventually(() => checks.viaVip(machine), "hello\n", 100);

describe("Attested hosts run a service; a tampered one is refused and its workload moves", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droveas", 57, 3);
    const image = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello\n");
    project = await TestProject.create("services.ts");
    expectOk(await project.config({ image: image.digestRef, replicas: "3", attest: "true" }), "config");
    expectOk(await project.config({ greeting: SECRET }, true), "config --secret");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("three attested machines each run a replica with its secret", async () => {
    expectOk(await project.pulumi(["up", "--yes"]), "up");
    for (const m of MACHINES) {
      assert.equal(await replicas(m), 1, m);
      assert.notEqual(await secretFiles(m), "", `the secret reached ${m}`);
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("PCR 7 extended on m2: the preview names it and where its replica goes; up refuses it, the replica runs elsewhere, no secret is left on it", async () => {
    // given: m2's boot measurements change behind drove's back
    const ext = await lab.ssh("m2", sh`${TPM} tpm2_pcrextend ${`7:sha256=${randomBytes(32).toString("hex")}`}`);
    assert.equal(ext.code, 0, ext.stderr);
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then the preview says which host is refused, why, and where its replica goes
    expectOk(preview, "preview");
    expectMatch(preview.output, /m2 \([0-9.]+\) is not admitted and takes no replica: PCR 7 \(sha256\) expected [0-9a-f]{64}/);
    expectMatch(preview.output, /m2: unavailable, its 1 replica moves to m[13]/);
    // and up fails for m2 alone, naming the PCR
    assert.notEqual(up.code, 0, up.output);
    expectMatch(up.output, /Unable to admit m2 \([0-9.]+:22\): attestation failed: PCR 7 \(sha256\) expected [0-9a-f]{64}, found [0-9a-f]{64}\. Nothing was scheduled on it and no secret was sent to it/);
    assert.doesNotMatch(up.output, /Unable to admit m[13]/);
    // and its workload runs on m1 and m3, answering through the VIP there
    assert.equal(await replicas("m2"), 0);
    assert.equal((await replicas("m1")) + (await replicas("m3")), 3);
    for (const m of ["m1", "m3"]) assert.equal(await viaVip(m), "hello\n", `${m} through the VIP`);
    // and no secret is left on m2 (checked on the machine)
    assert.equal(await secretFiles("m2"), "", "a secret is still on the refused machine");
    // and the next run says the same again: the refusal holds until the machine passes
    const again = await project.pulumi(["up", "--yes"]);
    assert.notEqual(again.code, 0);
    expectMatch(again.output, /Unable to admit m2 .*PCR 7/);
    assert.equal(await replicas("m2"), 0);
  });
});
