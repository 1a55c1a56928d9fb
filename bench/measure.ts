/**
 * Helpers shared by the benchmarks: measuring commands (wall time and peak RSS through GNU time, the
 * median of a few runs), and running a benchmark module on its own (`node dist/bench/<name>.js`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Measurement {
  seconds: number;
  maxRssMB: number;
}

/** Runs `sh -c command` `runs` times under /usr/bin/time; returns the median wall time and the largest RSS. */
export function measure(command: string, runs = 3): Measurement {
  const seconds: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    const m = measureOnce(command);
    seconds.push(m.seconds);
    rss = Math.max(rss, m.maxRssMB);
  }
  seconds.sort((a, b) => a - b);
  return { seconds: seconds[Math.floor(seconds.length / 2)]!, maxRssMB: rss };
}

/** One run of `sh -c command` under /usr/bin/time: wall seconds, peak RSS, and user + system CPU seconds. */
export function measureOnce(command: string): Measurement & { cpuSeconds: number } {
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing: apt-get install time');
  const r = spawnSync('/usr/bin/time', ['-f', '@@%e %M %U %S', 'sh', '-c', command], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const m = /@@([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`bench command failed (${r.status}): ${command}\n${r.stderr.slice(-2000)}`);
  return { seconds: Number(m[1]), maxRssMB: Number(m[2]) / 1024, cpuSeconds: Number(m[3]) + Number(m[4]) };
}

export const fmt = (v: number, digits = 2): string => v.toFixed(digits);

/** The middle value (the upper one of the two middles for an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * When `moduleUrl` (the caller's import.meta.url) is the program Node was started with, run the
 * benchmark and print its markdown section; a failure prints its stack and exits 1. Imported by
 * bench/run.ts instead, the module does nothing here.
 */
export function runWhenMain(moduleUrl: string, run: () => Promise<string>): void {
  if (process.argv[1] !== fileURLToPath(moduleUrl)) return;
  run().then((s) => process.stdout.write(s), (err) => {
    process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
    process.exit(1);
  });
}
