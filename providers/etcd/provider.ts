/**
 * `drove:index:EtcdCluster`: a cluster's etcd control plane, one resource for
 * all its members, because membership changes must happen in order: a
 * member joins only after `etcdctl member add` on the running cluster, leaves
 * only through `member remove`, and the cluster is checked healthy before and
 * after every change. Files and units are written with the same operations
 * the File and SystemdUnit kinds use (atomic writes, keys 0600 from the first
 * byte, secrets on stdin).
 */
import type { ResourceKind } from "../kind";
import { applySteps, checkConnection, diffInputs, isUnknown, runChecked, withHost, type Failures } from "../common";
import { DroveError, HostError, isConnectError, reasonOf } from "../../src/errors";
import { sh } from "../../src/quote";
import { redact, wrapSecret } from "../../src/secrets";
import { describeTarget, type SshConnection, type SshTarget } from "../../src/ssh";
import { sha256 } from "../file/operations";
import { clusterViewCommand, memberFactCommand, parseMemberFact, splitClusterView, type MemberFact } from "./facts";
import {
  clientUrl,
  dataDirCommand,
  etcdctl,
  initialCluster,
  initialEnvStep,
  memberFiles,
  parseEndpointHealth,
  parseMemberAdd,
  parseMemberList,
  peerUrl,
  planMemberFiles,
  planMembership,
  quorum,
  removeMemberCommand,
  stopMemberCommand,
  startCommand,
  stopDebianUnit,
  UNIT_NAME,
  type ClusterDesired,
  type MemberDesired,
  type MemberInfo,
  type MemberStatus,
} from "./operations";

export interface EtcdMemberInputs {
  readonly connection: SshTarget;
  /** Where peers and clients reach it. */
  readonly address: string;
  /** Its certificate (server and peer), PEM. */
  readonly certPem: string;
  /** What drove found (read) or wants (always "healthy"). */
  readonly status: MemberStatus;
}

export interface EtcdClusterInputs {
  readonly cluster: string;
  readonly caPem: string;
  readonly clientCertPem: string;
  /** A secret: the client key drove (and a root shell on a member) uses. */
  readonly clientKeyPem: string;
  /** By member name (the host's construct id). */
  readonly members: Record<string, EtcdMemberInputs>;
  /** A secret: each member's private key, by member name. */
  readonly memberKeys: Record<string, string>;
  /** Members the cluster lists that the program does not name (found by read; the program wants none). */
  readonly extraMembers: string[];
}

export interface EtcdClusterOutputs extends EtcdClusterInputs {
  /** Client URLs, one per member. */
  readonly endpoints: string[];
  /** etcd's member ids (hex), by name. */
  readonly memberIds: Record<string, string>;
}

const SECRET_PATHS = ["clientKeyPem", "memberKeys"] as const;
const NAME = /^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/;
const MEMBER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** How long a member may take to become healthy after a start. */
const HEALTH_ATTEMPTS = 90;
/** How often read asks again about a running member that seems unhealthy. */
const READ_RETRIES = 2;

function names(i: EtcdClusterInputs): string[] {
  return Object.keys(i.members).sort();
}

function desired(i: EtcdClusterInputs): ClusterDesired {
  return {
    cluster: i.cluster,
    caPem: i.caPem,
    clientCertPem: i.clientCertPem,
    clientKeyPem: i.clientKeyPem,
    members: names(i).map((n) => ({ name: n, address: i.members[n].address, certPem: i.members[n].certPem, keyPem: i.memberKeys[n] })),
  };
}

