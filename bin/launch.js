// Loads one of drove's entry points: the compiled build (dist/, made by
// `npm run build`) when it is there and no source file is newer, else the
// TypeScript source through tsx. A published package has only dist/; a
// checkout being edited never runs a stale build.
"use strict";
const { existsSync, readdirSync, statSync } = require("node:fs");
const { join } = require("node:path");

const root = join(__dirname, "..");
const SOURCES = ["src", "constructs", "providers", "integration/lab"];

function newestSource(dir, since) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (newestSource(p, since)) return true;
    } else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && statSync(p).mtimeMs > since) return true;
  }
  return false;
}

/** Whether dist/ holds a build at least as new as every source file (true when there are no sources). */
function builtIsFresh() {
  const marker = join(root, "dist", ".tsbuildinfo");
  if (!existsSync(marker)) return false;
  const built = statSync(marker).mtimeMs;
  return !SOURCES.some((d) => existsSync(join(root, d)) && newestSource(join(root, d), built));
}

/** Runs `rel` (a path under the package root without extension): dist/<rel>.js when fresh, else <rel>.ts. */
function launch(rel) {
  if (builtIsFresh()) return require(join(root, "dist", `${rel}.js`));
  require("tsx/cjs/api").register();
  return require(join(root, `${rel}.ts`));
}

module.exports = { launch, builtIsFresh };
