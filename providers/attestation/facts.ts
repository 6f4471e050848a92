/**
 * What the machine's TPM says, through tpm2-tools (TPM2TOOLS_TCTI from the
 * machine's /etc/environment). Each shell probe sits next to its parser;
 * binary TPM structures travel as base64 in `key=value` lines. Every command
 * works in a private temporary folder, flushes transient objects after each
 * TPM command (swtpm has few slots) and removes the folder on exit.
 */
import { sh, ShellCommand } from "../../src/quote";

/** The TCG's persistent handle of the RSA endorsement key. */
export const EK_HANDLE = "0x81010001";
/** The TCG's NV index of the RSA EK certificate. */
export const EK_CERT_INDEX = "0x01c00002";
/** Where drove keeps the attestation key (owner hierarchy, persistent). */
export const DEFAULT_AK_HANDLE = "0x81018d00";

/** The start of every TPM command: the TCTI from /etc/environment, a private work folder, an EK handle in `$ek`. */
const PRELUDE = [
  `if [ -z "\${TPM2TOOLS_TCTI:-}" ] && [ -r /etc/environment ]; then set -a; . /etc/environment; set +a; fi`,
  `command -v tpm2_quote >/dev/null 2>&1 || { echo 'drove-tpm: tpm2-tools is not installed' >&2; exit 3; }`,
  `w=$(mktemp -d) && trap 'rm -rf "$w"' EXIT`,
  `flush() { tpm2_flushcontext -t >/dev/null 2>&1; tpm2_flushcontext -s >/dev/null 2>&1; true; }`,
  `b64() { printf '%s=' "$1"; base64 -w0 "$2"; echo; }`,
  `ek=${EK_HANDLE}`,
  `if ! tpm2_readpublic -c "$ek" -o "$w/ek.pub" >/dev/null 2>&1; then flush; tpm2_createek -c "$w/ek.ctx" -G rsa -u "$w/ek.pub" >/dev/null || exit 4; ek="$w/ek.ctx"; fi`,
  `flush`,
  `ekcert() { if tpm2_nvread ${EK_CERT_INDEX} -o "$w/ekcert" >/dev/null 2>&1; then b64 ekcert "$w/ekcert"; fi; flush; }`,
].join("\n");

function script(body: ShellCommand): ShellCommand {
  return new ShellCommand(`set -u\n${PRELUDE}\n${body.text}`);
}

