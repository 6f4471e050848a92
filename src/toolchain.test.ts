import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultPulumiHome, installProviderPlugin, pathPrefix, pulumiVersion, renderEnv } from "./toolchain";

describe("drove env", () => {
  it("renders exports that a shell evaluates back to the same values, hostile ones included", () => {
    // given
    const env = { PULUMI_BACKEND_URL: "file:///tmp/it's here/$(touch pwned)", PULUMI_SKIP_UPDATE_CHECK: "true" };
    // when
    const out = execFileSync("sh", ["-c", `${renderEnv(env)}\nprintf '%s\\n' "$PULUMI_BACKEND_URL" "$PULUMI_SKIP_UPDATE_CHECK"`], { encoding: "utf8" });
    // then
    assert.equal(out, `${env.PULUMI_BACKEND_URL}\ntrue\n`);
  });

  it("prepends drove's folders to the shell's own PATH at eval time", () => {
    // given a PATH the evaluating shell has, unknown to drove
    const script = `${renderEnv({ PATH: "ignored" })}\nprintf '%s' "$PATH"`;
    // when
    const out = execFileSync("sh", ["-c", script], { encoding: "utf8", env: { PATH: "/usr/bin:/bin:/opt/mine" } });
    // then
    assert.equal(out, `${pathPrefix().join(":")}:/usr/bin:/bin:/opt/mine`);
  });

  it("pins one exact Pulumi version, the SDK's", () => {
    assert.match(pulumiVersion(), /^\d+\.\d+\.\d+$/);
    assert.ok(pathPrefix()[0].endsWith(`/pulumi/v${pulumiVersion()}/bin`));
  });

  it("gives each checkout its own PULUMI_HOME, whose plugin launches that checkout's provider", () => {
    // given two checkouts of the same drove version
    const a = defaultPulumiHome("/src/one/drove");
    const b = defaultPulumiHome("/src/two/drove");
    // then their homes differ, and are stable for a checkout
    assert.notEqual(a, b);
    assert.equal(defaultPulumiHome("/src/one/drove"), a);
  });

  it("installs a launcher that execs this package's provider", () => {
    // given
    const home = mkdtempSync(join(tmpdir(), "drove-home-"));
    try {
      // when
      const dir = installProviderPlugin(home);
      // then
      const launcher = readFileSync(join(dir, "pulumi-resource-drove"), "utf8");
      assert.match(launcher, new RegExp(`exec "${join(__dirname, "..", "providers", "pulumi-resource-drove").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
