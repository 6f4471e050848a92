/**
 * The one workload every tool applies on each machine, written down once:
 * a file, a Debian package that is not in the lab image, a systemd unit
 * running a long-lived process, and a container from the lab's registry
 * (busybox httpd, built by integration/fixtures.ts `pushWebImage`).
 * The Ansible playbook and the pyinfra deploy receive these same values as
 * variables (bench/tools.ts writes them into a JSON file for them).
 */
export const WORKLOAD = {
  filePath: "/etc/drove-bench.conf",
  fileMode: "0644",
  package: "tree",
  unitName: "drove-bench.service",
  unitText: [
    "[Unit]",
    "Description=drove benchmark: a long-running service",
    "",
    "[Service]",
    "Type=exec",
    "ExecStart=/bin/sleep infinity",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n"),
  containerName: "web",
  /** Port the container publishes on the machine (busybox httpd listens on 8080 inside). */
  port: 8080,
} as const;

/** The file's content at generation `n` (the one-line change bumps it). */
export function fileContent(generation: number): string {
  return `# managed by the drove benchmark\ngeneration = ${generation}\n`;
}
