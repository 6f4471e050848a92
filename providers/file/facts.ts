import { sh, type ShellCommand } from "../../src/quote";

/** Files up to this size are read back whole, so drift shows their content. */
export const CONTENT_LIMIT = 256 * 1024;

/** What is at a path: nothing, something that is not a regular file, or a file. */
export type FileFact =
  | { readonly state: "absent" }
  | { readonly state: "other"; readonly type: string }
  | {
      readonly state: "file";
      /** Four octal digits, like "0644". */
      readonly mode: string;
      readonly owner: string;
      readonly group: string;
      readonly size: number;
      readonly sha256: string;
      /** The content as text, when it is small enough and valid UTF-8. */
      readonly content?: string;
    };

/** One round trip: type, mode, owner, size, digest and (small) content. */
export function fileFactCommand(path: string): ShellCommand {
  return sh`p=${path}; if [ -L "$p" ] || { [ -e "$p" ] && [ ! -f "$p" ]; }; then printf 'other '; stat -c %F "$p"; elif [ -f "$p" ]; then stat -c 'file %a %U %G %s' "$p" && sha256sum < "$p" | cut -d' ' -f1 && if [ "$(stat -c %s "$p")" -le ${CONTENT_LIMIT} ]; then base64 -w0 < "$p"; fi; echo; else echo absent; fi`;
}

export function parseFileFact(stdout: string): FileFact {
  const lines = stdout.split("\n");
  const head = lines[0].trim();
  if (head === "absent") return { state: "absent" };
  if (head.startsWith("other ")) return { state: "other", type: head.slice(6) };
  const m = /^file (\d+) (\S+) (\S+) (\d+)$/.exec(head);
  if (!m || !/^[0-9a-f]{64}$/.test(lines[1]?.trim() ?? "")) {
    throw new Error(`unexpected answer from the file probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const b64 = (lines[2] ?? "").trim();
  let content: string | undefined;
  if (b64 || Number(m[4]) === 0) {
    const bytes = Buffer.from(b64, "base64");
    const text = bytes.toString("utf8");
    if (Buffer.from(text, "utf8").equals(bytes)) content = text;
  }
  return {
    state: "file",
    mode: m[1].padStart(4, "0"),
    owner: m[2],
    group: m[3],
    size: Number(m[4]),
    sha256: lines[1].trim(),
    ...(content !== undefined ? { content } : {}),
  };
}
