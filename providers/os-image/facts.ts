import { sh, type ShellCommand } from "../../src/quote";

/**
 * The OS update protocol, on the machine (the same for the lab and for a real
 * host with an A/B /usr, as CoreOS's update_engine and greenboot do it):
 *
 * - an updater (in the lab: the supervisor that runs the machine) announces
 *   itself at UPDATER_PATH; without one drove refuses to roll, before any change;
 * - drove stages the next image's layer at STAGED_DIR (written to STAGED_DIR.tmp,
 *   then renamed) with the seconds it gets to prove itself in DEADLINE_PATH;
 *   a real host's updater writes it to the inactive /usr partition (USR-B)
 *   and makes it the next boot, with one try (boot counting);
 * - drove reboots the machine; the updater boots the staged image, keeping
 *   /etc and /var;
 * - drove waits for SSH, the image's health and the host's attestation, then
 *   writes the boot's id to GOOD_PATH: the boot is good, the updater makes it
 *   the default;
 * - a boot that is not marked good within the deadline, or that reboots before
 *   it is, makes the updater boot the previous image again; it says why in
 *   ROLLBACK_PATH.
 */
export const OS_DIR = "/var/lib/drove/os";
export const STAGED_DIR = `${OS_DIR}/staged`;
export const DEADLINE_PATH = `${OS_DIR}/deadline`;
export const GOOD_PATH = `${OS_DIR}/good`;
export const ROLLBACK_PATH = `${OS_DIR}/rollback`;
export const UPDATER_PATH = "/run/drove-os-updater";

/** What drove reads on a machine about its OS image. */
export interface OsFacts {
  /** `IMAGE_ID IMAGE_VERSION`, or "" when the machine runs no image. */
  readonly osImage: string;
  readonly digest: string;
  /** When PID 1 started, epoch milliseconds: one value per boot. */
  readonly bootedAt: number;
  /** The boot id written as good, if any ("" when none). */
  readonly good: string;
  /** Why the updater last rolled back, if it did ("" when it did not). */
  readonly rollback: string;
  /** The updater announced at UPDATER_PATH ("" when none). */
  readonly updater: string;
}

export function osFactsCommand(): ShellCommand {
  return sh`(. /usr/lib/os-release 2>/dev/null; echo "osImage=\${IMAGE_ID:-} \${IMAGE_VERSION:-}"; echo "digest=\${DROVE_IMAGE_DIGEST:-}"); b=$(awk '/^btime/{print $2}' /proc/stat); t=$(awk '{print $22}' /proc/1/stat); hz=$(getconf CLK_TCK); echo "bootedAt=$((b * 1000 + t * 1000 / hz))"; echo "good=$(cat ${GOOD_PATH} 2>/dev/null | head -1)"; echo "rollback=$(head -1 ${ROLLBACK_PATH} 2>/dev/null)"; echo "updater=$(head -1 ${UPDATER_PATH} 2>/dev/null)"`;
}

export function parseOsFacts(stdout: string): OsFacts {
  const kv = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const bootedAt = Number(kv.get("bootedAt"));
  if (!Number.isFinite(bootedAt) || bootedAt <= 0) throw new Error(`the OS image probe did not report when the machine booted: ${JSON.stringify(stdout.slice(0, 200))}`);
  return {
    osImage: (kv.get("osImage") ?? "").trim(),
    digest: kv.get("digest") ?? "",
    bootedAt,
    good: kv.get("good") ?? "",
    rollback: kv.get("rollback") ?? "",
    updater: kv.get("updater") ?? "",
  };
}

/** Health of the booted image: systemd's state, each unit's, each package's, the command's. */
export interface HealthFacts {
  /** `systemctl is-system-running`: initializing, starting, running, degraded... */
  readonly system: string;
  readonly units: Readonly<Record<string, string>>;
  readonly missingPackages: readonly string[];
  /** Exit status of the health command (0 when none). */
  readonly command: number;
}

export function healthCommand(units: readonly string[], packages: readonly string[], command: string | undefined): ShellCommand {
  return sh`echo "system=$(systemctl is-system-running 2>/dev/null)"; for u in ${["", ...units]}; do [ -n "$u" ] && echo "unit.$u=$(systemctl is-active "$u" 2>/dev/null)"; done; for p in ${["", ...packages]}; do [ -n "$p" ] && { dpkg-query -W -f '\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "missing=$p"; }; done; ${command ? sh`sh -c ${command} >/dev/null 2>&1; echo "command=$?"` : sh`echo command=0`}; true`;
}

export function parseHealth(stdout: string): HealthFacts {
  const units: Record<string, string> = {};
  const missing: string[] = [];
  let system = "";
  let command = 0;
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i <= 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1).trim();
    if (k === "system") system = v;
    else if (k.startsWith("unit.")) units[k.slice(5)] = v;
    else if (k === "missing") missing.push(v);
    else if (k === "command") command = Number(v);
  }
  return { system, units, missingPackages: missing, command };
}
