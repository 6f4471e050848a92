import { sh, type ShellCommand } from "../../src/quote";

/** What is at a path: nothing, something that is not a directory, or a directory. */
export type DirectoryFact =
  | { readonly state: "absent" }
  | { readonly state: "other"; readonly type: string }
  | {
      readonly state: "directory";
      /** Four octal digits, like "0755" or "2775". */
      readonly mode: string;
      readonly owner: string;
      readonly group: string;
      /** How many entries it holds (not counting `.` and `..`). */
      readonly entries: number;
    };

/**
 * One round trip: type, mode, owner, group and the number of entries. A
 * symbolic link counts as "other", even when it points at a directory: drove
 * never changes the mode of what a link points to.
 */
export function directoryFactCommand(path: string): ShellCommand {
  return sh`p=${path}; if [ -L "$p" ] || { [ -e "$p" ] && [ ! -d "$p" ]; }; then printf 'other '; stat -c %F "$p"; elif [ -d "$p" ]; then stat -c 'directory %a %U %G' "$p" && find "$p" -mindepth 1 -maxdepth 1 -printf . | wc -c; else echo absent; fi`;
}

export function parseDirectoryFact(stdout: string): DirectoryFact {
  const lines = stdout.split("\n");
  const head = lines[0].trim();
  if (head === "absent") return { state: "absent" };
  if (head.startsWith("other ")) return { state: "other", type: head.slice(6) };
  const m = /^directory ([0-7]{3,4}) (\S+) (\S+)$/.exec(head);
  const entries = (lines[1] ?? "").trim();
  if (!m || !/^\d+$/.test(entries)) {
    throw new Error(`unexpected answer from the directory probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  return { state: "directory", mode: m[1].padStart(4, "0"), owner: m[2], group: m[3], entries: Number(entries) };
}
