/**
 * The first resource end to end, through the real `pulumi` CLI, on lab machines:
 * create; no changes; drift shown and repaired; update in place; replacement;
 * destroy leaves nothing. And the refusals: a wrong host key, an unreachable host.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { bootTestLab, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";

let lab: TestLab;
let project: TestProject;
const PATH = "/etc/drove-it.conf";
const PATH2 = "/srv/drove-it/moved.conf";

async function onMachine(name: string, path: string): Promise<string> {
  const r = await lab.ssh(name, sh`if [ -f ${path} ]; then stat -c '%a %U' ${path}; cat ${path}; else echo ABSENT; fi`);
  return r.stdout;
}


describe("File on lab machines, through the real pulumi CLI", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droveif", 21, 3);
    project = await TestProject.create("files.ts");
    expectOk(await project.config({ path: PATH, content: "hello\n", mode: "0640" }), "config");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up creates the file on every machine, and a second preview shows no changes", async () => {
    // given a program with one file per machine
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "pulumi up");
    assert.match(up.stdout, /\+ 7 created/);
    for (const m of ["m1", "m2", "m3"]) assert.equal(await onMachine(m, PATH), "640 root\nhello\n");
    // and gathering facts started nothing: probes never run a daemon
    const daemons = await lab.ssh("m1", sh`pgrep -a -x 'etcd|containerd|dockerd|podman' || true`);
    assert.equal(daemons.stdout, "", "a probe started a daemon");
    // and the tools' versions, read from the packages that installed them, are what the tools say
    const host = JSON.parse(project.stateText()).checkpoint.latest.resources.find((r: { urn: string }) => r.urn.endsWith("drove:index:Host::m1"));
    const said = await lab.ssh("m1", sh`for t in docker containerd runc podman etcd tpm2_quote systemctl; do echo "$t=$($t --version 2>/dev/null | head -n1 | grep -m1 -oE '[0-9]+[.][0-9]+([.][0-9]+)?')"; done`);
    const versions = Object.fromEntries(said.stdout.trim().split("\n").map((l) => l.split("=")));
    assert.deepEqual(Object.fromEntries(Object.keys(versions).map((t) => [t, host.outputs.facts.tools[t]])), versions);
    const again = await project.pulumi(["preview", "--expect-no-changes"]);
    expectOk(again, "the second preview");
    assert.match(again.stdout, /7 unchanged/);
  });

  test("a hand edit shows as drift in preview --refresh, per property, and up repairs it", async () => {
    // given a file changed by hand on m2
    await lab.ssh("m2", sh`printf 'tampered\n' >> ${PATH} && chmod 0666 ${PATH}`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    // then the drift is shown property by property
    expectOk(preview, "preview --refresh");
    assert.match(preview.stdout, /m2\/file/);
    assert.match(preview.stdout, /\+ tampered/);
    assert.match(preview.stdout, /mode\s*: "0666" => "0640"|mode\s*: "0640" => "0666"/);
    assert.notEqual((await project.pulumi(["preview", "--expect-no-changes"])).code, 0, "drift must count as a change");
    // and up repairs it, touching m2 only
    const up = await project.pulumi(["up", "--yes"]);
    expectOk(up, "the repairing up");
    assert.match(up.stdout, /~ 1 updated/);
    assert.equal(await onMachine("m2", PATH), "640 root\nhello\n");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("changing content and mode updates in place, shown as a property diff", async () => {
    // given
    expectOk(await project.config({ content: "hello again\n", mode: "0600" }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:File: \(update\)/);
    assert.doesNotMatch(preview.stdout, /replace/);
    assert.match(preview.stdout, /\+ hello again/);
    expectOk(up, "up");
    assert.match(up.stdout, /~ 3 updated/);
    for (const m of ["m1", "m2", "m3"]) assert.equal(await onMachine(m, PATH), "600 root\nhello again\n");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the update");
  });

  test("changing the path replaces the file: the old one goes, the new one comes", async () => {
    // given
    expectOk(await project.config({ path: PATH2 }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:File: \(replace\)/);
    expectOk(up, "up");
    assert.match(up.stdout, /\+-3 replaced/);
    for (const m of ["m1", "m2", "m3"]) {
      assert.equal(await onMachine(m, PATH), "ABSENT\n");
      assert.equal(await onMachine(m, PATH2), "600 root\nhello again\n");
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the replacement");
  });

  test("a machine whose host key does not match is refused, and nothing changes on it", async () => {
    // given m1 pinned to m2's host key, and new content for everyone
    expectOk(await project.config({ badHostKey: "m1", content: "third\n" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then the run fails for m1, naming the host, its key and what to do
    assert.notEqual(up.code, 0, up.output);
    expectMatch(up.output, /Unable to connect to root@10\.213\.21\.11: its host key is SHA256:\S+, but SHA256:\S+ was expected, so drove refused it\. Either/);
    assert.equal(await onMachine("m1", PATH2), "600 root\nhello again\n");
    // and the other machines converge
    assert.equal(await onMachine("m2", PATH2), "600 root\nthird\n");
    // when the key is right again, the next up converges
    expectOk(await project.pulumi(["config", "rm", "badHostKey"]), "config rm");
    expectOk(await project.pulumi(["up", "--yes"]), "the up after fixing the key");
    assert.equal(await onMachine("m1", PATH2), "600 root\nthird\n");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after convergence");
  });

  test("an unreachable machine fails its own resources with a clear message", async () => {
    // given m3 at an address where nothing answers
    expectOk(await project.config({ unreachable: "m3", content: "fourth\n" }), "config");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    assert.notEqual(up.code, 0, up.output);
    expectMatch(up.output, /Unable to connect to root@10\.213\.21\.250: [^\n]+\. Either check that the machine is up/);
    assert.equal(await onMachine("m1", PATH2), "600 root\nfourth\n");
    expectOk(await project.pulumi(["config", "rm", "unreachable"]), "config rm");
  });

  test("the private key appears nowhere: not in state, not in CLI output", async () => {
    // given the lab's private key
    const key = readFileSync(lab.machine("m1").privateKeyPath, "utf8");
    const body = key.split("\n").filter((l) => l && !l.startsWith("-----"))[1];
    // when
    const outputs = [
      await project.pulumi(["preview", "--diff", "--show-secrets=false"]),
      await project.pulumi(["up", "--yes", "--diff"]),
      await project.pulumi(["stack", "export"]),
      await project.pulumi(["refresh", "--yes", "--diff"]),
    ];
    // then
    for (const o of outputs) assert.ok(!o.output.includes(body), "a CLI output holds the private key");
    assert.ok(!project.stateText().includes(body), "the state file holds the private key in plaintext");
    // (the lab's Hosts name their key file: the state holds its path, and no key at all)
    assert.match(project.stateText(), new RegExp(`"privateKeyPath":"${lab.machine("m1").privateKeyPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`));
    assert.doesNotMatch(project.stateText(), /"privateKey":/);
  });

  test("destroy removes the file from every machine", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    assert.match(down.stdout, /- 7 deleted/);
    for (const m of ["m1", "m2", "m3"]) assert.equal(await onMachine(m, PATH2), "ABSENT\n");
  });
});
