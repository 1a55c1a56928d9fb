/** Measuring commands for benchmarks: wall time and peak RSS through GNU time, the median of a few runs. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Measurement {
  seconds: number;
  maxRssMB: number;
}

/** Runs `sh -c command` `runs` times under /usr/bin/time; returns the median wall time and the largest RSS. */
export function measure(command: string, runs = 3): Measurement {
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing: apt-get install time');
  const seconds: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    const r = spawnSync('/usr/bin/time', ['-f', '@@%e %M', 'sh', '-c', command], { encoding: 'utf8', maxBuffer: 1 << 28 });
    const m = /@@([\d.]+) (\d+)/.exec(r.stderr);
    if (r.status !== 0 || !m) throw new Error(`bench command failed (${r.status}): ${command}\n${r.stderr.slice(-2000)}`);
    seconds.push(Number(m[1]));
    rss = Math.max(rss, Number(m[2]) / 1024);
  }
  seconds.sort((a, b) => a - b);
  return { seconds: seconds[Math.floor(seconds.length / 2)]!, maxRssMB: rss };
}

export const fmt = (v: number, digits = 2): string => v.toFixed(digits);
