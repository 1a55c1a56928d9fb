/** Shared test helpers: paths to samples and the built CLI, and a way to run it. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const sample = (...parts: string[]): string => join(ROOT, 'samples', ...parts);

/** A folder under test-output/ for files a test writes and a person may want to look at. */
const emptied = new Set<string>();

export function testOutput(...parts: string[]): string {
  const dir = join(ROOT, 'test-output', ...parts);
  // Fresh once per test run (asked again, the same folder is kept): a capture refuses a non-empty --out
  // folder (capture/output/folder.ts prepareOutDir), so one left by the previous run must go.
  if (!emptied.has(dir)) rmSync(dir, { recursive: true, force: true });
  emptied.add(dir);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Runs the built CLI (`npm test` builds it first). */
export function runCli(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    input: opts.input,
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
}

/** Runs the CLI and parses its JSON output; fails the test with stderr if it did not exit 0. */
export function cliJson<T = unknown>(args: string[], opts: Parameters<typeof runCli>[1] = {}): T {
  const r = runCli([...args, '--format', 'json'], opts);
  if (r.status !== 0) throw new Error(`boot-trace ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
