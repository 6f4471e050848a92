/**
 * Read-only probes of etcd members: what drove's files on a member hold, and
 * whether its unit runs. The cluster's own view (member list, health) comes
 * from etcdctl; see operations.ts for its parsers.
 */
import { sh, type ShellCommand } from "../../src/quote";
import { fileFactCommand, parseFileFact, type FileFact } from "../file/facts";
import { DATA_DIR, MEMBER_FILES, UNIT_NAME, etcdctl } from "./operations";

/** One control-plane host as drove finds it. */
export interface MemberFact {
  /** Each of drove's files for the member, by path. */
  readonly files: ReadonlyMap<string, FileFact>;
  /** `systemctl is-active drove-etcd.service`. */
  readonly activity: string;
  /** `systemctl is-enabled drove-etcd.service`; "" when systemd knows no such unit. */
  readonly enablement: string;
  /** The data directory holds a member's data (`member/`). */
  readonly hasData: boolean;
  /** etcd and etcdctl are installed. */
  readonly installed: boolean;
}

const FILE_MARK = "@@drove-file ";
const STATE_MARK = "@@drove-state";

/** One round trip: every file, the unit's state, the data directory, the binaries. */
export function memberFactCommand(): ShellCommand {
  const files = MEMBER_FILES.map((p) => sh`echo ${FILE_MARK + p}; ${fileFactCommand(p)};`);
  return sh`${files} echo ${STATE_MARK}; echo "enabled=$(systemctl is-enabled ${UNIT_NAME} 2>/dev/null)"; echo "active=$(systemctl is-active ${UNIT_NAME} 2>/dev/null)"; if [ -d ${DATA_DIR + "/member"} ]; then echo data=yes; else echo data=no; fi; if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then echo installed=yes; else echo installed=no; fi`;
}

export function parseMemberFact(stdout: string): MemberFact {
  const at = stdout.indexOf(`${STATE_MARK}\n`);
  if (at < 0) throw new Error(`unexpected answer from the etcd member probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  const files = new Map<string, FileFact>();
  for (const chunk of stdout.slice(0, at).split(FILE_MARK).slice(1)) {
    const nl = chunk.indexOf("\n");
    files.set(chunk.slice(0, nl), parseFileFact(chunk.slice(nl + 1)));
  }
  const kv = new Map<string, string>();
  for (const line of stdout.slice(at + STATE_MARK.length + 1).split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  if (!kv.has("active") || !kv.has("data") || !kv.has("installed")) throw new Error(`unexpected answer from the etcd member probe: ${JSON.stringify(stdout.slice(at, at + 200))}`);
  return { files, activity: kv.get("active")!, enablement: kv.get("enabled") ?? "", hasData: kv.get("data") === "yes", installed: kv.get("installed") === "yes" };
}

/** The member list, then a marker, then health per endpoint (JSON); either may fail on its own. */
export function clusterViewCommand(endpoints: readonly string[]): ShellCommand {
  return sh`${etcdctl(endpoints, sh`member list -w simple`)} || echo '@@drove-no-member-list'; echo '@@drove-health'; ${etcdctl(endpoints, sh`endpoint health -w json`)} 2>/dev/null; true`;
}

export function splitClusterView(stdout: string): { memberList: string | undefined; health: string } {
  const at = stdout.indexOf("@@drove-health\n");
  const head = at < 0 ? stdout : stdout.slice(0, at);
  const health = at < 0 ? "" : stdout.slice(at + "@@drove-health\n".length);
  return { memberList: head.includes("@@drove-no-member-list") ? undefined : head, health };
}
