import { sh, type ShellCommand } from "../../src/quote";

/** A Debian package on a machine: not installed, or installed at a version. */
export type PackageFact = { readonly state: "absent" } | { readonly state: "installed"; readonly version: string };

/** One round trip for any number of packages. */
export function packageFactsCommand(names: readonly string[]): ShellCommand {
  return sh`for p in ${[...names]}; do printf '%s\t' "$p"; dpkg-query -W -f='\${Status}\t\${Version}\n' "$p" 2>/dev/null || printf 'not-installed\t\n'; done`;
}

export function parsePackageFacts(stdout: string): Map<string, PackageFact> {
  const out = new Map<string, PackageFact>();
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    const [name, status, version] = line.split("\t");
    out.set(name, status?.endsWith(" installed") && status.startsWith("install ") ? { state: "installed", version: version ?? "" } : { state: "absent" });
  }
  return out;
}
