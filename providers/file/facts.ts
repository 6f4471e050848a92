import { createHash } from "node:crypto";
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

/**
 * One round trip: type, mode, owner, size, and the content (small files) or
 * the digest (larger ones). A small file's digest is computed here from its
 * content: on a no-change run every process the probe starts on the machine
 * counts (sha256sum and cut cost as much as the rest of the probe).
 */
export function fileFactCommand(path: string): ShellCommand {
  return sh`p=${path}; if [ -L "$p" ] || { [ -e "$p" ] && [ ! -f "$p" ]; }; then printf 'other '; stat -c %F "$p"; elif [ -f "$p" ]; then s=$(stat -c '%a %U %G %s' "$p") && printf 'file %s\n' "$s" && if [ "\${s##* }" -le ${CONTENT_LIMIT} ]; then c=$(base64 -w0 < "$p") && printf 'content %s\n' "$c"; else h=$(sha256sum < "$p") && printf 'sha256 %s\n' "\${h%% *}"; fi; else echo absent; fi`;
}

export function parseFileFact(stdout: string): FileFact {
  const lines = stdout.split("\n");
  const head = lines[0].trim();
  if (head === "absent") return { state: "absent" };
  if (head.startsWith("other ")) return { state: "other", type: head.slice(6) };
  const m = /^file (\d+) (\S+) (\S+) (\d+)$/.exec(head);
  const body = /^(content|sha256) ?(\S*)$/.exec(lines[1]?.trim() ?? "");
  const unexpected = () => new Error(`unexpected answer from the file probe: ${JSON.stringify(stdout.slice(0, 200))}`);
  if (!m || !body) throw unexpected();
  let digest: string;
  let content: string | undefined;
  if (body[1] === "sha256") {
    if (!/^[0-9a-f]{64}$/.test(body[2])) throw unexpected();
    digest = body[2];
  } else {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body[2])) throw unexpected();
    const bytes = Buffer.from(body[2], "base64");
    digest = createHash("sha256").update(bytes).digest("hex");
    const text = bytes.toString("utf8");
    if (Buffer.from(text, "utf8").equals(bytes)) content = text;
  }
  return {
    state: "file",
    mode: m[1].padStart(4, "0"),
    owner: m[2],
    group: m[3],
    size: Number(m[4]),
    sha256: digest,
    ...(content !== undefined ? { content } : {}),
  };
}
