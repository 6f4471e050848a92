/**
 * The etcd control plane, pure: what each member's files say, which commands
 * change membership, how etcdctl's answers read. Nothing here touches SSH.
 *
 * On each control-plane host drove keeps:
 *   /etc/drove/etcd/ca.crt, member.crt, member.key (etcd:etcd 0600), client.crt, client.key (root 0600)
 *   /etc/drove/etcd/etcd.env      the member's settings (name, URLs, TLS), read by the unit
 *   /etc/drove/etcd/initial.env   how it joined (initial-cluster, new or existing): only read on its first start
 *   /etc/drove/etcd/etcdctl.env   `set -a; . /etc/drove/etcd/etcdctl.env` makes a root shell's etcdctl talk to the cluster
 *   /etc/systemd/system/drove-etcd.service
 *   /var/lib/drove/etcd           the data directory (etcd:etcd 0700)
 */
import { and, sh, type ShellCommand } from "../../src/quote";
import { planFile, sha256, type FileDesired, type Step } from "../file/operations";
import type { FileFact } from "../file/facts";
import { renderUnitFile } from "../systemd-unit/unit-file";

export const ETCD_DIR = "/etc/drove/etcd";
export const DATA_DIR = "/var/lib/drove/etcd";
export const UNIT_NAME = "drove-etcd.service";
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;
export const CLIENT_PORT = 2379;
export const PEER_PORT = 2380;
export const INITIAL_ENV = `${ETCD_DIR}/initial.env`;
/** The package Debian (and the lab image) ships etcd in, and its own unit, which drove's replaces on a control-plane host. */
export const DEBIAN_UNIT = "etcd.service";

export const PATHS = {
  ca: `${ETCD_DIR}/ca.crt`,
  memberCert: `${ETCD_DIR}/member.crt`,
  memberKey: `${ETCD_DIR}/member.key`,
  clientCert: `${ETCD_DIR}/client.crt`,
  clientKey: `${ETCD_DIR}/client.key`,
  env: `${ETCD_DIR}/etcd.env`,
  etcdctlEnv: `${ETCD_DIR}/etcdctl.env`,
  unit: UNIT_PATH,
} as const;

/** Every file drove keeps for a member, besides initial.env (written once, when the member joins). */
export const MEMBER_FILES = Object.values(PATHS);

function host(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}

export function clientUrl(address: string): string {
  return `https://${host(address)}:${CLIENT_PORT}`;
}

export function peerUrl(address: string): string {
  return `https://${host(address)}:${PEER_PORT}`;
}

/** One member as the program wants it. */
export interface MemberDesired {
  /** The member's name: its host's construct id. */
  readonly name: string;
  /** The address other members and clients reach it at. */
  readonly address: string;
}

/** The whole control plane as the program wants it. */
export interface ClusterDesired {
  readonly cluster: string;
  readonly caPem: string;
  readonly clientCertPem: string;
  /** A secret. */
  readonly clientKeyPem: string;
  readonly members: readonly (MemberDesired & { readonly certPem: string; /** A secret. */ readonly keyPem: string })[];
}

export function initialClusterToken(cluster: string): string {
  return `drove-${cluster}`;
}

