import { execFile, spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { DroveError } from "../../src/errors";

export interface RunOptions {
  /** Return the result instead of throwing on a non-zero exit. */
  readonly allowFail?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
  readonly timeoutMs?: number;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program with an argument vector (never through a shell). */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 0 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 127) : 0;
        const result = { code, stdout: String(stdout), stderr: String(stderr) };
        if (err && !options.allowFail) {
          const missing = (err as { code?: unknown }).code === "ENOENT";
          reject(
            new DroveError(
              missing
                ? `\`${cmd}\` is not installed on this machine`
                : `\`${[cmd, ...args].join(" ")}\` failed (exit ${code}): ${String(stderr).trim().split("\n").slice(-3).join(" ")}`,
              { fixes: missing ? [`run \`npm run setup\`, which installs the lab's Debian packages`, `install the package that provides ${cmd}`] : [] },
            ),
          );
        } else resolve(result);
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Starts a long-lived process detached from this one, its output to a log file. */
export function spawnDetached(cmd: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): number {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd], env: env ?? process.env });
    child.unref();
    if (child.pid === undefined) throw new DroveError(`Unable to start ${cmd}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function which(cmd: string): Promise<boolean> {
  return (await run("sh", ["-c", 'command -v "$1"', "sh", cmd], { allowFail: true })).code === 0;
}
