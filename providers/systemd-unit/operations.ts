import { sh } from "../../src/quote";
import { ConflictError, planFile, sha256, type Step } from "../file/operations";
import { unitPath, type UnitFact } from "./facts";
import { installSection } from "./unit-file";

export { ConflictError, type Step };

/** A unit as the program wants it. */
export interface UnitDesired {
  readonly name: string;
  /** The unit file's text. */
  readonly content: string;
  /** Started at boot (`systemctl enable`). */
  readonly enabled: boolean;
  /** Running now (`systemctl start`). */
  readonly active: boolean;
}

/** A step; `starts` marks the one that starts or restarts the unit, whose failure is explained with the unit's log. */
export interface UnitStep extends Step {
  readonly starts?: "start" | "restart";
}

/** Seconds a started unit must stay up before drove counts the start as a success. */
export const SETTLE_SECONDS = 1;

/** Only a persistent `enabled` counts: `enabled-runtime` is gone at the next boot. */
export function isEnabled(enablement: string): boolean {
  return enablement === "enabled";
}

/** Running, or on its way there. */
export function isActive(activity: string): boolean {
  return activity === "active" || activity === "reloading" || activity === "activating";
}

/**
 * Desired state + facts -> the steps that make the machine match, or [] when it
 * already does, in this order: write the file (only when its content differs),
 * enable or disable (`--no-reload`: linking a unit changes no unit file, and
 * the links count from the next boot), `daemon-reload` (only when the file
 * changed, or systemd has not loaded it yet), then start (inactive), restart
 * (active, and its definition changed) or stop. A start counts only if the unit is still active
 * SETTLE_SECONDS later, so a program that exits at once fails the run.
 */
export function planUnit(d: UnitDesired, fact: UnitFact): UnitStep[] {
  const path = unitPath(d.name);
  const file = fact.file;
  if (file.state === "other") throw new ConflictError(`${path} is a ${file.type}, not a regular file, and drove does not replace it`);
  const changed = file.state === "absent" || file.sha256 !== sha256(d.content);
  const steps: UnitStep[] = [];
  if (changed) steps.push(...planFile({ path, content: d.content, mode: "0644", createParents: false }, file));
  const enabled = isEnabled(fact.enablement);
  if (d.enabled && !enabled) {
    steps.push({ description: `enable ${d.name}`, command: sh`systemctl enable --no-reload ${d.name}` });
  } else if (d.enabled && changed && file.state === "file" && (file.content === undefined || installSection(file.content).join("\n") !== installSection(d.content).join("\n"))) {
    // Links made for the old [Install] section would stay: make them again for the new one.
    steps.push({ description: `enable ${d.name} again: its [Install] section changed`, command: sh`systemctl reenable --no-reload ${d.name}` });
  } else if (!d.enabled && enabled) {
    steps.push({ description: `disable ${d.name}`, command: sh`systemctl disable --no-reload ${d.name}` });
  }
  if (changed || fact.needDaemonReload) {
    steps.push({
      description: changed ? `reload systemd: ${d.name} changed` : `reload systemd: it has not loaded the current ${path} yet`,
      command: sh`systemctl daemon-reload`,
    });
  }
  const running = isActive(fact.activity);
  if (d.active && !running) {
    steps.push({ description: `start ${d.name}`, command: sh`systemctl start ${d.name} && sleep ${SETTLE_SECONDS} && systemctl is-active --quiet ${d.name}`, starts: "start" });
  } else if (d.active && (changed || fact.needDaemonReload)) {
    steps.push({
      description: `restart ${d.name}: its definition changed`,
      command: sh`systemctl restart ${d.name} && sleep ${SETTLE_SECONDS} && systemctl is-active --quiet ${d.name}`,
      starts: "restart",
    });
  } else if (!d.active && running) {
    steps.push({ description: `stop ${d.name}`, command: sh`systemctl stop ${d.name}` });
  }
  return steps;
}

/**
 * Steps that remove a unit drove manages: stop, disable, remove the file,
 * `daemon-reload`, and forget a failed state, so systemd no longer lists it.
 * [] when the file is gone (or is not a regular file: then it is not drove's).
 */
export function planUnitRemoval(name: string, fact: UnitFact): Step[] {
  if (fact.file.state !== "file") return [];
  const path = unitPath(name);
  const steps: Step[] = [];
  if (isActive(fact.activity) || fact.activity === "deactivating") steps.push({ description: `stop ${name}`, command: sh`systemctl stop ${name}` });
  if (isEnabled(fact.enablement)) steps.push({ description: `disable ${name}`, command: sh`systemctl disable --no-reload ${name}` });
  steps.push({ description: `remove ${path}`, command: sh`rm -f ${path}` });
  steps.push({ description: `reload systemd: ${name} is gone`, command: sh`systemctl daemon-reload` });
  if (fact.activity === "failed") steps.push({ description: `forget that ${name} failed`, command: sh`systemctl reset-failed ${name}` });
  return steps;
}