/** `ETCD_*` settings of one member: identity, URLs and TLS. Stable across membership changes, so they restart nothing. */
export function renderMemberEnv(cluster: string, m: MemberDesired): string {
  const lines = [
    `# drove: etcd member ${m.name} of cluster ${cluster}. Managed by drove; edits are reverted.`,
    `ETCD_NAME=${m.name}`,
    `ETCD_DATA_DIR=${DATA_DIR}`,
    `ETCD_LISTEN_PEER_URLS=${peerUrl(m.address)}`,
    `ETCD_LISTEN_CLIENT_URLS=${clientUrl(m.address)},https://127.0.0.1:${CLIENT_PORT}`,
    `ETCD_ADVERTISE_CLIENT_URLS=${clientUrl(m.address)}`,
    `ETCD_INITIAL_ADVERTISE_PEER_URLS=${peerUrl(m.address)}`,
    `ETCD_INITIAL_CLUSTER_TOKEN=${initialClusterToken(cluster)}`,
    `ETCD_CERT_FILE=${PATHS.memberCert}`,
    `ETCD_KEY_FILE=${PATHS.memberKey}`,
    `ETCD_TRUSTED_CA_FILE=${PATHS.ca}`,
    `ETCD_CLIENT_CERT_AUTH=true`,
    `ETCD_PEER_CERT_FILE=${PATHS.memberCert}`,
    `ETCD_PEER_KEY_FILE=${PATHS.memberKey}`,
    `ETCD_PEER_TRUSTED_CA_FILE=${PATHS.ca}`,
    `ETCD_PEER_CLIENT_CERT_AUTH=true`,
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * How a member joins: `new` (every initial member, at bootstrap) or `existing`
 * (after `etcdctl member add`). etcd reads it only while its data directory is
 * empty, so it never re-initialises a member that has data.
 */
export function renderInitialEnv(initialCluster: string, state: "new" | "existing"): string {
  return `ETCD_INITIAL_CLUSTER=${initialCluster}\nETCD_INITIAL_CLUSTER_STATE=${state}\n`;
}

/** `m1=https://10.0.0.11:2380,m2=...`, in the order given. */
export function initialCluster(members: readonly MemberDesired[]): string {
  return members.map((m) => `${m.name}=${peerUrl(m.address)}`).join(",");
}

export function renderUnit(cluster: string): string {
  return renderUnitFile({
    Unit: {
      Description: `etcd member of drove cluster ${cluster}`,
      Documentation: "https://etcd.io/docs",
      After: "network-online.target",
      Wants: "network-online.target",
      // Debian's own etcd (localhost only) would hold the ports.
      Conflicts: DEBIAN_UNIT,
    },
    Service: {
      Type: "notify",
      User: "etcd",
      EnvironmentFile: [PATHS.env, `-${INITIAL_ENV}`],
      ExecStart: "/usr/bin/etcd",
      Restart: "on-failure",
      RestartSec: "5",
      TimeoutStartSec: "infinity",
      LimitNOFILE: "65536",
    },
    Install: { WantedBy: "multi-user.target" },
  });
}

/** For a root shell on a member: `set -a; . /etc/drove/etcd/etcdctl.env; set +a; etcdctl member list`. */
export function renderEtcdctlEnv(endpoints: readonly string[]): string {
  return [
    "ETCDCTL_API=3",
    `ETCDCTL_ENDPOINTS=${endpoints.join(",")}`,
    `ETCDCTL_CACERT=${PATHS.ca}`,
    `ETCDCTL_CERT=${PATHS.clientCert}`,
    `ETCDCTL_KEY=${PATHS.clientKey}`,
    "",
  ].join("\n");
}

/** Every file of a member, with its content, mode and owner. */
export function memberFiles(d: ClusterDesired, name: string): FileDesired[] {
  const m = d.members.find((x) => x.name === name);
  if (!m) throw new Error(`no member ${name} in cluster ${d.cluster}`);
  const file = (path: string, content: string, mode = "0644", owner = "root", group = "root"): FileDesired => ({ path, content, mode, owner, group, createParents: true });
  return [
    file(PATHS.ca, d.caPem),
    file(PATHS.memberCert, m.certPem),
    file(PATHS.memberKey, m.keyPem, "0600", "etcd", "etcd"),
    file(PATHS.clientCert, d.clientCertPem),
    file(PATHS.clientKey, d.clientKeyPem, "0600"),
    file(PATHS.env, renderMemberEnv(d.cluster, m)),
    file(PATHS.etcdctlEnv, renderEtcdctlEnv(d.members.map((x) => clientUrl(x.address)))),
    file(PATHS.unit, renderUnit(d.cluster)),
  ];
}

/** Files whose change needs the member restarted (its settings, certificates, unit); etcdctl.env needs nothing. */
export function needsRestart(path: string): boolean {
  return path !== PATHS.etcdctlEnv && path !== PATHS.clientCert && path !== PATHS.clientKey;
}

/** The steps that bring a member's files in shape ([] when they are), and whether the member must restart for them. */
export function planMemberFiles(d: ClusterDesired, name: string, facts: ReadonlyMap<string, FileFact>): { steps: Step[]; restart: boolean; unitChanged: boolean } {
  const steps: Step[] = [];
  let restart = false;
  let unitChanged = false;
  for (const f of memberFiles(d, name)) {
    const fact = facts.get(f.path) ?? { state: "absent" as const };
    const s = planFile(f, fact);
    if (s.length && needsRestart(f.path)) restart = true;
    if (s.length && f.path === PATHS.unit && (fact.state !== "file" || fact.sha256 !== sha256(f.content))) unitChanged = true;
    steps.push(...s.map((x) => (f.path === PATHS.memberKey || f.path === PATHS.clientKey ? { ...x, description: x.description.replace(/^write new content to/, "write a new key to") } : x)));
  }
  return { steps, restart, unitChanged };
}

/** The data directory, made (empty) for a member about to join an existing cluster, or kept as it is. */
export function dataDirCommand(wipe: boolean): ShellCommand {
  const make = sh`mkdir -p /var/lib/drove && install -d -m 0700 -o etcd -g etcd ${DATA_DIR}`;
  return wipe ? and(sh`rm -rf ${DATA_DIR}`, make) : make;
}

/** Writes initial.env (etcd:etcd can read it; it holds no secret). */
export function initialEnvStep(initial: string, state: "new" | "existing"): Step {
  return {
    description: `record how the member joins (${state})`,
    command: sh`mkdir -p ${ETCD_DIR} && umask 022 && cat > ${INITIAL_ENV}`,
    stdin: renderInitialEnv(initial, state),
  };
}

/** Debian's etcd.service, where the package enabled or started it, is stopped and disabled: it would hold the same ports. */
export const stopDebianUnit = sh`if systemctl is-enabled --quiet ${DEBIAN_UNIT} 2>/dev/null || systemctl is-active --quiet ${DEBIAN_UNIT} 2>/dev/null; then systemctl disable --now ${DEBIAN_UNIT}; fi`;

/** Starts (or restarts) the member without waiting for quorum: the provider then waits for health. */
export function startCommand(restart: boolean, unitChanged: boolean): ShellCommand {
  const reload = unitChanged ? sh`systemctl daemon-reload && ` : sh``;
  return sh`${reload}systemctl enable --quiet ${UNIT_NAME} && systemctl ${restart ? "restart" : "start"} --no-block ${UNIT_NAME}`;
}

/** Stops a member, if there is one. */
export const stopMemberCommand = sh`systemctl stop ${UNIT_NAME} >/dev/null 2>&1; true`;

/** Everything drove made for a member: the unit stopped, disabled and gone, its files, certificates and data removed. */
export const removeMemberCommand = sh`systemctl disable --now ${UNIT_NAME} >/dev/null 2>&1; systemctl reset-failed ${UNIT_NAME} >/dev/null 2>&1; rm -f ${UNIT_PATH} && systemctl daemon-reload && rm -rf ${ETCD_DIR} ${DATA_DIR} && { rmdir /etc/drove /var/lib/drove 2>/dev/null; true; }`;

/**
 * etcdctl (API v3) with the client certificate drove keeps on the member it
 * runs on. `endpoints` are client URLs.
 */
export function etcdctl(endpoints: readonly string[], args: ShellCommand): ShellCommand {
  return sh`ETCDCTL_API=3 etcdctl --endpoints=${endpoints.join(",")} --cacert=${PATHS.ca} --cert=${PATHS.clientCert} --key=${PATHS.clientKey} --dial-timeout=3s --command-timeout=5s ${args}`;
}

/** One line of `etcdctl member list -w simple`. */
export interface MemberInfo {
  /** Hex, as etcdctl prints and takes it. */
  readonly id: string;
  readonly started: boolean;
  /** "" until an added member first starts. */
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
}

/** `8e9e05c52164694d, started, m1, https://10.0.0.11:2380, https://10.0.0.11:2379, false` per line. */
export function parseMemberList(stdout: string): MemberInfo[] {
  const out: MemberInfo[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    const f = line.split(",").map((x) => x.trim());
    if (f.length < 5 || !/^[0-9a-f]+$/.test(f[0]) || (f[1] !== "started" && f[1] !== "unstarted")) {
      throw new Error(`unexpected line from etcdctl member list: ${JSON.stringify(line.slice(0, 200))}`);
    }
    out.push({ id: f[0], started: f[1] === "started", name: f[2], peerUrls: f[3] ? f[3].split(" ") : [], clientUrls: f[4] ? f[4].split(" ") : [] });
  }
  return out;
}

/** Health per client URL from `etcdctl endpoint health -w json`. */
export function parseEndpointHealth(stdout: string): Map<string, { healthy: boolean; error?: string }> {
  const out = new Map<string, { healthy: boolean; error?: string }>();
  const start = stdout.indexOf("[");
  if (start < 0) return out;
  const list = JSON.parse(stdout.slice(start)) as { endpoint: string; health: boolean; error?: string }[];
  for (const e of list) out.set(e.endpoint, { healthy: e.health === true, ...(e.error ? { error: e.error } : {}) });
  return out;
}

/** `ETCD_INITIAL_CLUSTER="..."` from `etcdctl member add`'s answer. */
export function parseMemberAdd(stdout: string): { id: string; initialCluster: string } {
  const id = /Member\s+([0-9a-f]+) added/.exec(stdout)?.[1];
  const ic = /ETCD_INITIAL_CLUSTER="([^"]*)"/.exec(stdout)?.[1];
  if (!id || !ic) throw new Error(`unexpected answer from etcdctl member add: ${JSON.stringify(stdout.slice(0, 300))}`);
  return { id, initialCluster: ic };
}

