import { createHash } from "node:crypto";
import { posix } from "node:path";
import { sh, type ShellCommand } from "../../src/quote";
import type { FileFact } from "./facts";

/** A file as the program wants it. */
export interface FileDesired {
  readonly path: string;
  readonly content: string;
  /** Four octal digits. */
  readonly mode: string;
  /** Left as it is when undefined. */
  readonly owner?: string;
  readonly group?: string;
  readonly createParents: boolean;
}

/** One thing to do on the machine, with why. */
export interface Step {
  readonly description: string;
  readonly command: ShellCommand;
  readonly stdin?: string;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Thrown when the path holds something drove must not overwrite. */
export class ConflictError extends Error {}

/**
 * Desired state + facts -> the steps that make the machine match, or [] when it
 * already does. Content is written to a temporary file with mode 0600 from the
 * first byte, given its final mode and owner, then renamed into place, so the
 * path never holds a partial file or a wider mode than asked.
 */
export function planFile(d: FileDesired, fact: FileFact): Step[] {
  if (fact.state === "other") {
    throw new ConflictError(`${d.path} is a ${fact.type}, not a regular file, and drove does not replace it`);
  }
  // `chown user:` would also set the user's login group: name only what was asked for.
  const owner = d.group === undefined ? d.owner : `${d.owner ?? ""}:${d.group}`;
  if (fact.state === "absent" || fact.sha256 !== sha256(d.content)) {
    const dir = posix.dirname(d.path);
    const write = sh`umask 077 && tmp=$(mktemp ${dir}/.drove.XXXXXXXX) && { cat > "$tmp" && chmod ${d.mode} "$tmp"${owner ? sh` && chown ${owner} "$tmp"` : sh``} && mv -f "$tmp" ${d.path}; } || { rm -f "$tmp"; exit 1; }`;
    return [
      {
        description: fact.state === "absent" ? `create ${d.path}` : `write new content to ${d.path}`,
        command: d.createParents ? sh`mkdir -p ${dir} && ${write}` : write,
        stdin: d.content,
      },
    ];
  }
  const steps: Step[] = [];
  if (fact.mode !== d.mode) steps.push({ description: `chmod ${d.path} ${fact.mode} -> ${d.mode}`, command: sh`chmod ${d.mode} ${d.path}` });
  if ((d.owner !== undefined && fact.owner !== d.owner) || (d.group !== undefined && fact.group !== d.group)) {
    steps.push({ description: `chown ${d.path} ${fact.owner}:${fact.group} -> ${owner}`, command: sh`chown ${owner!} ${d.path}` });
  }
  return steps;
}

/** Steps that remove the file; [] when it is already gone. */
export function planFileRemoval(path: string, fact: FileFact): Step[] {
  if (fact.state !== "file") return [];
  return [{ description: `remove ${path}`, command: sh`rm -f ${path}` }];
}
