import { sh, type ShellCommand } from "../../src/quote";

/** What drove knows about a machine after one round trip. */
export interface HostFacts {
  readonly hostname: string;
  readonly machineId: string;
  /** `ID VERSION_ID` from /etc/os-release, like "debian 12". */
  readonly os: string;
  /** The OS image the machine booted, `IMAGE_ID IMAGE_VERSION` from /usr/lib/os-release, like "web-os 1.1"; absent when it names none. */
  readonly osImage?: string;
  readonly kernel: string;
  readonly arch: string;
  /** Programs drove can drive, with their versions ("present" when it printed none); absent ones are left out. */
  readonly tools: Readonly<Record<string, string>>;
  /**
   * Each tool's binary as last seen (size, modification time and inode): a
   * version is asked again only when its binary changed.
   */
  readonly toolStamps?: Readonly<Record<string, string>>;
}

const TOOLS = ["docker", "containerd", "runc", "podman", "crun", "systemd-nspawn", "etcd", "etcdctl", "tpm2_quote", "systemctl"] as const;

/**
 * The Debian packages a tool comes from. A tool whose binary one of them
 * installed is given that package's version, read from dpkg's database, and is
 * not run: a cold probe asking ten Go binaries `--version` cost each machine
 * about 100 ms of CPU (measured on the lab's image: docker 20 ms, podman 21,
 * containerd 15, etcdctl 12, etcd 11). The numbers agree with what the tools
 * print (checked on the lab's image for all ten).
 */
const PACKAGES: Readonly<Record<(typeof TOOLS)[number], readonly string[]>> = {
  docker: ["docker.io", "docker-ce-cli"],
  containerd: ["containerd", "containerd.io"],
  runc: ["runc", "containerd.io"],
  podman: ["podman"],
  crun: ["crun"],
  "systemd-nspawn": ["systemd-container"],
  etcd: ["etcd-server"],
  etcdctl: ["etcd-client"],
  tpm2_quote: ["tpm2-tools"],
  systemctl: ["systemd"],
};

/**
 * One round trip. A probe must never change the machine: a tool's version
 * comes from the package that installed its binary, or else from asking it
 * `--version` (never a bare subcommand, which for some daemons starts them)
 * under a timeout; and only when its binary is not the one `known` facts (the
 * last read) saw: starting ten Go binaries on every machine was most of a
 * no-change run's work on the machines. `dpkg` is dpkg's database (a test's
 * stand-in).
 */
export function hostFactsCommand(known?: Pick<HostFacts, "tools" | "toolStamps">, dpkg = "/var/lib/dpkg"): ShellCommand {
  const cached = Object.entries(known?.toolStamps ?? {})
    .filter(([t, stamp]) => (TOOLS as readonly string[]).includes(t) && /^\d+\.\d+\.\d+$/.test(stamp) && known?.tools[t] !== undefined)
    .map(([t, stamp]) => sh`${`${t}=${stamp}`}) v=${known!.tools[t]};;`);
  const packages = [...new Set(Object.values(PACKAGES).flat())];
  // Read once, at the first tool to ask: which of those packages' files are these binaries, and their versions.
  const dpkgRead = sh`[ -n "\${dq:-}" ] || { dq=1; own="\n$(cd ${`${dpkg}/info`} 2>/dev/null && grep -sHE ${`/(${TOOLS.join("|")})$`} ${packages.map((p) => `${p}.list`)})\n"; vers="\n$(awk -v want=${` ${packages.join(" ")} `} ${'/^Package: /{p=$2} /^Status: /{ok=($4=="installed")} /^Version: /{if (ok && index(want, " " p " ")) print p "=" $2}'} ${`${dpkg}/status`} 2>/dev/null)\n"; }`;
  const byPackage = sh`v=; case "$t" in ${Object.entries(PACKAGES).map(([t, pks]) => sh`${t}) pks=${pks.join(" ")};;`)} *) pks=;; esac; for pk in $pks; do case "$own" in *"\n$pk.list:$p\n"*|*"\n$pk.list:\${p#/usr}\n"*) case "$vers" in *"\n$pk="*) v=\${vers#*"\n$pk="}; v=\${v%%"\n"*};; esac;; esac; [ -z "$v" ] || break; done`;
  const run = sh`case "$t" in etcdctl) v=$(ETCDCTL_API=3 timeout 5 etcdctl version 2>/dev/null </dev/null);; *) v=$(timeout 5 "$t" --version 2>/dev/null </dev/null);; esac; v=\${v%%"\n"*}`;
  const ask = sh`${dpkgRead}; ${byPackage}; [ -n "$v" ] || { ${run}; }`;
  // Shell builtins where they do (read, [ -x ], a PATH walk): each process started costs the machine.
  const identity = sh`. /etc/os-release 2>/dev/null; echo "os=\${ID:-unknown} \${VERSION_ID:-}"; (. /usr/lib/os-release 2>/dev/null; echo "osImage=\${IMAGE_ID:-} \${IMAGE_VERSION:-}"); { read -r h </proc/sys/kernel/hostname; } 2>/dev/null || h=$(hostname); echo "hostname=$h"; { read -r m </etc/machine-id; } 2>/dev/null || m=; echo "machineId=$m"; { read -r k </proc/sys/kernel/osrelease; } 2>/dev/null || k=$(uname -r); echo "kernel=$k"; echo "arch=$(uname -m)"`;
  const find = sh`found=; oldifs=$IFS; IFS=:; set -f; for t in ${[...TOOLS]}; do for dir in $PATH; do if [ -n "$dir" ] && [ -f "$dir/$t" ] && [ -x "$dir/$t" ]; then found="$found:$dir/$t"; break; fi; done; done; set +f`;
  return sh`${identity}; ${find}; set -f; if [ -n "$found" ]; then stat -L -c '%n %s.%Y.%i' \${found#:} 2>/dev/null; fi | { IFS=$oldifs; while read -r p s; do t=\${p##*/}; echo "stamp.$t=$s"; case "$t=$s" in ${cached} *) ${ask};; esac; echo "tool.$t=$v"; done; }`;
}

export function parseHostFacts(stdout: string): HostFacts {
  const kv = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const tools: Record<string, string> = {};
  const toolStamps: Record<string, string> = {};
  for (const [k, v] of kv) {
    // The version's numbers, from a package's version ("20.10.24+dfsg1-1") or a tool's first line ("Docker version 20.10.24, build ...").
    if (k.startsWith("tool.")) tools[k.slice(5)] = /\d+\.\d+(\.\d+)?/.exec(v)?.[0] ?? "present";
    if (k.startsWith("stamp.") && v) toolStamps[k.slice(6)] = v;
  }
  const need = (k: string) => {
    const v = kv.get(k);
    if (!v) throw new Error(`the host probe did not report ${k}: ${JSON.stringify(stdout.slice(0, 200))}`);
    return v;
  };
  return {
    hostname: need("hostname"),
    machineId: need("machineId"),
    os: need("os").trim(),
    ...(kv.get("osImage")?.trim() ? { osImage: kv.get("osImage")!.trim() } : {}),
    kernel: need("kernel"),
    arch: need("arch"),
    tools,
    ...(Object.keys(toolStamps).length ? { toolStamps } : {}),
  };
}
