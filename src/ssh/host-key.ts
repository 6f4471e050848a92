import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

/** OpenSSH's fingerprint of a public key blob: `SHA256:<base64, no padding>`. */
export function fingerprint(keyBlob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const PUBLIC_KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+)\s+([A-Za-z0-9+/=]+)(\s.*)?$/;

/**
 * Normalises a pinned host key, given either as a fingerprint (`SHA256:...`, as
 * `ssh-keygen -lf` prints it) or as a public key line (`ssh-ed25519 AAAA...`).
 * Returns the fingerprint, or undefined when the text is neither.
 */
export function parsePinnedHostKey(text: string): string | undefined {
  const t = text.trim();
  if (FINGERPRINT.test(t)) return t;
  const m = PUBLIC_KEY_LINE.exec(t);
  if (m) return fingerprint(Buffer.from(m[3], "base64"));
  return undefined;
}

/** The key blobs that a known_hosts file lists for host:port (hashed names included). */
export function knownHostKeys(text: string, host: string, port: number): Buffer[] {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  const keys: Buffer[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    let fields = line.split(/\s+/);
    if (fields[0] === "@revoked") continue;
    if (fields[0] === "@cert-authority") continue; // certificates are not supported: say so by not matching
    if (fields.length < 3) continue;
    const [hostField, , blob] = fields;
    if (hostMatches(hostField, names)) keys.push(Buffer.from(blob, "base64"));
    fields = [];
  }
  return keys;
}

function hostMatches(field: string, names: string[]): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    return names.some((n) => createHmac("sha1", Buffer.from(salt, "base64")).update(n).digest("base64") === hash);
  }
  const patterns = field.split(",");
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith("!");
    const re = globToRegExp(negated ? p.slice(1) : p);
    if (names.some((n) => re.test(n))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function globToRegExp(glob: string): RegExp {
  // Only * and ? are wildcards (as in OpenSSH's match_pattern); everything else, `[host]:port` brackets included, is literal.
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

export function readKnownHosts(path: string): string {
  return readFileSync(path, "utf8");
}
