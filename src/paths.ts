import { homedir } from "node:os";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/**
 * The drove package's own root (where its package.json is): one folder up
 * from the sources, two from the compiled build (dist/src).
 */
export const packageRoot = [resolve(__dirname, ".."), resolve(__dirname, "..", "..")].find((d) => {
  try {
    return JSON.parse(readFileSync(join(d, "package.json"), "utf8")).name === "drove";
  } catch {
    return false;
  }
}) ?? resolve(__dirname, "..");

/**
 * Heavy, reusable artefacts: the Pulumi toolchain, Go caches, lab images.
 * `DROVE_CACHE`, else `$XDG_CACHE_HOME/drove`, else `~/.cache/drove`.
 */
export function cacheDir(): string {
  return process.env.DROVE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "drove");
}

/**
 * The project's state folder (git-ignored): Pulumi's file backend, the lab's
 * machines, its keys and inventory. `DROVE_STATE`, else `.drove` in the project
 * (the nearest folder with a Pulumi.yaml).
 */
export function stateDir(): string {
  if (process.env.DROVE_STATE) return resolve(process.env.DROVE_STATE);
  return join(projectDir(), ".drove");
}

/** The nearest folder at or above the working directory with a Pulumi.yaml, else the working directory. */
export function projectDir(from: string = process.cwd()): string {
  for (let d = resolve(from); ; d = dirname(d)) {
    if (existsSync(join(d, "Pulumi.yaml")) || existsSync(join(d, "Pulumi.yml"))) return d;
    if (dirname(d) === d) return resolve(from);
  }
}

export function labDir(): string {
  return join(stateDir(), "lab");
}

export function inventoryPath(): string {
  return process.env.DROVE_INVENTORY ?? join(labDir(), "inventory.yaml");
}
