/**
 * The lab: real machines on one box. Each machine boots systemd as PID 1 under
 * systemd-nspawn, in its own network namespace, from a shared read-only image
 * with its own overlay; all sit on one bridge with the host and a registry.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import * as lockfile from "proper-lockfile";
import pLimit from "p-limit";
import { DroveError } from "../../src/errors";
import { dumpInventory, loadInventory, type Inventory, type InventoryMachine } from "../../src/inventory";
import { cacheDir, inventoryPath, labDir, packageRoot } from "../../src/paths";
import { SshConnection, fingerprint } from "../../src/ssh";
import { sh } from "../../src/quote";
import { ensureImage } from "./image";
import { isAlive, run, sleep, spawnDetached, which } from "./system";

/** Runs a machine, starts it again when it reboots, and is its OS image updater (see the script). */
const SUPERVISE = join(packageRoot, "integration", "lab", "supervise.sh");

export interface LabConfig {
  /** Directory holding machines, keys and inventory. */
  readonly dir: string;
  /** Bridge name on the host. */
  readonly bridge: string;
  /** First three octets of the lab's /24. */
  readonly net: string;
  /** Prefix of network namespaces and host-side links. */
  readonly prefix: string;
}

export function labConfig(): LabConfig {
  const net = process.env.DROVE_LAB_NET ?? "10.213.0";
  const prefix = process.env.DROVE_LAB_PREFIX ?? "drove";
  if (!/^[a-z][a-z0-9]{0,9}$/.test(prefix)) {
    throw new DroveError(`DROVE_LAB_PREFIX must be 1 to 10 lower-case letters or digits, starting with a letter, but it is ${JSON.stringify(prefix)}`);
  }
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(net)) {
    throw new DroveError(`DROVE_LAB_NET must be the first three octets of a /24 (like 10.213.0), but it is ${JSON.stringify(net)}`);
  }
  return { dir: labDir(), bridge: process.env.DROVE_LAB_BRIDGE ?? `${prefix}0`, net, prefix };
}

export const MAX_MACHINES = 200;
const REGISTRY_PORT = 5000;
const APT_PROXY_PORT = 3142;
/** Bump when the way machines boot changes, so running machines are rebooted onto it. */
const BOOT_FORMAT = 7;
const TPM_PORT = 2321;

type Log = (s: string) => void;

interface Machine {
  readonly index: number;
  readonly name: string;
  readonly address: string;
  readonly netns: string;
  readonly link: string;
  readonly dir: string;
  readonly root: string;
}

function machine(cfg: LabConfig, index: number): Machine {
  const name = `m${index}`;
  const dir = join(cfg.dir, "machines", name);
  return {
    index,
    name,
    address: `${cfg.net}.${10 + index}`,
    netns: `${cfg.prefix}-${name}`,
    link: `${cfg.prefix}-${name}`,
    dir,
    root: join(dir, "root"),
  };
}

const gateway = (cfg: LabConfig) => `${cfg.net}.1`;
const registryAddress = (cfg: LabConfig) => `${gateway(cfg)}:${REGISTRY_PORT}`;

