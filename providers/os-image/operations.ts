import { and, sh, type ShellCommand } from "../../src/quote";
import { DEADLINE_PATH, GOOD_PATH, OS_DIR, ROLLBACK_PATH, STAGED_DIR, type HealthFacts, type OsFacts } from "./facts";

/** One entry of an image's layer (see constructs/os-image.ts). */
export interface LayerEntry {
  readonly path: string;
  readonly contents?: string;
  readonly mode?: string;
  readonly symlink?: string;
}

export interface HealthSpec {
  readonly units: readonly string[];
  readonly command?: string;
  readonly deadlineSeconds: number;
}

/** What a host must run. */
export interface DesiredImage {
  /** `name version` */
  readonly osImage: string;
  readonly digest: string;
  readonly layer: readonly LayerEntry[];
  readonly packages: readonly string[];
  readonly health: HealthSpec;
}

/** Whether the host needs a roll: a no-op with its reason, or the roll. */
export function rollPlan(desired: DesiredImage, facts: OsFacts): { roll: false; reason: string } | { roll: true; reason: string } {
  if (facts.osImage === desired.osImage && facts.digest === desired.digest) {
    return { roll: false, reason: `the machine runs ${desired.osImage} already` };
  }
  const running = facts.osImage || "no OS image";
  return { roll: true, reason: facts.osImage === desired.osImage ? `${running} on the machine was built from other contents` : `the machine runs ${running}` };
}

/**
 * Stages the image: its layer at STAGED_DIR (built beside it, then renamed, so
 * an updater never sees half a layer), its os-release (the running one's
 * fields with IMAGE_ID, IMAGE_VERSION and DROVE_IMAGE_DIGEST), its deadline;
 * clears the last boot's marks.
 */
export function stageCommand(desired: DesiredImage): ShellCommand {
  const [id, version] = desired.osImage.split(" ");
  const tmp = `${STAGED_DIR}.tmp`;
  const steps: ShellCommand[] = [
    sh`mkdir -p ${OS_DIR}`,
    sh`rm -rf ${tmp} ${STAGED_DIR}`,
    sh`mkdir -p ${`${tmp}/usr/lib`}`,
  ];
  for (const e of desired.layer) {
    const dest = tmp + e.path;
    const dir = dest.slice(0, dest.lastIndexOf("/"));
    if (e.symlink !== undefined) steps.push(sh`mkdir -p ${dir}`, sh`ln -s ${e.symlink} ${dest}`);
    else steps.push(sh`mkdir -p ${dir}`, sh`printf %s ${Buffer.from(e.contents ?? "").toString("base64")} | base64 -d > ${dest}`, sh`chmod ${e.mode ?? "0644"} ${dest}`);
  }
  steps.push(
    sh`{ grep -v -E '^(IMAGE_ID|IMAGE_VERSION|DROVE_IMAGE_DIGEST)=' /usr/lib/os-release; printf '%s\n' ${`IMAGE_ID=${id}`} ${`IMAGE_VERSION=${version}`} ${`DROVE_IMAGE_DIGEST=${desired.digest}`}; } > ${`${tmp}/usr/lib/os-release`}`,
    sh`echo ${String(desired.health.deadlineSeconds)} > ${DEADLINE_PATH}`,
    sh`rm -f ${GOOD_PATH} ${ROLLBACK_PATH}`,
    sh`mv ${tmp} ${STAGED_DIR}`,
    sh`sync`,
  );
  return and(...steps);
}

/** Reboots without waiting for it (the SSH session ends with the machine). */
export function rebootCommand(): ShellCommand {
  return sh`systemctl --no-block reboot`;
}

/** Marks this boot good: the updater keeps the image. */
export function markGoodCommand(bootedAt: number): ShellCommand {
  return and(sh`echo ${String(bootedAt)} > ${GOOD_PATH}.tmp`, sh`mv ${`${GOOD_PATH}.tmp`} ${GOOD_PATH}`, sh`rm -rf ${STAGED_DIR}`, sh`sync`);
}

/**
 * Judges a boot's health: "wait" while systemd or a unit is still starting,
 * "good" when every health unit is active, every package present and the
 * command passed, "bad" with the reason otherwise.
 */
export function healthVerdict(h: HealthFacts): { state: "wait" | "good" | "bad"; reason: string } {
  if (["initializing", "starting", ""].includes(h.system)) return { state: "wait", reason: `systemd is ${h.system || "not answering"}` };
  const starting = Object.entries(h.units).filter(([, s]) => ["activating", "reloading", "deactivating"].includes(s));
  if (starting.length) return { state: "wait", reason: `${starting.map(([u, s]) => `${u} is ${s}`).join(", ")}` };
  const down = Object.entries(h.units).filter(([, s]) => s !== "active");
  const problems = [
    ...down.map(([u, s]) => `unit ${u} is ${s || "unknown"}`),
    ...(h.missingPackages.length ? [`package${h.missingPackages.length > 1 ? "s" : ""} ${h.missingPackages.join(", ")} not installed`] : []),
    ...(h.command !== 0 ? [`the health command exited ${h.command}`] : []),
  ];
  return problems.length ? { state: "bad", reason: problems.join("; ") } : { state: "good", reason: "healthy" };
}
