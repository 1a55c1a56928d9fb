/**
 * Paths for the fuzz harness, which runs from the TypeScript sources (vitest) and from dist/ (npm run bench),
 * so the repository root is found by looking upwards for samples/, not from this file's fixed depth.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'samples', 'robustness')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no repository (samples/robustness) above ${fileURLToPath(import.meta.url)}`);
  }
}

export const ROOT = findRoot();
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/** Runs the built CLI. */
export function runCli(args: string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8', input: opts.input, cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 256 << 20,
  });
}