/** Holds the lab's lock for the duration of `fn`; a second caller is refused. */
async function withLock<T>(cfg: LabConfig, fn: () => Promise<T>): Promise<T> {
  mkdirSync(cfg.dir, { recursive: true });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(cfg.dir, { stale: 20_000, update: 5_000, retries: 0, lockfilePath: join(cfg.dir, ".lock") });
  } catch (err) {
    if ((err as { code?: string }).code === "ELOCKED") {
      throw new DroveError(`Another \`drove lab\` command is already working on the lab in ${cfg.dir}`, {
        fixes: ["wait for it to finish", "if it was killed, run yours again in 20 seconds, when its lock has expired"],
      });
    }
    throw err;
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

/**
 * A prefix (namespaces, links, bridge) belongs to one lab folder at a time:
 * another checkout's `lab up` with the same prefix must not take over, or
 * clean up, machines that are not its own.
 */
function ownerFile(cfg: LabConfig): string {
  return `/run/drove-lab-${cfg.prefix}.owner`;
}

async function claimPrefix(cfg: LabConfig, log: Log): Promise<void> {
  const file = ownerFile(cfg);
  if (existsSync(file)) {
    const owner = readFileSync(file, "utf8").trim();
    if (owner !== cfg.dir && existsSync(join(owner, "machines"))) {
      if (!(await abandoned(owner))) {
        throw new DroveError(`The lab prefix "${cfg.prefix}" is in use by the lab in ${owner}`, {
          fixes: [`stop that lab first (\`drove lab down\` with DROVE_STATE=${owner.replace(/\/lab$/, "")})`, "give this lab another DROVE_LAB_PREFIX and DROVE_LAB_NET"],
        });
      }
      // A killed run (a test runner stopped, a box rebooted) left its lab
      // behind: nothing of it runs and nobody holds its lock. Its namespaces,
      // links and mounts would stop this lab from booting, so they go first.
      log(`lab: the lab in ${owner} held the prefix "${cfg.prefix}" but nothing of it runs (a run was killed); removing what it left`);
      await teardown({ ...cfg, dir: owner }, `Taking over the prefix "${cfg.prefix}" from the killed run's lab in ${owner}`);
    }
  }
  writeFileSync(file, cfg.dir + "\n");
}

/** No process of the lab in `dir` is running, and no `drove lab` command holds its lock. */
async function abandoned(dir: string): Promise<boolean> {
  if (processesUnder(dir).length) return false;
  const locked = await lockfile
    .check(dir, { stale: 20_000, lockfilePath: join(dir, ".lock") })
    .catch(() => false);
  return !locked;
}

function releasePrefix(cfg: LabConfig): void {
  const file = ownerFile(cfg);
  if (existsSync(file) && readFileSync(file, "utf8").trim() === cfg.dir) rmSync(file, { force: true });
}

async function preflight(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new DroveError("The lab needs root (network namespaces, mounts, systemd-nspawn)", {
      fixes: ["run it as root", "run it with sudo"],
    });
  }
  const missing: string[] = [];
  for (const [cmd, pkg] of [
    ["debootstrap", "debootstrap"],
    ["systemd-nspawn", "systemd-container"],
    ["ip", "iproute2"],
    ["ssh-keygen", "openssh-client"],
    ["swtpm", "swtpm"],
    ["swtpm_setup", "swtpm-tools"],
    ["docker-registry", "docker-registry"],
    ["apt-cacher-ng", "apt-cacher-ng"],
  ] as const) {
    if (!(await which(cmd))) missing.push(`${cmd} (package ${pkg})`);
  }
  if (missing.length) {
    throw new DroveError(`The lab needs programs that are not installed: ${missing.join(", ")}`, {
      fixes: ["run `npm run setup`, which installs them", `install them with \`apt-get install ${missing.map((m) => m.replace(/.*package (\S+)\)/, "$1")).join(" ")}\``],
    });
  }
}

/** Boots the lab to `count` machines (idempotent: healthy machines are kept). */
export async function labUp(count: number, log: Log = console.error): Promise<Inventory> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_MACHINES) {
    throw new DroveError(`\`--machines\` must be a whole number between 1 and ${MAX_MACHINES}, but ${count} was provided`);
  }
  const cfg = labConfig();
  await preflight();
  return withLock(cfg, async () => {
    await claimPrefix(cfg, log);
    const image = await ensureImage(log);
    const started = Date.now();
    const key = ensureClientKey(cfg);
    await ensureHostLimits(count);
    await ensureBridge(cfg);
    await ensureRegistry(cfg, log);
    await ensureAptProxy(cfg, log);
    const wanted = Array.from({ length: count }, (_, i) => machine(cfg, i + 1));
    // Machines beyond `count` from an earlier, larger lab go away.
    for (const m of existingMachines(cfg)) {
      if (m.index > count) await destroyMachine(cfg, m);
    }
    const hosts = hostsFile(cfg, wanted);
    const limit = pLimit(8);
    const results = await Promise.all(
      wanted.map((m) => limit(() => bootMachine(cfg, m, image, key, hosts, log))),
    );
    const inv: Inventory = {
      lab: { bridge: cfg.bridge, subnet: `${cfg.net}.0/24`, gateway: gateway(cfg), registry: registryAddress(cfg), aptProxy: `${gateway(cfg)}:${APT_PROXY_PORT}` },
      machines: results,
    };
    writeFileSync(inventoryPath(), dumpInventory(inv));
    log(`lab: ${count} machine(s) up in ${((Date.now() - started) / 1000).toFixed(1)} s; inventory at ${inventoryPath()}`);
    return inv;
  });
}

