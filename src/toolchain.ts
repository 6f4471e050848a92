import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { delimiter, join } from "node:path";
import { DroveError } from "./errors";
import { cacheDir, packageRoot, stateDir } from "./paths";

/** The one Pulumi version, as package.json pins @pulumi/pulumi. */
export function pulumiVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8"));
  return pkg.dependencies["@pulumi/pulumi"];
}

export function pulumiBinDir(): string {
  return join(cacheDir(), "pulumi", `v${pulumiVersion()}`, "bin");
}

/**
 * Makes sure the Pulumi CLI and language host are there (PATH, download, or a
 * build from Go modules; see scripts/setup-pulumi.sh) and returns their folder.
 */
export function ensurePulumi(): string {
  ensureBuilt();
  try {
    return execFileSync("bash", [join(packageRoot, "scripts", "setup-pulumi.sh")], {
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
    }).trim();
  } catch {
    throw new DroveError("Unable to set up the Pulumi CLI (see the messages above)", {
      fixes: ["install Go 1.25+ so drove can build it", `install Pulumi v${pulumiVersion()} yourself and put it on PATH`],
    });
  }
}

/**
 * In a checkout, rebuilds dist/ (what `import ... from "drove"` and the
 * provider plugin load) when a source file is newer than the last build, so
 * that a program never runs a stale build. A published package has no
 * sources, and this does nothing.
 */
export function ensureBuilt(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { builtIsFresh } = require(join(packageRoot, "bin", "launch.js")) as { builtIsFresh(): boolean };
  if (builtIsFresh() || !existsSync(join(packageRoot, "tsconfig.build.json"))) return;
  try {
    // Under a lock: two test suites starting together build once, and never read a half-written build.
    execFileSync("flock", [join(packageRoot, ".drove-build.lock"), "sh", "-c", "node -e 'process.exit(require(\"./bin/launch.js\").builtIsFresh() ? 0 : 1)' || npm run --silent build"], {
      cwd: packageRoot,
      stdio: ["ignore", "ignore", "inherit"],
    });
  } catch {
    throw new DroveError("Unable to build drove's sources into dist/ (see the messages above)", {
      fixes: ["run `npm run build` in the drove checkout and fix what it reports", "run `npm install` there first if node_modules is missing"],
    });
  }
}

/** drove's own version: the provider plugin's version. */
export function droveVersion(): string {
  return JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")).version;
}

/**
 * Installs drove's resource provider plugin into PULUMI_HOME, at drove's
 * version, as Pulumi installs any plugin: a folder `resource-drove-v<version>`
 * whose `pulumi-resource-drove` launches this package's provider.
 */
export function installProviderPlugin(pulumiHome: string): string {
  const dir = join(pulumiHome, "plugins", `resource-drove-v${droveVersion()}`);
  const launcher = join(dir, "pulumi-resource-drove");
  const target = join(packageRoot, "providers", "pulumi-resource-drove");
  const script = `#!/bin/sh\nexec ${JSON.stringify(target)} "$@"\n`;
  if (!existsSync(launcher) || readFileSync(launcher, "utf8") !== script) {
    mkdirSync(dir, { recursive: true });
    // Written aside and renamed: a run starting meanwhile never execs a half-written launcher.
    const tmp = `${launcher}.${process.pid}.tmp`;
    writeFileSync(tmp, script, { mode: 0o755 });
    renameSync(tmp, launcher);
  }
  return dir;
}

/**
 * drove's PULUMI_HOME for one checkout. The provider plugin there launches
 * *this* checkout's provider, so two checkouts (two projects, or a clone
 * beside a working copy) at the same drove version never run each other's
 * provider, as they would with one shared home where the last run wins.
 */
export function defaultPulumiHome(root: string = packageRoot): string {
  return join(cacheDir(), "pulumi-home", createHash("sha256").update(root).digest("hex").slice(0, 12));
}

/**
 * The environment in which the plain `pulumi` command works offline for a
 * drove project: the pinned CLI and drove's provider first on PATH, a file
 * backend in the project's state folder, the passphrase secrets provider, and
 * no update checks or plugin downloads.
 */
export function offlineEnv(): Record<string, string> {
  const state = stateDir();
  const backend = join(state, "pulumi");
  mkdirSync(backend, { recursive: true });
  const passphraseFile = join(state, "passphrase");
  if (!existsSync(passphraseFile) && !process.env.PULUMI_CONFIG_PASSPHRASE && !process.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    writeFileSync(passphraseFile, randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
  }
  const env: Record<string, string> = {
    PATH: [...pathPrefix(), process.env.PATH ?? ""].join(delimiter),
    PULUMI_BACKEND_URL: process.env.PULUMI_BACKEND_URL ?? `file://${backend}`,
    PULUMI_HOME: process.env.PULUMI_HOME ?? defaultPulumiHome(),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    DROVE_STATE: state,
    // One machine's failure must not stop the others from converging.
    PULUMI_CONTINUE_ON_ERROR: "true",
  };
  installProviderPlugin(env.PULUMI_HOME);
  if (!process.env.PULUMI_CONFIG_PASSPHRASE && !process.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    env.PULUMI_CONFIG_PASSPHRASE_FILE = passphraseFile;
  }
  return env;
}

/** What `drove env` puts in front of PATH: the pinned CLI, then drove's own commands. */
export function pathPrefix(): string[] {
  return [pulumiBinDir(), join(packageRoot, "bin")];
}

/**
 * `export K='v'` lines for `eval "$(drove env)"`. PATH is prepended to the
 * shell's own PATH at eval time, not frozen as this process saw it.
 */
export function renderEnv(env: Record<string, string>): string {
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return Object.entries(env)
    .map(([k, v]) => (k === "PATH" ? `export PATH=${q(pathPrefix().join(delimiter))}"\${PATH:+:\$PATH}"` : `export ${k}=${q(v)}`))
    .join("\n");
}