function memberList(i: EtcdClusterInputs): MemberDesired[] {
  return names(i).map((n) => ({ name: n, address: i.members[n].address }));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every secret a message could carry, for redaction. */
function secretsOf(i: EtcdClusterInputs): string[] {
  return [i.clientKeyPem, ...Object.values(i.memberKeys ?? {})].filter((x): x is string => typeof x === "string");
}

async function memberFact(conn: SshConnection): Promise<MemberFact> {
  return parseMemberFact(await runChecked(conn, "inspect the etcd member", { command: memberFactCommand(), probe: true }));
}

/** What the cluster says of itself, asked through a member's etcdctl. */
interface ClusterView {
  readonly runner: string;
  readonly members: MemberInfo[];
  /** By client URL. */
  readonly health: Map<string, { healthy: boolean; error?: string }>;
}

async function viewFrom(i: EtcdClusterInputs, runner: string, endpoints: readonly string[]): Promise<ClusterView | undefined> {
  const out = await withHost(i.members[runner].connection, (conn) => runChecked(conn, "ask etcd for its members", { command: clusterViewCommand(endpoints) }));
  const { memberList: ml, health } = splitClusterView(out);
  if (ml === undefined) return undefined;
  const members = parseMemberList(ml);
  const urls = [...new Set([...endpoints, ...members.flatMap((m) => m.clientUrls)])];
  // Health of every listed member, even one the program no longer names.
  const missing = urls.filter((u) => !endpoints.includes(u));
  let h = parseEndpointHealth(health);
  if (missing.length) {
    const again = await withHost(i.members[runner].connection, (conn) => conn.exec(etcdctl(urls, sh`endpoint health -w json`)));
    h = parseEndpointHealth(again.stdout);
  }
  return { runner, members, health: h };
}

/** Asks each candidate in turn until one answers for the cluster. */
async function clusterView(i: EtcdClusterInputs, candidates: readonly string[], endpoints: readonly string[]): Promise<ClusterView | undefined> {
  for (const c of candidates) {
    try {
      const v = await viewFrom(i, c, endpoints);
      if (v) return v;
    } catch (err) {
      if (!isConnectError(err) && !(err instanceof HostError)) throw err;
    }
  }
  return undefined;
}

function healthOf(v: ClusterView, m: MemberInfo): { healthy: boolean; error?: string } {
  for (const u of m.clientUrls) {
    const h = v.health.get(u);
    if (h) return h;
  }
  return { healthy: false, error: m.started ? "no health answer" : "it was added but never started" };
}

function describeMember(m: MemberInfo): string {
  return `${m.name || m.id} at ${m.clientUrls[0] ?? m.peerUrls[0] ?? m.id}`;
}

/** Waits until every given client URL answers healthy. */
async function waitHealthy(i: EtcdClusterInputs, runner: string, urls: readonly string[], what: string): Promise<void> {
  let last = "";
  for (let n = 0; n < HEALTH_ATTEMPTS; n++) {
    const r = await withHost(i.members[runner].connection, (conn) => conn.exec(etcdctl(urls, sh`endpoint health -w json`)));
    let h: Map<string, { healthy: boolean; error?: string }>;
    try {
      h = parseEndpointHealth(r.stdout);
    } catch {
      h = new Map();
    }
    const sick = urls.filter((u) => !h.get(u)?.healthy);
    if (!sick.length) return;
    last = sick.map((u) => `${u}: ${h.get(u)?.error ?? (r.stderr.trim().split("\n").pop() || "no answer")}`).join("; ");
    await sleep(1000);
  }
  throw new DroveError(`Unable to ${what} in etcd cluster ${i.cluster}: the cluster did not become healthy within ${HEALTH_ATTEMPTS} s (${redact(last, secretsOf(i))})`, {
    fixes: [`look at the member's log (journalctl -u ${UNIT_NAME}) on the named hosts`, "check that the hosts reach each other on ports 2379 and 2380"],
  });
}

/** Brings one member's files in shape, makes its data directory, starts it (or restarts it when its settings changed). */
async function configureMember(i: EtcdClusterInputs, name: string, join?: { initialCluster: string; state: "new" | "existing"; wipe: boolean }): Promise<void> {
  const m = i.members[name];
  await withHost(m.connection, async (conn) => {
    const f = await memberFact(conn);
    if (!f.installed) {
      throw new HostError(describeTarget(conn.target), `set up etcd member ${name}`, "etcd or etcdctl is not installed", {
        fixes: ['let the Cluster install them (its default), or host.addPackage("etcd-server") and host.addPackage("etcd-client")', "install Debian's etcd-server and etcd-client by hand"],
      });
    }
    if (join?.wipe && f.activity !== "inactive" && f.activity !== "failed" && f.activity !== "unknown") await runChecked(conn, `stop etcd member ${name}`, { command: sh`systemctl stop ${UNIT_NAME}` });
    const plan = planMemberFiles(desired(i), name, f.files);
    await runChecked(conn, `stop Debian's own etcd on ${name}`, { command: stopDebianUnit });
    for (const s of plan.steps) await runChecked(conn, `${s.description} for etcd member ${name}`, s);
    await runChecked(conn, `make the data directory of etcd member ${name}`, { command: dataDirCommand(join?.wipe ?? false) });
    if (join && (join.wipe || !f.hasData)) await applySteps(conn, `record how etcd member ${name} joins`, [initialEnvStep(join.initialCluster, join.state)]);
    const running = f.activity === "active" || f.activity === "activating" || f.activity === "reloading";
    const restart = running && plan.restart && !join?.wipe;
    if (!running || join?.wipe || restart || f.enablement !== "enabled" || plan.unitChanged) {
      await runChecked(conn, `start etcd member ${name}`, { command: startCommand(restart, plan.unitChanged || f.enablement === "") });
    }
  });
}

/** The error Pulumi records as a partly made resource, so `destroy` still cleans up. */
function partial(err: unknown, id: string, outs: EtcdClusterOutputs): never {
  if (err instanceof Error) Object.assign(err, { id, properties: wire(outs), reasons: [err.message] });
  throw err;
}

/** Outputs as the wire carries them, secrets wrapped (for partial-create errors, which skip the plugin's wrapping). */
function wire(outs: EtcdClusterOutputs): Record<string, unknown> {
  const out = structuredClone(outs) as unknown as Record<string, unknown>;
  for (const p of SECRET_PATHS) if (out[p] !== undefined) out[p] = wrapSecret(out[p]);
  for (const m of Object.values(out.members as Record<string, { connection: Record<string, unknown> }>)) {
    for (const k of ["privateKey", "privateKeyPassphrase", "password"]) if (m.connection?.[k] !== undefined) m.connection[k] = wrapSecret(m.connection[k]);
  }
  return out;
}

function outputsOf(i: EtcdClusterInputs, ids: Record<string, string>): EtcdClusterOutputs {
  return { ...i, endpoints: names(i).map((n) => clientUrl(i.members[n].address)), memberIds: ids };
}

async function memberIds(i: EtcdClusterInputs, runner: string): Promise<Record<string, string>> {
  const v = await viewFrom(i, runner, names(i).map((n) => clientUrl(i.members[n].address)));
  return Object.fromEntries((v?.members ?? []).filter((m) => m.name && i.members[m.name]).map((m) => [m.name, m.id]));
}

async function create(i: EtcdClusterInputs): Promise<EtcdClusterOutputs> {
  const all = memberList(i);
  const ic = initialCluster(all);
  // Every initial member starts with initial-cluster-state=new at once: each waits for the others' votes.
  await Promise.all(all.map((m) => configureMember(i, m.name, { initialCluster: ic, state: "new", wipe: false })));
  const urls = all.map((m) => clientUrl(m.address));
  await waitHealthy(i, all[0].name, urls, "bootstrap the members");
  return outputsOf(i, await memberIds(i, all[0].name));
}

/**
 * Runs a membership command through etcdctl. etcd refuses one ("unhealthy
 * cluster") until every member has been connected for a few seconds (its
 * strict reconfiguration check): asked again, once a second, for up to 30 s.
 */
async function reconfigure(i: EtcdClusterInputs, runner: string, action: string, command: ReturnType<typeof sh>): Promise<string> {
  return withHost(i.members[runner].connection, async (conn) => {
    for (let n = 0; ; n++) {
      const r = await conn.exec(command);
      if (r.code === 0) return r.stdout;
      const reason = r.stderr.trim().split("\n").pop() || `exit status ${r.code}`;
      if (!/unhealthy cluster|re-configuration failed due to not enough started members/.test(r.stderr) || n >= 30) {
        throw new HostError(describeTarget(conn.target), action, redact(reason, secretsOf(i)), {
          fixes: [`check the members' health (set -a; . /etc/drove/etcd/etcdctl.env; etcdctl endpoint health --cluster) and run \`pulumi up\` again`, `look at the members' logs (journalctl -u ${UNIT_NAME})`],
        });
      }
      await sleep(1000);
    }
  });
}

/** "m2", "m2 and m3", "m2, m3 and m4" */
function listOf(xs: readonly string[]): string {
  return xs.length > 1 ? `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}` : (xs[0] ?? "");
}

/** Refuses a membership change on a cluster that is not wholly healthy, saying which member and what to do. */
function requireHealthy(i: EtcdClusterInputs, v: ClusterView, change: string, leaving: readonly MemberInfo[]): void {
  const sick = v.members.filter((m) => !leaving.includes(m) && !healthOf(v, m).healthy);
  if (!sick.length) return;
  const list = listOf(sick.map((m) => `${describeMember(m)} (${healthOf(v, m).error ?? "unhealthy"})`));
  throw new DroveError(`Unable to ${change} in etcd cluster ${i.cluster}: a membership change needs every member healthy, but ${redact(list, secretsOf(i))} ${sick.length === 1 ? "is" : "are"} not`, {
    fixes: [`run \`pulumi up\` without the membership change first, so drove repairs ${listOf(sick.map((m) => m.name || m.id))}`, `remove ${sick.length === 1 ? "that host" : "those hosts"} from the cluster's \`controlPlane\` too`],
  });
}

async function update(olds: EtcdClusterOutputs, news: EtcdClusterInputs): Promise<EtcdClusterOutputs> {
  const want = memberList(news);
  // The cluster as it is, asked through a member it already had (one the program keeps, preferably).
  const oldNames = Object.keys(olds.members ?? {}).sort();
  const both: EtcdClusterInputs = { ...news, members: { ...olds.members, ...news.members }, memberKeys: { ...olds.memberKeys, ...news.memberKeys } };
  const candidates = [...oldNames.filter((n) => news.members[n]), ...oldNames.filter((n) => !news.members[n])];
  const endpoints = [...new Set([...oldNames, ...names(news)].map((n) => clientUrl(both.members[n].address)))];
  let view = await clusterView(both, candidates, endpoints);
  if (!view) {
    throw new DroveError(`Unable to reach etcd cluster ${news.cluster} through any of its members (${oldNames.join(", ")}): none answered with its member list`, {
      fixes: [`start the members (systemctl start ${UNIT_NAME}) and run \`pulumi up\` again`, "restore the cluster from a snapshot (etcdctl snapshot restore)"],
    });
  }
  const healthy = view.members.filter((m) => healthOf(view!, m).healthy);
  if (healthy.length < quorum(view.members.length)) {
    throw new DroveError(
      `Unable to change etcd cluster ${news.cluster}: only ${healthy.length} of its ${view.members.length} members are healthy, short of the ${quorum(view.members.length)} a quorum needs (${view.members.map((m) => `${describeMember(m)}: ${healthOf(view!, m).healthy ? "healthy" : (healthOf(view!, m).error ?? "unhealthy")}`).join("; ")})`,
      { fixes: [`start the stopped members by hand (systemctl start ${UNIT_NAME}) and run \`pulumi up\` again`, "restore the cluster from a snapshot (etcdctl snapshot restore)"] },
    );
  }
  const plan = planMembership(view.members, want);
  const joining = new Set(plan.join.map((j) => j.member.name));
  if (plan.join.some((j) => !j.added) || plan.remove.length) {
    const adds = plan.join.filter((j) => !j.added).map((j) => j.member.name);
    const removes = plan.remove.map((m) => m.name || m.id);
    const change = [...(adds.length ? [`add ${listOf(adds)}`] : []), ...(removes.length ? [`remove ${listOf(removes)}`] : [])].join(" and ");
    requireHealthy(news, view, change, plan.remove);
  }
  // 1. Members that stay: files in shape, started, restarted one at a time when their settings changed.
  for (const m of want.filter((x) => !joining.has(x.name))) {
    await configureMember(news, m.name);
    await waitHealthy(both, m.name, [clientUrl(m.address)], `start member ${m.name}`);
  }
  // etcdctl runs on a member that has drove's client certificate: one that stays, or has joined.
  const ready = new Set(want.filter((x) => !joining.has(x.name)).map((x) => x.name));
  const runnerOf = () => want.find((m) => ready.has(m.name))?.name ?? view!.runner;
  const leavingIds = new Set(plan.remove.map((m) => m.id));
  // 2. Joins, one at a time: member add on the running cluster first, then the new member starts as `existing`.
  for (const j of plan.join) {
    const runner = runnerOf();
    const current = view.members.filter((m) => !leavingIds.has(m.id) || m.started);
    await waitHealthy(both, runner, current.filter((m) => m.started).flatMap((m) => m.clientUrls.slice(0, 1)), `add member ${j.member.name}`);
    let ic: string;
    if (j.added) {
      ic = [...view.members.filter((m) => m.started && m.name).map((m) => `${m.name}=${m.peerUrls[0]}`), `${j.member.name}=${peerUrl(j.member.address)}`].join(",");
    } else {
      const out = await reconfigure(both, runner, `add member ${j.member.name} to etcd cluster ${news.cluster}`, etcdctl(current.filter((m) => m.started).flatMap((m) => m.clientUrls.slice(0, 1)), sh`member add ${j.member.name} --peer-urls=${peerUrl(j.member.address)}`));
      ic = parseMemberAdd(out).initialCluster;
    }
    await configureMember(news, j.member.name, { initialCluster: ic, state: "existing", wipe: true });
    await waitHealthy(both, runner, [...current.filter((m) => m.started).flatMap((m) => m.clientUrls.slice(0, 1)), clientUrl(j.member.address)], `start the new member ${j.member.name}`);
    ready.add(j.member.name);
    view = (await clusterView(both, [runner], endpoints)) ?? view;
  }
  // 3. Leaves, one at a time: member remove first (through a member that stays), then the host is cleaned.
  for (const m of plan.remove) {
    const runner = runnerOf();
    const stay = want.map((x) => clientUrl(x.address));
    await waitHealthy(both, runner, stay, `remove member ${m.name || m.id}`);
    await reconfigure(both, runner, `remove member ${m.name || m.id} from etcd cluster ${news.cluster}`, etcdctl(stay, sh`member remove ${m.id}`));
    const host = olds.members?.[m.name];
    if (host && !news.members[m.name]) {
      await withHost(host.connection, (conn) => runChecked(conn, `clean up the removed etcd member ${m.name}`, { command: removeMemberCommand })).catch((err: unknown) => {
        if (!isConnectError(err)) throw err;
      });
    }
    await waitHealthy(both, runner, stay, `remove member ${m.name || m.id}`);
  }
  // Hosts the program dropped that the cluster no longer listed (removed by hand): cleaned too.
  for (const n of oldNames.filter((x) => !news.members[x] && !plan.remove.some((m) => m.name === x))) {
    await withHost(olds.members[n].connection, (conn) => runChecked(conn, `clean up the removed etcd member ${n}`, { command: removeMemberCommand })).catch((err: unknown) => {
      if (!isConnectError(err)) throw err;
    });
  }
  const runner = runnerOf();
  await waitHealthy(news, runner, want.map((m) => clientUrl(m.address)), "check the cluster after the change");
  return outputsOf(news, await memberIds(news, runner));
}

/** What read reports for one member. */
function statusOf(i: EtcdClusterInputs, name: string, f: MemberFact | undefined, v: ClusterView | undefined): MemberStatus {
  if (!f) return "absent";
  const unit = f.files.get(memberFiles(desired(i), name).find((x) => x.path.endsWith(".service"))!.path);
  if ((!unit || unit.state === "absent") && !f.hasData) return "absent";
  if (f.activity !== "active" && f.activity !== "reloading") return "stopped";
  const drift = memberFiles(desired(i), name).some((x) => {
    const got = f.files.get(x.path);
    return !got || got.state !== "file" || got.sha256 !== sha256(x.content) || got.mode !== x.mode || (x.owner !== undefined && got.owner !== x.owner);
  });
  if (drift) return "modified";
  if (!v) return "unhealthy";
  const m = v.members.find((x) => x.name === name && x.peerUrls.includes(peerUrl(i.members[name].address)));
  if (!m) return "not a member";
  return healthOf(v, m).healthy ? "healthy" : "unhealthy";
}

async function read(props: EtcdClusterOutputs): Promise<{ outs: EtcdClusterOutputs; inputs: EtcdClusterInputs } | undefined> {
  const all = names(props);
  const facts = new Map<string, MemberFact>();
  await Promise.all(all.map(async (n) => facts.set(n, await withHost(props.members[n].connection, memberFact))));
  const running = all.filter((n) => facts.get(n)!.activity === "active");
  const urls = all.map((n) => clientUrl(props.members[n].address));
  let v = await clusterView(props, running, urls);
  const statuses = () => Object.fromEntries(all.map((n) => [n, statusOf(props, n, facts.get(n), v)] as const));
  let status = statuses();
  // A running member that did not answer in time on a busy machine is asked again before it counts as drift.
  for (let n = 0; n < READ_RETRIES && all.some((x) => status[x] === "unhealthy" || status[x] === "not a member"); n++) {
    await sleep(2000);
    v = (await clusterView(props, running, urls)) ?? v;
    const again = statuses();
    status = Object.fromEntries(all.map((x) => [x, status[x] === "healthy" ? "healthy" : again[x]] as const));
  }
  const members: Record<string, EtcdMemberInputs> = {};
  for (const n of all) members[n] = { ...props.members[n], status: status[n] };
  if (Object.values(members).every((m) => m.status === "absent")) return undefined;
  const extraMembers = (v?.members ?? []).filter((m) => !(m.name && props.members[m.name])).map((m) => m.name || m.id).sort();
  const inputs: EtcdClusterInputs = { cluster: props.cluster, caPem: props.caPem, clientCertPem: props.clientCertPem, clientKeyPem: props.clientKeyPem, members, memberKeys: props.memberKeys, extraMembers };
  const ids = Object.fromEntries((v?.members ?? []).filter((m) => m.name && props.members[m.name]).map((m) => [m.name, m.id]));
  return { inputs, outs: { ...inputs, endpoints: props.endpoints, memberIds: Object.keys(ids).length ? ids : props.memberIds } };
}

function isPem(v: unknown, kind: string): boolean {
  return typeof v === "string" && v.includes(`-----BEGIN ${kind}`);
}

/** An etcd control plane: bootstrap, membership changes one member at a time, health, drift, removal. */
export const etcdClusterKind: ResourceKind<EtcdClusterInputs, EtcdClusterOutputs> = {
  token: "drove:index:EtcdCluster",
  secretPaths: SECRET_PATHS,
  outputOnly: ["endpoints", "memberIds"],

  check(news) {
    const failures: Failures = [];
    const cluster = news.cluster;
    if (!isUnknown(cluster) && (typeof cluster !== "string" || !NAME.test(cluster))) {
      failures.push({ property: "cluster", reason: `\`cluster\` must be lower-case letters, digits and '-', up to 42, but ${JSON.stringify(cluster)} was provided` });
    }
    for (const p of ["caPem", "clientCertPem"] as const) {
      if (!isUnknown(news[p]) && !isPem(news[p], "CERTIFICATE")) failures.push({ property: p, reason: `\`${p}\` must be a PEM certificate` });
    }
    if (!isUnknown(news.clientKeyPem) && !isPem(news.clientKeyPem, "")) failures.push({ property: "clientKeyPem", reason: "`clientKeyPem` must be a PEM private key" });
    const raw = (news.members ?? {}) as Record<string, Record<string, unknown>>;
    const keys = (news.memberKeys ?? {}) as Record<string, unknown>;
    const members: Record<string, EtcdMemberInputs> = {};
    if (!isUnknown(news.members)) {
      const n = Object.keys(raw).length;
      if (![1, 3, 5].includes(n)) failures.push({ property: "members", reason: `an etcd cluster must have 1, 3 or 5 members, but ${n} were provided` });
      for (const [name, m] of Object.entries(raw)) {
        if (!MEMBER_NAME.test(name)) failures.push({ property: `members.${name}`, reason: `member name ${JSON.stringify(name)} must be letters, digits, '-', '_' or '.'` });
        const connection = checkConnection(m?.connection, failures, `members.${name}.connection`);
        if (!isUnknown(m?.address) && (typeof m?.address !== "string" || !m.address || /[\s,=/]/.test(m.address))) {
          failures.push({ property: `members.${name}.address`, reason: `the address of member ${name} must be an IP address or DNS name, but ${JSON.stringify(m?.address)} was provided` });
        }
        if (!isUnknown(m?.certPem) && !isPem(m?.certPem, "CERTIFICATE")) failures.push({ property: `members.${name}.certPem`, reason: `the certificate of member ${name} must be PEM` });
        if (!isUnknown(news.memberKeys) && !isUnknown(keys[name]) && !isPem(keys[name], "")) failures.push({ property: "memberKeys", reason: `member ${name} has no PEM private key in \`memberKeys\`` });
        members[name] = { connection, address: m?.address as string, certPem: m?.certPem as string, status: "healthy" };
      }
    }
    const inputs: EtcdClusterInputs = {
      cluster: cluster as string,
      caPem: news.caPem as string,
      clientCertPem: news.clientCertPem as string,
      clientKeyPem: news.clientKeyPem as string,
      members: isUnknown(news.members) ? (news.members as never) : members,
      memberKeys: keys as Record<string, string>,
      extraMembers: [],
    };
    return { inputs, failures };
  },

  diff(olds, news) {
    const d = diffInputs(olds as never, news as never, ["cluster"], this.outputOnly);
    return d.replaces?.length ? { ...d, deleteBeforeReplace: true } : d;
  },

  async create(inputs) {
    const id = inputs.cluster;
    try {
      return { id, outs: await create(inputs) };
    } catch (err) {
      partial(redacted(err, inputs), id, outputsOf(inputs, {}));
    }
  },

  async read(_id, props) {
    return read(props);
  },

  async update(_id, olds, news) {
    try {
      return await update(olds, news);
    } catch (err) {
      throw redacted(err, news);
    }
  },

  async delete(_id, props) {
    // Every member stops first, then each is removed: no member is left waiting for the others' votes,
    // and systemd forgets a unit whose processes are all gone.
    const each = (what: string, command: ReturnType<typeof sh>) =>
      Promise.all(names(props).map((n) => withHost(props.members[n].connection, (conn) => runChecked(conn, `${what} etcd member ${n} of cluster ${props.cluster}`, { command }))));
    await each("stop", stopMemberCommand);
    await each("remove", removeMemberCommand);
  },
};

/** No key ever leaves in a message. */
function redacted(err: unknown, i: EtcdClusterInputs): unknown {
  if (err instanceof Error) err.message = redact(err.message, secretsOf(i));
  else return new Error(redact(reasonOf(err), secretsOf(i)));
  return err;
}