function ensureClientKey(cfg: LabConfig): { privatePath: string; publicKey: string } {
  const privatePath = join(cfg.dir, "id_ed25519");
  if (!existsSync(privatePath) || !existsSync(privatePath + ".pub")) {
    rmSync(privatePath, { force: true });
    rmSync(privatePath + ".pub", { force: true });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "drove-lab", "-f", privatePath]);
  }
  return { privatePath, publicKey: readFileSync(privatePath + ".pub", "utf8").trim() };
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns ? ["-n", netns, "link", "show", name] : ["link", "show", name];
  return (await run("ip", args, { allowFail: true })).code === 0;
}

/**
 * Every machine's systemd takes several inotify instances; the kernel's default
 * of 128 per user stops the lab at about 25 machines. Raise the limits (never
 * lower them) for as many machines as asked.
 */
async function ensureHostLimits(count: number): Promise<void> {
  const limits: [string, number][] = [
    ["/proc/sys/fs/inotify/max_user_instances", Math.max(1024, 64 * count)],
    ["/proc/sys/fs/inotify/max_user_watches", Math.max(524288, 16384 * count)],
  ];
  for (const [file, want] of limits) {
    const have = Number(readFileSync(file, "utf8").trim());
    if (have < want) writeFileSync(file, String(want));
  }
}

async function ensureBridge(cfg: LabConfig): Promise<void> {
  if (!(await linkExists(cfg.bridge))) {
    // Refuse a subnet the host already routes elsewhere.
    const route = await run("ip", ["-4", "route", "show", `${cfg.net}.0/24`], { allowFail: true });
    if (route.stdout.trim()) {
      throw new DroveError(`The lab's subnet ${cfg.net}.0/24 is already routed on this machine (${route.stdout.trim()})`, {
        fixes: ["set DROVE_LAB_NET to the first three octets of a free /24", "remove that route"],
      });
    }
    await run("ip", ["link", "add", cfg.bridge, "type", "bridge"]);
  }
  const addrs = await run("ip", ["-4", "-o", "addr", "show", "dev", cfg.bridge]);
  if (!addrs.stdout.includes(`${gateway(cfg)}/24`)) await run("ip", ["addr", "add", `${gateway(cfg)}/24`, "dev", cfg.bridge]);
  await run("ip", ["link", "set", cfg.bridge, "up"]);
  // Where bridged traffic passes through iptables (br_netfilter), let the lab's own through.
  if (existsSync("/proc/sys/net/bridge/bridge-nf-call-iptables")) {
    const rule = ["FORWARD", "-i", cfg.bridge, "-o", cfg.bridge, "-j", "ACCEPT"];
    if ((await run("iptables", ["-C", ...rule], { allowFail: true })).code !== 0) await run("iptables", ["-I", ...rule], { allowFail: true });
  }
}

async function ensureRegistry(cfg: LabConfig, log: Log): Promise<void> {
  const dir = join(cfg.dir, "registry");
  mkdirSync(join(dir, "data"), { recursive: true });
  const pidFile = join(dir, "pid");
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : undefined;
  if (isAlive(pid) && (await httpOk(`http://${registryAddress(cfg)}/v2/`))) return;
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log: {level: warn}",
      "storage:",
      `  filesystem: {rootdirectory: ${join(dir, "data")}}`,
      "  delete: {enabled: true}",
      "http:",
      `  addr: ${registryAddress(cfg)}`,
      "",
    ].join("\n"),
  );
  const newPid = spawnDetached("docker-registry", ["serve", config], join(dir, "log"));
  writeFileSync(pidFile, String(newPid));
  for (let i = 0; i < 50; i++) {
    if (await httpOk(`http://${registryAddress(cfg)}/v2/`)) return;
    await sleep(100);
  }
  log(`lab: warning: the registry did not answer on ${registryAddress(cfg)}; see ${join(dir, "log")}`);
}

/**
 * Lab machines reach nothing but the lab: Debian packages come through an
 * apt-cacher-ng on the bridge, which caches them in drove's cache for every
 * later lab.
 */
