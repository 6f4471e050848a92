import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDir, packageRoot } from "../../src/paths";
import { run } from "./system";

/**
 * What every lab machine has, as CoreOS shipped it: an init, sshd, the container
 * runtimes drove manages, etcd, and TPM tools. The image only ships them; drove
 * enables what a program asks for.
 */
export const IMAGE_PACKAGES = [
  "systemd-container",
  "sudo",
  "curl",
  "procps",
  "less",
  "docker.io",
  "containerd",
  "runc",
  "podman",
  "crun",
  "etcd-server",
  "etcd-client",
  "tpm2-tools",
  "skopeo",
  "umoci",
  // Services: a local proxy per node (HAProxy) in front of virtual IPs (nftables).
  "haproxy",
  "nftables",
  // The Registry construct runs Debian's registry; openssl checks its TLS.
  "docker-registry",
  "openssl",
  // What Ansible needs on a managed node (bench/ compares drove with it).
  "python3",
] as const;

const BUILD_SCRIPT = join(packageRoot, "integration", "lab", "build-image.sh");

/** The image's cache key: its package set and the script that builds it. */
export function imageKey(): string {
  const h = createHash("sha256");
  h.update(IMAGE_PACKAGES.join(" "));
  h.update(readFileSync(BUILD_SCRIPT));
  return "bookworm-" + h.digest("hex").slice(0, 12);
}

export function imagePath(): string {
  return join(cacheDir(), "lab", "images", imageKey(), "rootfs");
}

/** Builds the base image once; later calls return the cached one at once. */
export async function ensureImage(log: (s: string) => void = () => {}): Promise<string> {
  const dest = imagePath();
  if (existsSync(join(dest, ".drove-image-complete"))) return dest;
  log(`building the lab's base image (Debian bookworm + ${IMAGE_PACKAGES.length} packages) into ${dest}; this happens once`);
  const started = Date.now();
  const child = await run("bash", [BUILD_SCRIPT, dest], {
    env: { ...process.env, DROVE_LAB_PACKAGES: IMAGE_PACKAGES.join(" ") },
    allowFail: true,
  });
  if (child.code !== 0) {
    const tail = child.stderr.trim().split("\n").slice(-8).join("\n");
    throw new Error(`Unable to build the lab's base image:\n${tail}`);
  }
  log(`base image built in ${Math.round((Date.now() - started) / 1000)} s`);
  return dest;
}