/** Key/value lines (`k=v`) into a map; values keep any `=` after the first. */
export function parseKv(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

/** The TPM as the machine shows it: its EK, and the AK at `akHandle` if there is one. */
export interface TpmFacts {
  /** TPM2B_PUBLIC of the EK. */
  readonly ekPublic: Buffer;
  /** TPM2B_PUBLIC of the object at the AK handle, absent when the handle is empty. */
  readonly akPublic?: Buffer;
  /** The EK certificate (DER) from NV, absent when the TPM has none. */
  readonly ekCertificate?: Buffer;
}

/** Reads the EK and whatever is at the AK handle (read-only). */
export function tpmFactsCommand(akHandle: string): ShellCommand {
  return script(sh`b64 ek "$w/ek.pub"
ekcert
if tpm2_readpublic -c ${akHandle} -o "$w/ak.pub" >/dev/null 2>&1; then b64 ak "$w/ak.pub"; fi
flush`);
}

export function parseTpmFacts(stdout: string): TpmFacts {
  const kv = parseKv(stdout);
  const ek = kv.get("ek");
  if (!ek) throw new Error("the TPM probe printed no endorsement key");
  const ak = kv.get("ak");
  const cert = kv.get("ekcert");
  return { ekPublic: Buffer.from(ek, "base64"), akPublic: ak ? Buffer.from(ak, "base64") : undefined, ...(cert ? { ekCertificate: Buffer.from(cert, "base64") } : {}) };
}

/**
 * Makes a new AK under the EK (RSA 2048, RSASSA with SHA-256: a restricted
 * signing key, as `tpm2_createak` makes it) and keeps it at `akHandle`,
 * replacing what was there. Prints the EK, the AK public and the AK name.
 */
export function createAkCommand(akHandle: string, keyType: "rsa" | "ecc"): ShellCommand {
  const scheme = keyType === "rsa" ? "rsassa" : "ecdsa";
  return script(sh`if tpm2_readpublic -c ${akHandle} >/dev/null 2>&1; then tpm2_evictcontrol -C o -c ${akHandle} >/dev/null || exit 5; fi
flush
tpm2_createak -C "$ek" -c "$w/ak.ctx" -G ${keyType} -g sha256 -s ${scheme} -u "$w/ak.pub" -n "$w/ak.name" >/dev/null || exit 6
flush
tpm2_evictcontrol -C o -c "$w/ak.ctx" ${akHandle} >/dev/null || exit 7
flush
b64 ek "$w/ek.pub"
ekcert
b64 ak "$w/ak.pub"
b64 name "$w/ak.name"`);
}

/**
 * Opens a credential (a `tpm2_makecredential -o` file, sent as base64 on
 * stdin) with the EK for the AK at `akHandle`, and prints what it held.
 * The EK's authorisation is its policy: PolicySecret on the endorsement hierarchy.
 */
export function activateCredentialCommand(akHandle: string): ShellCommand {
  return script(sh`base64 -d > "$w/cred" || exit 8
tpm2_startauthsession --policy-session -S "$w/session.ctx" >/dev/null || exit 9
tpm2_policysecret -S "$w/session.ctx" -c e >/dev/null || { flush; exit 9; }
tpm2_activatecredential -c ${akHandle} -C "$ek" -i "$w/cred" -o "$w/out" -P "session:$w/session.ctx" >/dev/null; rc=$?
tpm2_flushcontext "$w/session.ctx" >/dev/null 2>&1
flush
[ "$rc" = 0 ] || exit 10
b64 credential "$w/out"`);
}

export function parseActivated(stdout: string): Buffer {
  const v = parseKv(stdout).get("credential");
  if (v === undefined) throw new Error("tpm2_activatecredential printed nothing");
  return Buffer.from(v, "base64");
}

/** A quote as the machine returns it. */
export interface QuoteFacts {
  readonly message: Buffer;
  readonly signature: Buffer;
  /** The PCR values, concatenated in PCR order. */
  readonly pcrValues: Buffer;
}

/** `tpm2_quote` by the AK at `akHandle` over `bank:pcrs`, for `nonce`. */
export function quoteCommand(akHandle: string, pcrs: readonly number[], nonce: Buffer, bank = "sha256"): ShellCommand {
  const list = `${bank}:${[...pcrs].sort((a, b) => a - b).join(",")}`;
  return script(sh`tpm2_quote -c ${akHandle} -l ${list} -q ${nonce.toString("hex")} -m "$w/m" -s "$w/s" -o "$w/p" -F values -g sha256 >/dev/null; rc=$?
flush
[ "$rc" = 0 ] || exit 11
b64 message "$w/m"
b64 signature "$w/s"
b64 pcrs "$w/p"`);
}

export function parseQuote(stdout: string): QuoteFacts {
  const kv = parseKv(stdout);
  const get = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) throw new Error(`tpm2_quote printed no ${k}`);
    return Buffer.from(v, "base64");
  };
  return { message: get("message"), signature: get("signature"), pcrValues: get("pcrs") };
}

/** Removes the AK at `akHandle` (nothing when the handle is empty). */
export function removeAkCommand(akHandle: string): ShellCommand {
  return script(sh`if tpm2_readpublic -c ${akHandle} >/dev/null 2>&1; then tpm2_evictcontrol -C o -c ${akHandle} >/dev/null || exit 5; fi
flush`);
}

/** What an exit code of the commands above means. */
export function tpmFailure(code: number, stderr: string): string {
  const detail = stderr.trim().split("\n").filter((l) => l && !/^WARN/.test(l)).slice(-3).join(" / ");
  const what: Record<number, string> = {
    3: "tpm2-tools is not installed",
    4: "the TPM has no endorsement key and tpm2_createek failed",
    5: "the AK handle could not be cleared (tpm2_evictcontrol)",
    6: "tpm2_createak failed",
    7: "the AK could not be made persistent (tpm2_evictcontrol)",
    8: "the credential did not arrive",
    9: "the EK policy session could not be started",
    10: "tpm2_activatecredential refused the credential",
    11: "tpm2_quote failed",
  };
  return `${what[code] ?? `the TPM command exited with ${code}`}${detail ? ` (${detail})` : ""}`;
}