async function ensureAptProxy(cfg: LabConfig, log: Log): Promise<void> {
  const dir = join(cfg.dir, "apt-proxy");
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, "pid");
  const pid = readPid(pidFile);
  const url = `http://${gateway(cfg)}:${APT_PROXY_PORT}/acng-report.html`;
  if (isAlive(pid) && (await httpOk(url))) return;
  const cache = join(cacheDir(), "lab", "apt-cache");
  mkdirSync(cache, { recursive: true });
  // Its own configuration: no remapping to other mirrors (Debian's default
  // sends Debian requests to ftp.debian.org); it fetches what the machines ask for.
  const conf = join(dir, "conf");
  mkdirSync(conf, { recursive: true });
  writeFileSync(
    join(conf, "acng.conf"),
    [
      `CacheDir: ${cache}`,
      `LogDir: ${dir}`,
      "SupportDir: /usr/lib/apt-cacher-ng",
      `BindAddress: ${gateway(cfg)}`,
      `Port: ${APT_PROXY_PORT}`,
      `SocketPath: ${join(dir, "socket")}`,
      `PidFile: ${join(dir, "acng.pid")}`,
      "ForeGround: 1",
      "ReportPage: acng-report.html",
      "ExThreshold: 4",
      "",
    ].join("\n"),
  );
  const newPid = spawnDetached("apt-cacher-ng", ["-c", conf], join(dir, "console.log"));
  writeFileSync(pidFile, String(newPid));
  for (let i = 0; i < 50; i++) {
    if (await httpOk(url)) return;
    await sleep(100);
  }
  log(`lab: warning: the apt proxy did not answer on ${gateway(cfg)}:${APT_PROXY_PORT}; see ${join(dir, "console.log")}`);
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

function hostsFile(cfg: LabConfig, machines: Machine[]): string {
  return [
    "127.0.0.1 localhost",
    "::1 localhost ip6-localhost ip6-loopback",
    `${gateway(cfg)} lab-host registry.lab`,
    ...machines.map((m) => `${m.address} ${m.name} ${m.name}.lab`),
    "",
  ].join("\n");
}

function readPid(file: string): number | undefined {
  return existsSync(file) ? Number(readFileSync(file, "utf8").trim()) || undefined : undefined;
}

