/**
 * A V8 CPU profile of the program and of drove's provider during one Pulumi
 * run, for the question "where does a no-change run spend its CPU"
 * (bench/README.md). Pulumi refuses `--cpu-prof` in NODE_OPTIONS, but a
 * preload is allowed:
 *
 *   NODE_OPTIONS="--require $PWD/bench/cpu-profile.cjs" pulumi preview --refresh ...
 *
 * writes `<DROVE_CPU_PROFILE_DIR or /tmp>/{program,provider}-<pid>.cpuprofile`
 * (open them in Chrome DevTools, Performance). The engine stops a provider
 * without letting it exit, so the provider's profile is written after
 * DROVE_CPU_PROFILE_MS (default 2500: the refresh of a no-change run).
 * Any other node process started with the preload is left alone.
 */
const inspector = require("node:inspector");
const { writeFileSync } = require("node:fs");
const { join } = require("node:path");

const who = process.argv.some((a) => a === "--monitor" || a.startsWith("--monitor="))
  ? "program"
  : process.argv.some((a) => /pulumi-resource-drove|providers[/\\]main/.test(a))
    ? "provider"
    : undefined;

if (who) {
  const session = new inspector.Session();
  session.connect();
  session.post("Profiler.enable", () => session.post("Profiler.setSamplingInterval", { interval: 200 }, () => session.post("Profiler.start")));
  let saved = false;
  const save = () => {
    if (saved) return;
    saved = true;
    session.post("Profiler.stop", (err, r) => {
      if (!err && r) writeFileSync(join(process.env.DROVE_CPU_PROFILE_DIR || "/tmp", `${who}-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    });
  };
  const exit = process.exit;
  process.exit = function (code) {
    save();
    return exit.call(process, code);
  };
  process.on("beforeExit", save);
  if (who === "provider") setTimeout(save, Number(process.env.DROVE_CPU_PROFILE_MS || 2500)).unref();
}
