import { sh, type ShellCommand } from "../../src/quote";
import { fileFactCommand, parseFileFact, type FileFact } from "../file/facts";

/** Where drove writes the units it manages: the administrator's unit folder. */
export const UNIT_DIR = "/etc/systemd/system";

export function unitPath(name: string): string {
  return `${UNIT_DIR}/${name}`;
}

/** What systemd and the unit folder say about one unit. */
export interface UnitFact {
  /** The unit file drove manages: absent, not a regular file (a link, a mask), or its content and digest. */
  readonly file: FileFact;
  /** `systemctl is-enabled`: "enabled", "disabled", "static", "masked", ...; "" when systemd knows no unit file by that name. */
  readonly enablement: string;
  /** systemd's `ActiveState` (what `systemctl is-active` prints): "active", "inactive", "failed", "activating", "deactivating" or "reloading". */
  readonly activity: string;
  /** `systemctl show -p NeedDaemonReload`: the file (or a drop-in) changed since systemd loaded it. */
  readonly needDaemonReload: boolean;
}

const MARK = "@systemd";
const NO_SYSTEMD = "systemd is not running on this machine (there is no /run/systemd/system), so it has no units to manage";

/**
 * One round trip: the unit file (content and digest), whether it is enabled
 * and active, and whether systemd needs a reload. Two `systemctl` calls, each
 * a D-Bus exchange with PID 1 (about 4 ms of a small machine's CPU): the
 * activity and the reload flag in one `show`; enablement by `is-enabled`,
 * which reads the unit folder now, where `show -p UnitFileState` answers from
 * what systemd cached at its last reload (a link removed by hand would go
 * unseen).
 */
export function unitFactCommand(name: string): ShellCommand {
  return sh`if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then echo ${NO_SYSTEMD} >&2; exit 1; fi; ${fileFactCommand(unitPath(name))}; echo ${MARK}; n=${name}; echo "enabled=$(systemctl is-enabled "$n" 2>/dev/null)"; systemctl show -p ActiveState -p NeedDaemonReload "$n"`;
}

export function parseUnitFact(stdout: string): UnitFact {
  const at = stdout.indexOf(`\n${MARK}\n`);
  if (at < 0) throw new Error(`unexpected answer from the unit probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  const file = parseFileFact(stdout.slice(0, at + 1));
  const kv = new Map<string, string>();
  for (const line of stdout.slice(at + MARK.length + 2).split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const activity = kv.get("ActiveState");
  const reload = kv.get("NeedDaemonReload");
  if (!activity || (reload !== "yes" && reload !== "no") || !kv.has("enabled")) {
    throw new Error(`unexpected answer from the unit probe: ${JSON.stringify(stdout.slice(at, at + 200))}`);
  }
  return { file, enablement: kv.get("enabled")!, activity, needDaemonReload: reload === "yes" };
}