async function bootMachine(
  cfg: LabConfig,
  m: Machine,
  image: string,
  key: { privatePath: string; publicKey: string },
  hosts: string,
  log: Log,
): Promise<InventoryMachine> {
  mkdirSync(m.dir, { recursive: true });
  const hostKeyPath = join(m.dir, "ssh_host_ed25519_key");
  if (!existsSync(hostKeyPath + ".pub")) {
    rmSync(hostKeyPath, { force: true });
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `root@${m.name}`, "-f", hostKeyPath]);
  }
  const hostPub = readFileSync(hostKeyPath + ".pub", "utf8").trim();
  const hostKey = fingerprint(Buffer.from(hostPub.split(/\s+/)[1], "base64"));
  const idFile = join(m.dir, "machine-id");
  if (!existsSync(idFile)) writeFileSync(idFile, randomBytes(16).toString("hex") + "\n");
  const machineId = readFileSync(idFile, "utf8").trim();
  const entry: InventoryMachine = {
    name: m.name,
    address: m.address,
    port: 22,
    user: "root",
    privateKeyPath: key.privatePath,
    hostKey,
    machineId,
  };

  // What the machine booted: its image and how drove boots it. A change to either reboots it.
  const imageFile = join(m.dir, "image");
  const bootId = `${image}\nboot-format ${BOOT_FORMAT}`;
  const sameImage = existsSync(imageFile) && readFileSync(imageFile, "utf8") === bootId;
  if (isAlive(readPid(join(m.dir, "nspawn.pid"))) && sameImage && (await sshReady(entry, key.privatePath, 2_000))) {
    writeFileSync(join(m.root, "etc/hosts"), hosts);
    return entry;
  }
  if (!sameImage && existsSync(imageFile)) log(`lab: ${m.name} runs an older image; rebooting it onto ${image}`);
  // Whatever a crashed run left for this machine goes first.
  await destroyMachine(cfg, m, { keepIdentity: true });

  for (const d of ["upper", "work", "root", "var-lib-docker", "var-lib-containerd", "var-lib-containers", "tpm"]) {
    mkdirSync(join(m.dir, d), { recursive: true });
  }
  await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${image},upperdir=${join(m.dir, "upper")},workdir=${join(m.dir, "work")}`, m.root]);
  writeFileSync(imageFile, bootId);

  // Identity: hostname, machine-id, SSH host key, who may log in.
  const etc = join(m.root, "etc");
  writeFileSync(join(etc, "hostname"), m.name + "\n");
  writeFileSync(join(etc, "machine-id"), machineId + "\n");
  writeFileSync(join(etc, "hosts"), hosts);
  writeFileSync(join(etc, "ssh", "ssh_host_ed25519_key"), readFileSync(hostKeyPath), { mode: 0o600 });
  writeFileSync(join(etc, "ssh", "ssh_host_ed25519_key.pub"), hostPub + "\n");
  mkdirSync(join(m.root, "root", ".ssh"), { recursive: true, mode: 0o700 });
  writeFileSync(join(m.root, "root", ".ssh", "authorized_keys"), key.publicKey + "\n", { mode: 0o600 });
  // tpm2-tools inside reach this machine's own software TPM.
  writeFileSync(join(etc, "environment"), `TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=${TPM_PORT}"\n`);
  mkdirSync(join(etc, "docker"), { recursive: true });
  writeFileSync(join(etc, "docker", "daemon.json"), JSON.stringify({ "insecure-registries": [registryAddress(cfg)] }, null, 2) + "\n");
  writeFileSync(join(etc, "apt", "apt.conf.d", "01drove-lab-proxy"), `Acquire::http::Proxy "http://${gateway(cfg)}:${APT_PROXY_PORT}";\n`);
  mkdirSync(join(etc, "containers", "registries.conf.d"), { recursive: true });
  // Machines run under a cgroup that delegates no pids controller, in a sandbox
  // where limits cannot be raised: Podman uses runc (crun raises RLIMIT_MEMLOCK
  // for itself) and sets no default pids limit.
  writeFileSync(join(etc, "containers", "containers.conf"), '[containers]\npids_limit = 0\n\n[engine]\nruntime = "runc"\n');
  writeFileSync(
    join(etc, "containers", "registries.conf.d", "50-drove-lab.conf"),
    `[[registry]]\nlocation = "${registryAddress(cfg)}"\ninsecure = true\n`,
  );

  // Network: its own namespace, a veth into the lab's bridge.
  await run("ip", ["netns", "add", m.netns]);
  await run("ip", ["link", "add", m.link, "type", "veth", "peer", "name", "host0", "netns", m.netns]);
  await run("ip", ["link", "set", m.link, "master", cfg.bridge, "up"]);
  await run("ip", ["-n", m.netns, "link", "set", "lo", "up"]);
  await run("ip", ["-n", m.netns, "addr", "add", `${m.address}/24`, "dev", "host0"]);
  await run("ip", ["-n", m.netns, "link", "set", "host0", "up"]);
  await run("ip", ["-n", m.netns, "route", "add", "default", "via", gateway(cfg)]);
  // /proc/sys is read-only inside the machine; container engines need forwarding
  // in its (own) namespace, so the lab sets it from outside.
  await run("ip", ["netns", "exec", m.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);

  // A software TPM of its own, reachable only from inside its namespace.
  const tpm = join(m.dir, "tpm");
  if (!existsSync(join(tpm, "tpm2-00.permall"))) {
    await run("swtpm_setup", ["--tpm2", "--tpmstate", tpm, "--createek", "--create-ek-cert", "--create-platform-cert", "--lock-nvram", "--overwrite"]);
  }
  await run("ip", [
    "netns", "exec", m.netns, "swtpm", "socket", "--tpm2", "--tpmstate", `dir=${tpm}`,
    "--server", `type=tcp,port=${TPM_PORT},bindaddr=127.0.0.1`, "--ctrl", `type=tcp,port=${TPM_PORT + 1},bindaddr=127.0.0.1`,
    "--flags", "not-need-init,startup-clear", "--daemon", "--pid", `file=${join(m.dir, "swtpm.pid")}`, "--log", `file=${join(m.dir, "swtpm.log")}`,
  ]);

  // Each machine in a cgroup of its own: nspawn puts the machine's systemd in
  // a `payload` cgroup beside its own, so machines started from one cgroup
  // would share one tree, and a unit named alike on two machines one cgroup.
  // The supervisor starts nspawn in it (again after each reboot, on the image to boot next).
  const cgroup = machineCgroup(cfg, m);
  if (cgroup) mkdirSync(cgroup, { recursive: true });
  const pid = spawnDetached(
    "bash",
    [
      SUPERVISE, m.dir, image, cgroup ?? "", "--", "systemd-nspawn",
      "-b", "-q", "-D", m.root, "-M", m.netns, "--register=no", "--keep-unit", "--capability=all",
      "--system-call-filter=@keyring bpf", `--network-namespace-path=/run/netns/${m.netns}`,
      "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
      `--bind=${join(m.dir, "var-lib-docker")}:/var/lib/docker`,
      `--bind=${join(m.dir, "var-lib-containerd")}:/var/lib/containerd`,
      `--bind=${join(m.dir, "var-lib-containers")}:/var/lib/containers`,
    ],
    join(m.dir, "console.log"),
    // cgroup v2 for runc; /proc/sys/net writable (the machine's own namespace) for
    // container networking (CNI's portmap, Docker's forwarding).
    { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1", SYSTEMD_NSPAWN_API_VFS_WRITABLE: "network" },
  );
  writeFileSync(join(m.dir, "nspawn.pid"), String(pid));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) {
      const tail = readFileSync(join(m.dir, "console.log"), "utf8").trim().split("\n").slice(-5).join("\n");
      throw new DroveError(`Machine ${m.name} stopped while booting:\n${tail}\n(full log: ${join(m.dir, "console.log")})`);
    }
    if (await sshReady(entry, key.privatePath, 3_000)) {
      log(`lab: ${m.name} up at ${m.address} (${hostKey})`);
      return entry;
    }
    await sleep(200);
  }
  throw new DroveError(`Machine ${m.name} did not answer SSH on ${m.address} within 120 s`, {
    fixes: [`read its console log at ${join(m.dir, "console.log")}`, "run `drove lab down` and then `drove lab up` again"],
  });
}

function portOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.once("timeout", () => done(false));
  });
}

/** True once the machine logs us in with its pinned key and its systemd is running. */
async function sshReady(m: InventoryMachine, privateKeyPath: string, timeoutMs: number): Promise<boolean> {
  if (!(await portOpen(m.address, m.port, timeoutMs))) return false;
  try {
    const conn = await SshConnection.open({
      host: m.address,
      port: m.port,
      user: m.user,
      privateKey: readFileSync(privateKeyPath, "utf8"),
      hostKey: m.hostKey,
      connectTimeoutMs: timeoutMs,
    });
    try {
      const r = await conn.exec(sh`systemctl is-system-running`);
      return ["running", "degraded"].includes(r.stdout.trim());
    } finally {
      conn.close();
    }
  } catch {
    return false;
  }
}

function existingMachines(cfg: LabConfig): Machine[] {
  const dir = join(cfg.dir, "machines");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((n) => /^m(\d+)$/.exec(n))
    .filter((x): x is RegExpExecArray => x !== null)
    .map((x) => machine(cfg, Number(x[1])));
}

/** Processes whose command line names the given directory (what a crashed run left). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(dir + "/") || cmdline.split("\0").includes(dir)) pids.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return pids;
}

function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1]?.replace(/\\040/g, " "))
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + "/")))
    .sort((a, b) => b.length - a.length);
}

async function netnsPids(netns: string): Promise<number[]> {
  const r = await run("ip", ["netns", "pids", netns], { allowFail: true });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

async function killAll(pids: number[], graceMs: number): Promise<void> {
  for (const p of pids) {
    try {
      process.kill(p, "SIGTERM");
    } catch {
      // gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(isAlive)) await sleep(100);
  for (const p of pids.filter(isAlive)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Stops a machine and removes every trace of it (keeping its identity when asked). */
