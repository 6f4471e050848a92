/**
 * A private registry through the real `pulumi` CLI on three lab machines: on
 * m1, HTTPS from a CA drove made, Basic auth from a Pulumi secret; an image
 * pushed to it from this machine (skopeo, with the CA and the credentials) is
 * pulled over TLS with auth by Podman on m1, Docker on m2 and systemd + runc
 * (skopeo) on m3.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootTestLab, eventually, expectOk, httpText, sh, TestProject, type TestLab } from "./harness";
import { pushWebImage } from "./fixtures";
import { run } from "./lab/system";

let lab: TestLab;
let project: TestProject;
let endpoint: string;
let digest: string;
const USER = "puller";
const PASSWORD = "first-registry-password-5c9e";
const PASSWORD2 = "second-registry-password-71ad";
const MACHINES = ["m1", "m2", "m3"] as const;

/** GET https://endpoint/path: the HTTP status, or the TLS/network error code. */
function get(path: string, opts: { ca?: string; user?: string; password?: string } = {}): Promise<string> {
  const [host, port] = endpoint.split(":");
  return new Promise((resolve) => {
    const req = request(
      {
        host,
        port: Number(port),
        path,
        method: "GET",
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.user ? { auth: `${opts.user}:${opts.password}` } : {}),
        timeout: 5000,
      },
      (res) => {
        res.resume();
        resolve(String(res.statusCode));
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}


function page(machine: string): Promise<string> {
  return httpText(`http://${lab.machine(machine).address}:8080/`);
}

/** The CA the machines trust for the registry, as m2 has it. */
async function trustedCa(): Promise<string> {
  const r = await lab.ssh("m2", sh`cat ${`/etc/docker/certs.d/${endpoint}/ca.crt`}`);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** Copies the lab registry's image to ours with skopeo, verifying TLS with `ca` and logging in from a 0600 auth file. */
async function pushToRegistry(source: string, dest: string, ca: string, password: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "drove-registry-push-"));
  try {
    mkdirSync(join(dir, "certs"));
    writeFileSync(join(dir, "certs", "ca.crt"), ca);
    writeFileSync(join(dir, "auth.json"), JSON.stringify({ auths: { [endpoint]: { auth: Buffer.from(`${USER}:${password}`).toString("base64") } } }), { mode: 0o600 });
    await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", "--dest-cert-dir", join(dir, "certs"), "--dest-authfile", join(dir, "auth.json"), `docker://${source}`, `docker://${dest}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("Registry: TLS from drove's CA, basic auth from a secret, pulled by Docker, Podman and systemd + runc", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("droverg", 35, 3);
    endpoint = `${lab.machine("m1").address}:5000`;
    project = await TestProject.create("registry.ts");
    expectOk(await project.config({ password: PASSWORD }, true), "config set --secret password");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up runs the registry over TLS with auth; every machine trusts its CA; no changes after", async () => {
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
    const ca = await trustedCa();
    assert.equal(await eventually(() => get("/v2/", { ca, user: USER, password: PASSWORD }), "200"), "200", "an authenticated client with the CA");
    assert.equal(await get("/v2/", { ca }), "401", "an anonymous client is refused");
    assert.equal(await get("/v2/", { ca, user: USER, password: "wrong" }), "401", "a wrong password is refused");
    assert.match(await get("/v2/", { user: USER, password: PASSWORD }), /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)$/, "a client without the CA fails TLS");
    for (const m of MACHINES) {
      const r = await lab.ssh(m, sh`cat ${`/etc/docker/certs.d/${endpoint}/ca.crt`} ${`/etc/containers/certs.d/${endpoint}/ca.crt`} ${`/etc/containerd/certs.d/${endpoint}/ca.crt`} | sort -u | grep -c BEGIN; stat -c '%a %U' /root/.docker/config.json ${`/etc/containerd/certs.d/${endpoint}/hosts.toml`}`);
      assert.equal(r.stdout.trim(), "1\n600 root\n600 root", `${m}: one CA in all three trust stores; credentials 0600: ${r.stderr}`);
    }
    const files = await lab.ssh("m1", sh`stat -c '%n %a %U' /etc/docker/registry/drove/htpasswd /etc/docker/registry/drove/registry.key; systemctl is-active docker-registry.service; systemctl is-enabled docker-registry.service`);
    assert.equal(files.stdout.trim(), "/etc/docker/registry/drove/htpasswd 600 docker-registry\n/etc/docker/registry/drove/registry.key 600 docker-registry\nactive\nenabled");
  });

  test("an image pushed over TLS with auth runs on Podman (m1), Docker (m2) and systemd + runc (m3)", async () => {
    // given
    const source = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello from the private registry\n");
    await pushToRegistry(source.tag, `${endpoint}/web:v1`, await trustedCa(), PASSWORD);
    digest = source.digestRef.split("@")[1];
    expectOk(await project.config({ image: `web@${digest}` }), "config image");
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    for (const m of MACHINES) assert.equal(await eventually(() => page(m), "hello from the private registry\n"), "hello from the private registry\n", m);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the containers");
  });

  test("a pull without credentials is refused, one without the CA fails TLS; containerd pulls with its hosts.toml", async () => {
    // when: m2 pulls with no credentials file, then with no CA
    const anonymous = await lab.ssh("m2", sh`skopeo inspect --authfile /dev/null --no-creds ${`docker://${endpoint}/web:v1`} 2>&1`);
    const away = (d: string) => [`${d}/${endpoint}/ca.crt`, `/root/${d.split("/")[2]}-ca.crt.away`];
    const [[c1, a1], [c2, a2]] = [away("/etc/containers/certs.d"), away("/etc/docker/certs.d")];
    const noCa = await lab.ssh("m2", sh`mv ${c1} ${a1} && mv ${c2} ${a2} && skopeo inspect ${`docker://${endpoint}/web:v1`} 2>&1; rc=$?; mv ${a1} ${c1}; mv ${a2} ${c2}; exit $rc`);
    const granted = await lab.ssh("m2", sh`skopeo inspect --format '{{.Digest}}' ${`docker://${endpoint}/web:v1`}`);
    // containerd (Docker's, on m2) pulls with the hosts.toml drove wrote: its CA and its Basic header
    const ns = "drove-it-registry";
    const ctr = await lab.ssh("m2", sh`ctr -n ${ns} images pull --hosts-dir /etc/containerd/certs.d ${`${endpoint}/web:v1`} >/dev/null && ctr -n ${ns} images ls -q; rc=$?; ctr -n ${ns} images rm ${`${endpoint}/web:v1`} >/dev/null 2>&1; ctr namespaces rm ${ns} >/dev/null 2>&1; exit $rc`);
    // then
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.stdout, /unauthorized|authentication required|401/i, anonymous.stdout);
    assert.notEqual(noCa.code, 0);
    assert.match(noCa.stdout, /x509: certificate signed by unknown authority/, noCa.stdout);
    assert.equal(granted.stdout.trim(), digest, granted.stderr);
    assert.equal(ctr.stdout.trim(), `${endpoint}/web:v1`, ctr.stderr);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the refused pulls");
  });

  test("the password appears nowhere in plaintext: not in state, not in the diff, not on a command line", async () => {
    // when
    const preview = await project.pulumi(["preview", "--diff", "--refresh"]);
    // then
    expectOk(preview, "preview");
    const basic = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");
    for (const needle of [PASSWORD, basic]) {
      assert.ok(!preview.output.includes(needle), "the preview shows the password");
      assert.ok(!project.stateText().includes(needle), "the state holds the password in plaintext");
    }
    assert.ok(!project.stateText().includes("PRIVATE KEY"), "the state holds a private key in plaintext");
    for (const m of MACHINES) {
      const ps = await lab.ssh(m, sh`ps -eo args`);
      assert.ok(!ps.stdout.includes(PASSWORD), `${m}: the password is on a command line`);
    }
  });

  test("a hand edit of the registry's config is shown as drift and repaired", async () => {
    // given
    await lab.ssh("m1", sh`echo 'proxy: {remoteurl: "http://hand.edit"}' >> /etc/docker/registry/drove/config.yml`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /~ drove:index:File: \(update\)\n\s+\[id=\/etc\/docker\/registry\/drove\/config\.yml\]/);
    assert.match(preview.stdout, /-\s+proxy\s*: \{\n\s+-\s+remoteurl: "http:\/\/hand\.edit"/);
    assert.match(preview.stdout, /~ 1 to update\n/);
    expectOk(up, "up");
    const r = await lab.ssh("m1", sh`grep -c hand.edit /etc/docker/registry/drove/config.yml`);
    assert.equal(r.stdout.trim(), "0");
    const ca = await trustedCa();
    assert.equal(await eventually(() => get("/v2/", { ca, user: USER, password: PASSWORD }), "200"), "200");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after repair");
  });

  test("a new password updates in place: the old one is refused, the machines pull with the new one", async () => {
    // given
    expectOk(await project.config({ password: PASSWORD2 }, true), "config set --secret password");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.doesNotMatch(preview.stdout, /\(replace\)/);
    assert.match(preview.stdout, /~ drove:index:File: \(update\)[\s\S]*registry\/htpasswd/);
    assert.ok(!preview.output.includes(PASSWORD2) && !preview.output.includes(PASSWORD));
    expectOk(up, "up");
    const ca = await trustedCa();
    assert.equal(await eventually(() => get("/v2/", { ca, user: USER, password: PASSWORD2 }), "200"), "200");
    assert.equal(await get("/v2/", { ca, user: USER, password: PASSWORD }), "401");
    const docker = await lab.ssh("m2", sh`docker pull -q ${`${endpoint}/web:v1`}`);
    assert.equal(docker.code, 0, docker.stderr);
    const skopeo = await lab.ssh("m3", sh`skopeo inspect --format '{{.Digest}}' ${`docker://${endpoint}/web:v1`}`);
    assert.equal(skopeo.stdout.trim(), digest, skopeo.stderr);
    const podman = await lab.ssh("m1", sh`podman pull -q ${`${endpoint}/web:v1`}`);
    assert.equal(podman.code, 0, podman.stderr);
    assert.ok(!project.stateText().includes(PASSWORD2));
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the new password");
  });

  test("a new CA replaces the CA and the registry's certificate; every machine trusts the new one", async () => {
    // given
    const oldCa = await trustedCa();
    expectOk(await project.config({ caName: "drove integration registry CA 2" }), "config caName");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:CertificateAuthority: \(replace\)/);
    assert.match(preview.stdout, /\+-\s*drove:index:Certificate: \(replace\)/);
    expectOk(up, "up");
    const newCa = await trustedCa();
    assert.notEqual(newCa, oldCa);
    assert.equal(await eventually(() => get("/v2/", { ca: newCa, user: USER, password: PASSWORD2 }), "200"), "200");
    assert.match(await get("/v2/", { ca: oldCa, user: USER, password: PASSWORD2 }), /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)$/);
    for (const m of MACHINES) {
      const r = await lab.ssh(m, sh`skopeo inspect --format '{{.Digest}}' ${`docker://${endpoint}/web:v1`}`);
      assert.equal(r.stdout.trim(), digest, `${m}: ${r.stderr}`);
      assert.equal(await page(m), "hello from the private registry\n", m);
    }
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the new CA");
  });

  test("destroy leaves nothing: no registry, no data, no trust, no credentials", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    const m1 = await lab.ssh("m1", sh`ls -d /etc/docker/registry/drove /var/lib/drove-registry /etc/systemd/system/docker-registry.service 2>/dev/null; systemctl is-active docker-registry.service || true; ss -ltn | grep -c ':5000 ' || true`);
    assert.equal(m1.stdout.trim(), "inactive\n0", m1.stdout);
    for (const m of MACHINES) {
      const r = await lab.ssh(m, sh`ls -d /etc/docker/certs.d /etc/containers/certs.d /etc/containerd/certs.d /root/.docker 2>/dev/null; echo end`);
      assert.equal(r.stdout.trim(), "end", `${m} kept: ${r.stdout}`);
    }
  });
});
