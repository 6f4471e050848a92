/**
 * Secrets and trust, through the real `pulumi` CLI on a 3-machine lab: a
 * registry with a password, a service with a secret file and a secret env,
 * etcd with the keys drove makes, every Host logging in with a key made by
 * this test. Every secret is a random string made here, so a match can only
 * be a leak; it is looked for, as is, in base64 and (for private keys) line
 * by line of the PEM body, in the state and its backups, the stack's config,
 * `stack export`, `drove synth`, and the output of up/preview/refresh/destroy
 * with and without --diff and with debug logs, error runs included. Also: a
 * changed host key refuses the machine, no code path turns host-key checks
 * off, and the files holding secrets on the machines have the modes and
 * owners drove promises.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { packageRoot } from "../src/paths";
import { SshConnection } from "../src/ssh";
import { offlineEnv } from "../src/toolchain";
import { isWireSecret, SECRET_SIG_KEY } from "../src/secrets";
import { bootTestLab, type CliResult, expectMatch, expectOk, sh, type TestLab, TestProject } from "./harness";
import { pushWebImage } from "./fixtures";

let lab: TestLab;
let project: TestProject;
let keyDir: string;
const MACHINES = ["m1", "m2", "m3"] as const;
const USER = "puller";
const PRIVATE = `${"PRIVATE"} KEY`;
/** Debug-level output: the engine's, the program's and drove's debug messages. */
const DEBUG = ["--debug"];
/** Verbose logs of the CLI, the engine and every plugin it starts, below the level where the engine dumps properties. */
const VERBOSE6 = ["--debug", "--logtostderr", "-v=6", "--logflow"];
/** The most verbose logs. */
const VERBOSE9 = ["--debug", "--logtostderr", "-v=9", "--logflow"];
/**
 * What the pinned Pulumi engine (3.248.0) itself writes at -v=7 and above: every
 * property it marshals and every plan it makes, with secret values in plaintext
 * (config secrets included; its log filter does not reach these lines). Pulumi
 * warns that verbose logs may hold sensitive data; drove cannot change them. A
 * secret on any other line of a verbose log is a leak.
 */
const ENGINE_PROPERTY_DUMPS = [
  /^\{"time":"[^"]+","level":"INFO","msg":"(Marshaling|Unmarshaling) property for RPC\[/,
  /^\{"time":"[^"]+","level":"INFO","msg":"Planner decided (not )?to (create|update|replace|delete|refresh) /,
];

const rand = (what: string) => `${what}-${randomBytes(16).toString("hex")}`;
const SECRETS = {
  registryPassword: rand("registry-password"),
  registryPassword2: rand("registry-password-two"),
  serviceSecret: rand("service-secret"),
  serviceSecret2: rand("service-secret-two"),
  envSecret: rand("env-secret"),
  envSecret2: rand("env-secret-two"),
};

/** PEM body lines every OpenSSH key of a type shares (its header): not a key's own. */
let sharedKeyLines: ReadonlySet<string> = new Set();
/** A needle: a text that must not appear anywhere the suite looks, and what it is. */
interface Needle {
  readonly what: string;
  readonly text: string;
}
const needles: Needle[] = [];
/** Every text the suite looked at (CLI output, state, synth), for the final sweep with every needle. */
const seen: { what: string; text: string; verbose: boolean }[] = [];

/** The forms of a secret that would give it away: as is, base64, and each body line of a private key's PEM. */
function formsOf(what: string, secret: string, bodyLinesToSkip: ReadonlySet<string> = new Set()): Needle[] {
  const out: Needle[] = [{ what, text: secret }, { what: `${what} (base64)`, text: Buffer.from(secret).toString("base64") }];
  for (const line of pemBodyLines(secret)) if (!bodyLinesToSkip.has(line)) out.push({ what: `${what} (a PEM body line)`, text: line });
  return out;
}

/** The body lines (16 characters or more) of the private keys in a PEM text. */
function pemBodyLines(text: string): string[] {
  const lines: string[] = [];
  let inKey = false;
  for (const raw of text.split("\n")) {
    const l = raw.trim();
    if (/^-----BEGIN /.test(l)) inKey = l.includes(PRIVATE);
    else if (/^-----END /.test(l)) inKey = false;
    else if (inKey && l.length >= 16) lines.push(l);
  }
  return lines;
}

function addNeedles(ns: Needle[]): void {
  for (const n of ns) if (n.text.length >= 12 && !needles.some((x) => x.text === n.text)) needles.push(n);
}

/** The needles found in a text. */
function leaksIn(text: string): string[] {
  return needles.filter((n) => text.includes(n.text)).map((n) => n.what);
}

/** Where each found needle sits in a text (the needle itself replaced by what it is), for the failure message. */
function leakContexts(text: string): string[] {
  const out: string[] = [];
  for (const n of needles) {
    const at = text.indexOf(n.text);
    if (at < 0) continue;
    const lineStart = text.lastIndexOf("\n", at) + 1;
    const before = text.slice(Math.max(lineStart, at - 160), at);
    const after = text.slice(at + n.text.length, at + n.text.length + 60);
    const head = at - 160 > lineStart ? `${text.slice(lineStart, lineStart + 120)} ... ` : "";
    out.push(`${head}${before}<${n.what}>${after}...`.replace(/\n/g, "\\n"));
    if (out.length >= 4) break;
  }
  return out;
}

/** A text as checked: whole, or for a verbose log, the lines that are not the engine's own property dumps. */
function checked(text: string, verbose: boolean): string {
  return verbose ? text.split("\n").filter((l) => !ENGINE_PROPERTY_DUMPS.some((re) => re.test(l))).join("\n") : text;
}

/** Records a text the suite looked at, and fails at once when it holds a secret, showing where. */
function scan(what: string, text: string, verbose = false): void {
  seen.push({ what, text, verbose });
  const rest = checked(text, verbose);
  assert.deepEqual(leaksIn(rest), [], `${what} shows a secret in plaintext:\n${leakContexts(rest).join("\n")}`);
}

async function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const r = await project.pulumi(args, extraEnv);
  scan(`pulumi ${args.join(" ")}`, r.output, args.includes("-v=9"));
  return r;
}