async function destroyMachine(cfg: LabConfig, m: Machine, opts: { keepIdentity?: boolean } = {}): Promise<void> {
  // nspawn turns SIGTERM into an orderly shutdown of the machine.
  const pid = readPid(join(m.dir, "nspawn.pid"));
  if (isAlive(pid)) await killAll([pid!], 10_000);
  if (existsSync(`/run/netns/${m.netns}`)) await killAll(await netnsPids(m.netns), 2_000);
  await killAll(processesUnder(m.dir), 2_000);
  for (const mnt of mountsUnder(m.dir)) {
    if ((await run("umount", [mnt], { allowFail: true })).code !== 0) await run("umount", ["-l", mnt], { allowFail: true });
  }
  if (existsSync(`/run/netns/${m.netns}`)) await run("ip", ["netns", "del", m.netns], { allowFail: true });
  if (await linkExists(m.link)) await run("ip", ["link", "del", m.link], { allowFail: true });
  const cgroup = machineCgroup(cfg, m);
  if (cgroup) await removeCgroup(cgroup);
  if (opts.keepIdentity) {
    for (const d of ["upper", "work", "root", "var-lib-docker", "var-lib-containerd", "var-lib-containers", "nspawn.pid", "swtpm.pid", "image", "os"]) {
      rmSync(join(m.dir, d), { recursive: true, force: true });
    }
  } else {
    rmSync(m.dir, { recursive: true, force: true });
  }
}

/**
 * Removes every machine, process, mount, namespace and link of the lab in
 * `cfg.dir` under `cfg.prefix`, and the files that described them; returns how
 * many machines there were. Throws if anything is left, naming what was
 * being done (`doing`) and what is left.
 */
async function teardown(cfg: LabConfig, doing = "`drove lab down`"): Promise<number> {
  const machines = existingMachines(cfg);
  // Namespaces named like ours but with no directory (a crashed run) count too.
  const netnsList = (await run("ip", ["netns", "list"], { allowFail: true })).stdout
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((n) => new RegExp(`^${cfg.prefix}-m\\d+$`).test(n));
  for (const n of netnsList) {
    const idx = Number(n.slice(`${cfg.prefix}-m`.length));
    if (Number.isInteger(idx) && !machines.some((m) => m.index === idx)) machines.push(machine(cfg, idx));
  }
  await Promise.all(machines.map((m) => destroyMachine(cfg, m)));
  await killAll(processesUnder(cfg.dir), 3_000);
  for (const mnt of mountsUnder(cfg.dir)) await run("umount", ["-l", mnt], { allowFail: true });
  if (await linkExists(cfg.bridge)) await run("ip", ["link", "del", cfg.bridge], { allowFail: true });
  await run("iptables", ["-D", "FORWARD", "-i", cfg.bridge, "-o", cfg.bridge, "-j", "ACCEPT"], { allowFail: true });
  for (const f of ["machines", "registry", "apt-proxy", "id_ed25519", "id_ed25519.pub", "inventory.yaml"]) {
    rmSync(join(cfg.dir, f), { recursive: true, force: true });
  }
  const left = await leftovers(cfg);
  if (left.length) throw new DroveError(`${doing} could not remove everything: ${left.join("; ")}`);
  return machines.length;
}

/** Stops every machine, the registry and the bridge; leaves nothing behind. */
export async function labDown(log: Log = console.error): Promise<void> {
  const cfg = labConfig();
  if (process.getuid?.() !== 0) throw new DroveError("Stopping the lab needs root", { fixes: ["run it as root", "run it with sudo"] });
  await withLock(cfg, async () => {
    const owner = existsSync(ownerFile(cfg)) ? readFileSync(ownerFile(cfg), "utf8").trim() : cfg.dir;
    if (owner !== cfg.dir && existsSync(join(owner, "machines"))) {
      throw new DroveError(`The lab prefix "${cfg.prefix}" belongs to the lab in ${owner}, not to this one`, {
        fixes: [`run \`drove lab down\` with DROVE_STATE=${owner.replace(/\/lab$/, "")}`, "set DROVE_LAB_PREFIX to this lab's prefix"],
      });
    }
    const removed = await teardown(cfg);
    releasePrefix(cfg);
    log(`lab: down (${removed} machine(s) removed)`);
  });
}

