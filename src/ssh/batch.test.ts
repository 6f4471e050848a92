import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import fc from "fast-check";
import { quote } from "../quote";
import { composeBatch, parseBatch } from "./batch";

/** Runs a script under the local `sh`, as sshd would on a machine. */
function runSh(script: string): Buffer {
  const r = spawnSync("sh", ["-c", script], { maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

describe("composeBatch / parseBatch", () => {
  it("gives each probe its own stdout, stderr and exit status, in order", () => {
    // given
    const commands = ["printf 'a\\nb'", "echo oops >&2; exit 3", "true", "sleep 0.2; echo late"];
    const batch = composeBatch(commands.map((c) => "sh -c " + quote(c)));
    // when
    const results = parseBatch(runSh(batch.script), batch, commands.length);
    // then
    assert.ok(results);
    assert.deepEqual(
      results.map((r) => [r.code, r.stdout.toString(), r.stderr.toString()]),
      [
        [0, "a\nb", ""],
        [3, "", "oops\n"],
        [0, "", ""],
        [0, "late\n", ""],
      ],
    );
  });

  it("runs the probes at the same time, not one after another", () => {
    // given: each probe waits until all have started (a barrier through the file system)
    const dir = spawnSync("mktemp", ["-d"]).stdout.toString().trim();
    const n = 4;
    const probe = `touch ${dir}/$$; i=0; while [ $(ls ${dir} | wc -l) -lt ${n} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ls ${dir} | wc -l`;
    const batch = composeBatch(Array.from({ length: n }, () => "sh -c " + quote(probe)));
    // when
    const results = parseBatch(runSh(batch.script), batch, n);
    spawnSync("rm", ["-rf", dir]);
    // then: every probe saw all n started
    assert.deepEqual(results?.map((r) => r.stdout.toString().trim()), Array(n).fill(String(n)));
  });

  it("runs a command that ends in a comment or is a list, each as a whole in the background", () => {
    const commands = ["echo a # a comment", "echo b; echo c >&2; exit 4"];
    const batch = composeBatch(commands);
    const results = parseBatch(runSh(batch.script), batch, commands.length);
    assert.deepEqual(
      results?.map((r) => [r.code, r.stdout.toString(), r.stderr.toString()]),
      [
        [0, "a\n", ""],
        [4, "b\n", "c\n"],
      ],
    );
  });

  it("runs each probe as alone: its variables, directory and exit are its own, and the batch's names are not the ones probes use", () => {
    const scripts = ["d=x; p0=y; cd /; exit 3", 'echo "[${d:-}${p0:-}${r0:-}${i:-}]" "$(pwd)"'];
    const batch = composeBatch(scripts);
    const r = spawnSync("sh", ["-c", batch.script], { cwd: "/tmp" });
    const results = parseBatch(r.stdout, batch, 2);
    assert.deepEqual(results?.map((x) => [x.code, x.stdout.toString()]), [
      [3, ""],
      [0, "[] /tmp\n"],
    ]);
  });

  it("refuses output whose frames do not add up, so the caller falls back", () => {
    const batch = composeBatch(["true", "true"]);
    const good = runSh(batch.script);
    assert.ok(parseBatch(good, batch, 2));
    assert.equal(parseBatch(good.subarray(0, good.length - 1), batch, 2), undefined, "truncated");
    assert.equal(parseBatch(Buffer.concat([good, Buffer.from("x")]), batch, 2), undefined, "trailing bytes");
    assert.equal(parseBatch(good, composeBatch(["true", "true"]), 2), undefined, "another batch's marker");
    assert.equal(parseBatch(good, batch, 3), undefined, "a probe missing");
  });

  it("carries any bytes a probe prints, even ones that look like a frame", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 100 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (probes, forge) => {
          // given: probes printing arbitrary bytes (as octal escapes through printf)
          const esc = (b: Uint8Array) => Array.from(b, (x) => "\\" + x.toString(8).padStart(3, "0")).join("");
          const make = (boundary: string) =>
            probes.map(([o, e, code], i) => {
              const fake = forge ? `${boundary} ${i + 1} 0 0 0\\n` : "";
              return "sh -c " + quote(`printf '${esc(o)}${fake}'; printf '${esc(e)}' >&2; exit ${code}`);
            });
          // the forged frame uses this batch's real marker
          const real = composeBatch(make("PLACEHOLDER"));
          const script = real.script.split("PLACEHOLDER").join(real.boundary);
          // when
          const results = parseBatch(runSh(script), real, probes.length);
          // then
          assert.ok(results);
          probes.forEach(([o, e, code], i) => {
            const fake = forge ? Buffer.from(`${real.boundary} ${i + 1} 0 0 0\n`) : Buffer.alloc(0);
            assert.deepEqual(results[i].stdout, Buffer.concat([Buffer.from(o), fake]));
            assert.deepEqual(results[i].stderr, Buffer.from(e));
            assert.equal(results[i].code, code);
          });
        },
      ),
      { numRuns: 40 },
    );
  });
});
