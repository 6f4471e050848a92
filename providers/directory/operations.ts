import { posix } from "node:path";
import { sh, type ShellCommand } from "../../src/quote";
import { ConflictError, type Step } from "../file/operations";
import type { DirectoryFact } from "./facts";

export { ConflictError, type Step };

/** A directory as the program wants it. */
export interface DirectoryDesired {
  readonly path: string;
  /** Four octal digits, like "0755" or "2775". */
  readonly mode: string;
  /** Left as it is when undefined. */
  readonly owner?: string;
  readonly group?: string;
  readonly createParents: boolean;
}

/** What deleting needs to know: how the directory came to be, and how far the program lets drove go. */
export interface DirectoryRemoval {
  readonly path: string;
  /** drove made it (it was absent when the resource was created). */
  readonly created: boolean;
  /** Remove it with its contents. */
  readonly recursive: boolean;
}

/** The steps of a removal, or none and the reason the directory stays. */
export interface RemovalPlan {
  readonly steps: Step[];
  /** Why nothing is removed, when something is still there. */
  readonly reason?: string;
}

/**
 * GNU chmod keeps a directory's set-user-ID and set-group-ID bits for a
 * four-digit mode ("0755"); a fifth, leading zero clears them, so the
 * directory ends with exactly the asked mode.
 */
function chmod(mode: string, path: string): ShellCommand {
  return sh`chmod ${`0${mode}`} ${path}`;
}

/** `chown user:` would also set the user's login group: name only what was asked for. */
function ownerSpec(d: DirectoryDesired): string | undefined {
  return d.group === undefined ? d.owner : `${d.owner ?? ""}:${d.group}`;
}

/**
 * Desired state + facts -> the steps that make the machine match, or [] when it
 * already does. A new directory is made with mode 0700, then given its mode and
 * owner; if either fails it is removed again, so a failed run leaves no
 * directory drove would not know it made.
 */
export function planDirectory(d: DirectoryDesired, fact: DirectoryFact): Step[] {
  if (fact.state === "other") {
    throw new ConflictError(`${d.path} is a ${fact.type}, not a directory, and drove does not replace it`);
  }
  const owner = ownerSpec(d);
  if (fact.state === "absent") {
    const parent = posix.dirname(d.path);
    const settle = owner ? sh`${chmod(d.mode, d.path)} && chown ${owner} ${d.path}` : chmod(d.mode, d.path);
    const make = sh`(umask 077 && mkdir ${d.path}) && { ${settle} || { rmdir ${d.path}; exit 1; }; }`;
    return [{ description: `create directory ${d.path}`, command: d.createParents && parent !== "/" ? sh`mkdir -p ${parent} && ${make}` : make }];
  }
  const steps: Step[] = [];
  if (fact.mode !== d.mode) steps.push({ description: `chmod ${d.path} ${fact.mode} -> ${d.mode}`, command: chmod(d.mode, d.path) });
  if ((d.owner !== undefined && fact.owner !== d.owner) || (d.group !== undefined && fact.group !== d.group)) {
    steps.push({ description: `chown ${d.path} ${fact.owner}:${fact.group} -> ${owner}`, command: sh`chown ${owner!} ${d.path}` });
  }
  return steps;
}

/**
 * What deleting the resource does. drove removes only a directory it made:
 * an empty one always, one with contents only when `recursive` is set. A
 * directory that was there before drove managed it (like /srv or /etc) stays,
 * with the mode and owner drove gave it. Anything left has its reason.
 */
export function planDirectoryRemoval(r: DirectoryRemoval, fact: DirectoryFact): RemovalPlan {
  if (fact.state === "absent") return { steps: [] };
  if (fact.state === "other") return { steps: [], reason: `${r.path} is now a ${fact.type}, not the directory drove made, so drove leaves it` };
  if (!r.created) return { steps: [], reason: `${r.path} was there before drove managed it, and drove removes only directories it made` };
  if (fact.entries === 0) return { steps: [{ description: `remove directory ${r.path}`, command: sh`rmdir ${r.path}` }] };
  if (r.recursive) return { steps: [{ description: `remove directory ${r.path} and its ${fact.entries} entries`, command: sh`rm -rf ${r.path}` }] };
  return {
    steps: [],
    reason: `${r.path} holds ${fact.entries} ${fact.entries === 1 ? "entry" : "entries"} and \`recursive\` is false, so drove leaves it; set \`recursive: true\` to remove a directory drove made together with its contents`,
  };
}