/** What of the lab is still on this machine: processes, mounts, namespaces, links. */
export async function leftovers(cfg: LabConfig = labConfig()): Promise<string[]> {
  const out: string[] = [];
  const procs = processesUnder(cfg.dir);
  if (procs.length) out.push(`processes ${procs.join(", ")}`);
  const mounts = mountsUnder(cfg.dir);
  if (mounts.length) out.push(`mounts ${mounts.join(", ")}`);
  const netns = (await run("ip", ["netns", "list"], { allowFail: true })).stdout
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((n) => new RegExp(`^${cfg.prefix}-m\\d+$`).test(n));
  if (netns.length) out.push(`network namespaces ${netns.join(", ")}`);
  const links = (await run("ip", ["-o", "link", "show"], { allowFail: true })).stdout
    .split("\n")
    .map((l) => l.split(":")[1]?.trim().split("@")[0])
    .filter((n): n is string => !!n && (n === cfg.bridge || new RegExp(`^${cfg.prefix}-m\\d+$`).test(n)));
  if (links.length) out.push(`links ${links.join(", ")}`);
  const root = cgroupRoot();
  const cgroups = root && existsSync(join(root, LAB_CGROUP))
    ? readdirSync(join(root, LAB_CGROUP)).filter((n) => new RegExp(`^${cfg.prefix}-m\\d+$`).test(n))
    : [];
  if (cgroups.length) out.push(`cgroups ${cgroups.map((n) => join(root!, LAB_CGROUP, n)).join(", ")}`);
  return out;
}

/**
 * CPU seconds (user + system) every machine of the lab has used since it
 * booted, summed from their cgroups: what the work sent to the machines cost
 * them, whatever else this box is doing.
 */
export function machinesCpuSeconds(cfg: LabConfig = labConfig()): number {
  const root = cgroupRoot();
  const dir = root ? join(root, LAB_CGROUP) : undefined;
  if (!dir || !existsSync(dir)) return 0;
  let usec = 0;
  for (const n of readdirSync(dir).filter((x) => new RegExp(`^${cfg.prefix}-m\\d+$`).test(x))) {
    const m = /^usage_usec (\d+)$/m.exec(readFileSync(join(dir, n, "cpu.stat"), "utf8"));
    if (m) usec += Number(m[1]);
  }
  return usec / 1e6;
}

/** Where machines' cgroups live, under the cgroup v2 hierarchy. */
const LAB_CGROUP = "drove-lab";

/** The cgroup v2 hierarchy: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host. */
function cgroupRoot(): string | undefined {
  return ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].find((d) => existsSync(join(d, "cgroup.controllers")));
}

function machineCgroup(cfg: LabConfig, m: Pick<Machine, "name">): string | undefined {
  const root = cgroupRoot();
  return root ? join(root, LAB_CGROUP, `${cfg.prefix}-${m.name}`) : undefined;
}

/** A lab machine's cgroup (every process of it: systemd-nspawn, its systemd, sshd...), or undefined without cgroup v2. */
export function labMachineCgroup(name: string, cfg: LabConfig = labConfig()): string | undefined {
  return machineCgroup(cfg, { name });
}

/** Removes a cgroup and the ones below it, deepest first, once their processes are gone. */
async function removeCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) await removeCgroup(join(dir, e.name));
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return;
      await sleep(100); // EBUSY while the last processes exit
    }
  }
}

export interface MachineStatus {
  readonly name: string;
  readonly address: string;
  readonly running: boolean;
  readonly ssh: boolean;
}

export async function labStatus(): Promise<{ machines: MachineStatus[]; registry: boolean }> {
  const cfg = labConfig();
  const keyPath = join(cfg.dir, "id_ed25519");
  let inv: Inventory | undefined;
  try {
    inv = loadInventory();
  } catch {
    inv = undefined;
  }
  const machines = await Promise.all(
    existingMachines(cfg)
      .sort((a, b) => a.index - b.index)
      .map(async (m) => {
        const entry = inv?.machines.find((x) => x.name === m.name);
        const running = isAlive(readPid(join(m.dir, "nspawn.pid")));
        const ssh = running && !!entry && (await sshReady(entry, keyPath, 2_000));
        return { name: m.name, address: m.address, running, ssh };
      }),
  );
  return { machines, registry: await httpOk(`http://${registryAddress(cfg)}/v2/`) };
}