/** A member's state as `read` reports it ("modified": a file of it was changed by hand); the program always wants "healthy". */
export type MemberStatus = "healthy" | "unhealthy" | "stopped" | "modified" | "not a member" | "absent";

/** A member that must join: `added` when `member add` already ran for it (it was listed, never started). */
export interface Join {
  readonly member: MemberDesired;
  readonly added?: MemberInfo;
}

/**
 * What membership must change, one member at a time: who joins (in the
 * program's order; a member that was added but never started joins without a
 * second `member add`), who leaves (members the cluster lists that the
 * program does not name).
 */
export function planMembership(current: readonly MemberInfo[], desired: readonly MemberDesired[]): { join: Join[]; remove: MemberInfo[] } {
  const join: Join[] = [];
  const kept = new Set<MemberInfo>();
  for (const d of desired) {
    const m = current.find((c) => c.peerUrls.includes(peerUrl(d.address)) && (c.name === d.name || (c.name === "" && !c.started)));
    if (m) kept.add(m);
    if (!m) join.push({ member: d });
    else if (!m.started) join.push({ member: d, added: m });
  }
  return { join, remove: current.filter((m) => !kept.has(m)).sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id)) };
}

/** etcd's quorum for `n` voting members. */
export function quorum(n: number): number {
  return Math.floor(n / 2) + 1;
}
