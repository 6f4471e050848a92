/**
 * Test images, built for real without a daemon: an OCI layout assembled with
 * umoci from Debian's busybox-static, pushed to the lab's registry with skopeo.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./lab/system";

export interface TestImage {
  /** `registry/name:tag` */
  readonly tag: string;
  /** `registry/name@sha256:...`: what hosts should run. */
  readonly digestRef: string;
}

/**
 * An HTTP server image: busybox httpd on port 8080 serving /www, whose
 * index.html says `page`, and /env.txt the container's $GREETING.
 */
export async function pushWebImage(registry: string, name: string, tag: string, page: string): Promise<TestImage> {
  const dir = mkdtempSync(join(tmpdir(), "drove-image-"));
  try {
    const layout = join(dir, "oci");
    const bundle = join(dir, "bundle");
    await run("umoci", ["init", "--layout", layout]);
    await run("umoci", ["new", "--image", `${layout}:${tag}`]);
    await run("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle]);
    const root = join(bundle, "rootfs");
    for (const d of ["bin", "www", "tmp"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync("/bin/busybox", join(root, "bin", "busybox"));
    chmodSync(join(root, "bin", "busybox"), 0o755);
    for (const applet of ["sh", "httpd", "echo", "cat", "sleep"]) symlinkSync("busybox", join(root, "bin", applet));
    writeFileSync(join(root, "www", "index.html"), page);
    await run("umoci", ["repack", "--image", `${layout}:${tag}`, bundle]);
    await run("umoci", [
      "config", "--image", `${layout}:${tag}`,
      "--config.env", "PATH=/bin",
      "--config.cmd", "/bin/sh", "--config.cmd", "-c",
      "--config.cmd", 'echo "$GREETING" > /www/env.txt; exec httpd -f -p 8080 -h /www',
    ]);
    const dest = `docker://${registry}/${name}:${tag}`;
    await run("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${layout}:${tag}`, dest]);
    const inspect = JSON.parse((await run("skopeo", ["inspect", "--tls-verify=false", dest])).stdout) as { Digest: string };
    return { tag: `${registry}/${name}:${tag}`, digestRef: `${registry}/${name}@${inspect.Digest}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