/** Every file of the Pulumi backend (state, its backups and history) and the stack's config. */
function scanStoredState(when: string): void {
  const backend = offlineEnv().PULUMI_BACKEND_URL.replace(/^file:\/\//, "");
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(join(d, e.name)) : files.push(join(d, e.name)));
  };
  walk(backend);
  assert.ok(files.some((f) => f.endsWith(join("stacks", "drove-it", "it.json"))), `no state file under ${backend}`);
  for (const f of files) if (statSync(f).size < 256 * 1024 * 1024) scan(`${when}: ${relative(backend, f)}`, readFileSync(f, "utf8"));
  scan(`${when}: Pulumi.it.yaml`, readFileSync(join(project.dir, "Pulumi.it.yaml"), "utf8"));
}

/**
 * Every secret the stack holds (what drove made too: CA, member, client and
 * TLS keys, htpasswd, registry credentials), read back with --show-secrets.
 */
async function harvestStateSecrets(): Promise<number> {
  const r = await project.pulumi(["stack", "export", "--show-secrets"]);
  expectOk(r, "stack export --show-secrets");
  const found: Needle[] = [];
  // A private key's PEM holds its public key too (EC keys at their end), so one of its body lines can
  // stand, by base64 alignment, in the key's certificate: public, not a leak. Such lines are skipped.
  const publicLines = new Set(sharedKeyLines);
  for (const m of r.stdout.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    for (const l of m[1].split(/\\n|\n/)) if (l.trim().length >= 16) publicLines.add(l.trim());
  }
  const collect = (v: unknown, where: string) => {
    if (typeof v === "string") {
      // Certificates and addresses inside a secret object are public: only what could be secret counts.
      const certificateOnly = v.includes("-----BEGIN CERTIFICATE-----") && !v.includes(PRIVATE);
      const address = /^[a-z:/]*\d+\.\d+\.\d+\.\d+[\d:,./a-z-]*$/i.test(v);
      if (!certificateOnly && !address) found.push(...formsOf(`a secret in state (${where})`, v, publicLines));
    } else if (Array.isArray(v)) v.forEach((x, i) => collect(x, `${where}[${i}]`));
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) collect(x, `${where}.${k}`);
  };
  const walk = (v: unknown, where: string) => {
    if (isWireSecret(v) || (typeof v === "object" && v !== null && SECRET_SIG_KEY in v && "plaintext" in v)) {
      const p = (v as { plaintext?: string; value?: unknown }).plaintext;
      collect(p !== undefined ? JSON.parse(p) : (v as { value: unknown }).value, where);
    } else if (Array.isArray(v)) v.forEach((x) => walk(x, where));
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k === "urn" ? where : `${where}.${k}`);
  };
  const deployment = JSON.parse(r.stdout) as { deployment: { resources?: { urn: string; inputs?: unknown; outputs?: unknown }[] } };
  for (const res of deployment.deployment.resources ?? []) {
    const name = res.urn.split("::").pop() ?? res.urn;
    walk(res.inputs, name);
    walk(res.outputs, name);
  }
  const before = needles.length;
  addNeedles(found);
  return needles.length - before;
}

