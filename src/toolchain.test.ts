import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { pathPrefix, pulumiVersion, renderEnv } from "./toolchain";

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
});