function sshKeygen(name: string): { privateKey: string; publicKey: string; path: string } {
  const path = join(keyDir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path]);
  return { privateKey: readFileSync(path, "utf8"), publicKey: readFileSync(`${path}.pub`, "utf8"), path };
}

/**
 * Files on a machine that hold `text` (searched where drove and the engines
 * write) and that an unprivileged user (nobody, and the file's group) can read,
 * path and all.
 */
async function readableByOthers(machine: string, text: string): Promise<string[]> {
  const r = await lab.ssh(
    machine,
    sh`grep -rlF --exclude-dir=overlay2 -e ${text} /etc /run /var/lib /root /home /tmp 2>/dev/null | while read -r f; do if runuser -u nobody -- head -c1 "$f" >/dev/null 2>&1; then echo "nobody can read $f"; fi; g=$(stat -c %G "$f"); if [ "$g" != root ] && [ "$(stat -c %A "$f" | cut -c5)" = r ]; then echo "group $g can read $f"; fi; done`,
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean);
}

describe("Secrets and trust, through the real pulumi CLI on 3 machines", { timeout: 75 * 60_000 }, () => {
  let good: ReturnType<typeof sshKeygen>;
  let bad: ReturnType<typeof sshKeygen>;

  before(async () => {
    keyDir = mkdtempSync(join(tmpdir(), "drove-secrets-keys-"));
    good = sshKeygen("drove-secrets-good");
    bad = sshKeygen("drove-secrets-bad");
    // The two keys share their leading lines (OpenSSH's header): only the lines that differ are the key's own.
    const goodLines = new Set(pemBodyLines(good.privateKey));
    sharedKeyLines = new Set(pemBodyLines(bad.privateKey).filter((l) => goodLines.has(l)));
    addNeedles(formsOf("the SSH private key", good.privateKey, sharedKeyLines));
    addNeedles(formsOf("the wrong SSH private key", bad.privateKey, sharedKeyLines));
    for (const [k, v] of Object.entries(SECRETS)) addNeedles(formsOf(k, v));
    for (const pw of [SECRETS.registryPassword, SECRETS.registryPassword2]) addNeedles(formsOf("the registry's user:password", `${USER}:${pw}`));
    assert.ok(needles.filter((n) => n.what.startsWith("the SSH private key (a PEM")).length >= 2, "the test key has body lines of its own");

    lab = await bootTestLab("drovesc", 55, 3);
    for (const m of MACHINES) {
      const r = await lab.ssh(m, sh`printf '%s\n' ${good.publicKey.trim()} >> /root/.ssh/authorized_keys`);
      assert.equal(r.code, 0, r.stderr);
    }
    const image = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello secrets\n");
    project = await TestProject.create("secrets.ts");
    expectOk(await project.config({ sshKeyFile: good.path, image: image.digestRef }), "config");
    expectOk(await project.config({ registryPassword: SECRETS.registryPassword, serviceSecret: SECRETS.serviceSecret, envSecret: SECRETS.envSecret }, true), "config --secret");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  test("preview, up and refresh, with and without --diff and with debug logs, show no secret; nor do the state, its backups or the stack's config", async () => {
    // when
    const preview = await cli(["preview", "--diff"]);
    const up = await cli(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    expectOk(up, "up");
    const harvested = await harvestStateSecrets();
    assert.ok(harvested >= 10, `the state holds the keys drove made (found ${harvested} needles)`);
    assert.ok(needles.some((n) => n.what.includes("clientKeyPem")), "the exported client key is among them");
    for (const s of [...seen]) assert.deepEqual(leaksIn(checked(s.text, s.verbose)), [], `${s.what} shows a secret in plaintext`);
    // and again, every way the CLI shows a stack
    expectOk(await cli(["preview", "--expect-no-changes"]), "the second preview");
    expectOk(await cli(["preview", "--diff", "--expect-no-changes"]), "preview --diff");
    expectOk(await cli(["preview", "--diff", "--expect-no-changes", ...DEBUG]), "preview --diff --debug");
    expectOk(await cli(["preview", "--diff", "--expect-no-changes", ...VERBOSE6]), "preview --diff -v=6");
    expectOk(await cli(["preview", "--diff", "--expect-no-changes", ...VERBOSE9]), "preview --diff -v=9");
    expectOk(await cli(["refresh", "--yes"]), "refresh");
    expectOk(await cli(["refresh", "--yes", "--diff", ...DEBUG]), "refresh --diff --debug");
    expectOk(await cli(["refresh", "--yes", "--diff", ...VERBOSE9]), "refresh --diff -v=9");
    expectOk(await cli(["stack", "export"]), "stack export");
    expectOk(await cli(["stack", "output", "--json"]), "stack output");
    expectOk(await cli(["config"]), "config");
    scanStoredState("after up");
  });

  test("new secrets roll out as updates that show no secret, with --diff and with debug logs", async () => {
    // given
    expectOk(await project.config({ registryPassword: SECRETS.registryPassword2, serviceSecret: SECRETS.serviceSecret2 }, true), "config --secret");
    // when
    const preview = await cli(["preview", "--diff", ...DEBUG]);
    const up = await cli(["up", "--yes", "--diff", ...DEBUG]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\[secret\]/);
    expectOk(up, "up");
    // and once more, with the most verbose logs
    expectOk(await project.config({ envSecret: SECRETS.envSecret2 }, true), "config --secret");
    expectOk(await cli(["up", "--yes", "--diff", ...VERBOSE9]), "up -v=9");
    await harvestStateSecrets();
    expectOk(await cli(["preview", "--expect-no-changes"]), "the preview after the update");
    for (const m of MACHINES) {
      const r = await lab.ssh(m, sh`for c in $(docker ps -q --filter label=drove.service=lab/web); do docker exec $c cat /run/secrets/greeting; echo; done | sort -u`);
      if ((await replicasOn(m)) > 0) assert.equal(r.stdout.trim(), SECRETS.serviceSecret2, `${m}: the new secret arrived`);
    }
    scanStoredState("after the update");
  });

  test("on the machines, every file holding a secret is readable by its owner alone, with the owner drove promises", async () => {
    const endpoint = `${lab.machine("m1").address}:5000`;
    for (const m of MACHINES) {
      // the files drove writes secrets to
      const r = await lab.ssh(
        m,
        sh`stat -c '%a %U %n' /root/.docker/config.json ${`/etc/containerd/certs.d/${endpoint}/hosts.toml`} /etc/drove/etcd/member.key /etc/drove/etcd/client.key; for d in /run/drove/services/*/secrets; do stat -c '%a %U' "$d" "$d/greeting"; done | sort | uniq -c | sed 's/^ *//'`,
      );
      assert.equal(
        r.stdout.trim(),
        [
          "600 root /root/.docker/config.json",
          `600 root /etc/containerd/certs.d/${endpoint}/hosts.toml`,
          "600 etcd /etc/drove/etcd/member.key",
          "600 root /etc/drove/etcd/client.key",
        ].join("\n") + `\n${await replicasOn(m)} 400 root\n${await replicasOn(m)} 700 root`,
        `${m}: ${r.stderr}`,
      );
      // and wherever else a secret of the test's own turns up, group and others cannot read it
      for (const secret of [SECRETS.serviceSecret2, SECRETS.envSecret2, Buffer.from(`${USER}:${SECRETS.registryPassword2}`).toString("base64")]) {
        assert.deepEqual(await readableByOthers(m, secret), [], `${m}: files that hold a secret and a user other than root can read`);
      }
      const ps = await lab.ssh(m, sh`ps -eo args`);
      assert.deepEqual(leaksIn(ps.stdout), [], `${m}: a secret on a command line`);
    }
    const registry = await lab.ssh("m1", sh`stat -c '%a %U %n' /etc/docker/registry/drove/htpasswd /etc/docker/registry/drove/registry.key`);
    assert.equal(registry.stdout.trim(), "600 docker-registry /etc/docker/registry/drove/htpasswd\n600 docker-registry /etc/docker/registry/drove/registry.key");
  });

  test("drove synth renders every secret as [secret]", async () => {
    // when
    const r = spawnSync(process.execPath, [join(packageRoot, "bin", "drove"), "synth", "--out", "-", "--stack", "it"], { cwd: project.dir, env: { ...process.env, ...offlineEnv() }, encoding: "utf8" });
    // then
    assert.equal(r.status, 0, r.stderr);
    scan("drove synth", `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /privateKey: '\[secret\]'/);
    assert.match(r.stdout, /secrets: '\[secret\]'/);
    assert.match(r.stdout, /TOKEN: '\[secret\]'/);
    assert.match(r.stdout, /path: \/etc\/docker\/registry\/drove\/htpasswd\n\s+content: '\[secret\]'/);
  });

  test("a replica that prints its secrets and exits fails the run, and the error shows no secret", async (t) => {
    // given
    // (the marker "said:" is put together at run time, so only the container's own output holds it)
    // (config secrets the engine filters itself; the client key is one drove made, which only drove can keep out)
    const printKey = `sed -n 2p /run/secrets/client.key`;
    expectOk(await project.config({ command: JSON.stringify(["/bin/sh", "-c", `printf 'sa%sid: %s %s %s\\n' '' "$(cat /run/secrets/greeting)" "$TOKEN" "$(${printKey})" >&2; exit 3`]) }), "config");
    // when
    const up = await cli(["up", "--yes", "--diff"]);
    // then
    assert.notEqual(up.code, 0, up.output);
    expectMatch(up.output, /Unable to start replica drove-lab-web-\d+ of web/);
    const said = /said: [^|\n]*/.exec(up.output)?.[0];
    assert.ok(said, "the container's last lines are in the error");
    t.diagnostic(`the error quotes the container as: ${said}`);
    // and back to a good version
    expectOk(await project.pulumi(["config", "rm", "command"]), "config rm");
    expectOk(await cli(["up", "--yes"]), "the up after fixing the command");
  });

  test("a key a machine does not accept fails it with the fix, and the error shows neither key", async () => {
    // given m3 logged in to with a key it does not know
    expectOk(await project.config({ wrongKeyFile: bad.path, wrongKeyOn: "m3" }), "config");
    try {
      // when
      const up = await cli(["up", "--yes", "--diff"]);
      await cli(["preview", "--diff", ...VERBOSE9]);
      // then
      assert.notEqual(up.code, 0, up.output.slice(-5000));
      expectMatch(up.output, /the server refused every offered credential for user root/, up.output.slice(-5000));
      assert.ok(up.output.includes(lab.machine("m3").address), "the machine is named");
    } finally {
      expectOk(await project.pulumi(["config", "rm", "wrongKeyFile"]), "config rm");
      expectOk(await project.pulumi(["config", "rm", "wrongKeyOn"]), "config rm");
    }
    expectOk(await cli(["up", "--yes"]), "the up with the right key");
    expectOk(await cli(["preview", "--expect-no-changes"]), "the preview with the right key");
  });

  test("a machine whose host key changed is refused, naming both keys; nothing changes on it; the others converge", async () => {
    // given m3's host keys made anew (as a reinstall or an impostor would present)
    const pinned = lab.machine("m3").hostKey;
    const swap = await lab.ssh("m3", sh`mkdir -p /root/drove-hostkeys && cp -a /etc/ssh/ssh_host_* /root/drove-hostkeys/ && rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh && ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2`);
    assert.equal(swap.code, 0, swap.stderr);
    const changed = swap.stdout.trim();
    assert.notEqual(changed, pinned);
    expectOk(await project.config({ registryPassword: SECRETS.registryPassword }, true), "config --secret");
    try {
      // when
      const up = await cli(["up", "--yes"]);
      // then
      assert.notEqual(up.code, 0, up.output);
      assert.ok(up.output.includes(`Unable to connect to root@${lab.machine("m3").address}: its host key is`), up.output.slice(-5000));
      assert.ok(up.output.includes(pinned), "the pinned key is named");
      assert.ok(/SHA256:\S+, but SHA256:\S+ was expected, so drove refused it/.test(up.output));
      for (const m of ["m1", "m2"]) {
        const r = await lab.ssh(m, sh`cat /root/.docker/config.json`);
        assert.ok(r.stdout.includes(Buffer.from(`${USER}:${SECRETS.registryPassword}`).toString("base64")), `${m} converged to the new password`);
      }
      const m3 = await onChangedHost(lab.machine("m3").address, changed, sh`cat /root/.docker/config.json`);
      assert.ok(m3.includes(Buffer.from(`${USER}:${SECRETS.registryPassword2}`).toString("base64")), "m3 was not touched");
    } finally {
      await onChangedHost(lab.machine("m3").address, changed, sh`cp -a /root/drove-hostkeys/ssh_host_* /etc/ssh/ && rm -rf /root/drove-hostkeys && systemctl restart ssh`);
    }
    // when the machine presents its pinned key again
    expectOk(await cli(["up", "--yes"]), "the up with the pinned key back");
    expectOk(await cli(["preview", "--expect-no-changes"]), "the preview after");
  });

  test("no code path turns host-key checking off", () => {
    // given drove's sources (the benchmark drives other tools, and is not drove)
    const files = execFileSync("git", ["ls-files", "src", "constructs", "providers", "bin", "scripts", "examples"], { cwd: packageRoot, encoding: "utf8" }).split("\n").filter(Boolean);
    const offenders: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(packageRoot, f), "utf8");
      for (const re of [/StrictHostKeyChecking/i, /UserKnownHostsFile/i, /hostVerifier\s*:\s*\(\)\s*=>\s*true/, /hostVerifier\s*:\s*(true|undefined)/, /accept-new/, /ssh-keyscan\s+\S+\s*>>/]) {
        if (re.test(text)) offenders.push(`${f}: ${re}`);
      }
    }
    // then
    assert.deepEqual(offenders, []);
    // and the one verifier there is compares against the pin
    const conn = readFileSync(join(packageRoot, "src", "ssh", "connection.ts"), "utf8");
    assert.equal(conn.match(/hostVerifier/g)?.length, 1);
    assert.match(conn, /hostVerifier: \(key: Buffer\) => \{\s*seen = fingerprint\(key\);\s*return expected\.accepts\(key\);/);
  });

  test("destroy, with debug logs, shows no secret; nor does anything the suite looked at, against every secret seen", async () => {
    // when
    const down = await cli(["destroy", "--yes", ...VERBOSE9]);
    // then
    expectOk(down, "destroy");
    scanStoredState("after destroy");
    for (const s of seen) assert.deepEqual(leaksIn(checked(s.text, s.verbose)), [], `${s.what} shows a secret in plaintext`);
    assert.ok(seen.length > 30, `the suite looked at ${seen.length} texts`);
  });
});

async function replicasOn(machine: string): Promise<number> {
  const r = await lab.ssh(machine, sh`docker ps -q --filter label=drove.service=lab/web | wc -l`);
  return Number(r.stdout.trim());
}

/** Runs a command as root on a machine whose host key was changed on purpose, pinning the new key. */
async function onChangedHost(address: string, hostKey: string, command: ReturnType<typeof sh>): Promise<string> {
  const m = lab.inventory.machines.find((x) => x.address === address)!;
  const conn = await SshConnection.open({ host: address, user: "root", privateKey: readFileSync(m.privateKeyPath, "utf8"), hostKey });
  try {
    const r = await conn.exec(command);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  } finally {
    conn.close();
  }
}
