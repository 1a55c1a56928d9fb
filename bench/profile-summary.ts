/**
 * Self time per function from a V8 CPU profile (`node --cpu-prof --cpu-prof-dir=DIR ...` writes one
 * .cpuprofile per thread): the figures behind docs/performance.md's profile tables.
 *
 *   node dist/bench/profile-summary.js FILE.cpuprofile [TOP]
 *
 * Prints the profile's total sampled milliseconds, then the TOP (default 15) functions by self time:
 * milliseconds, percent, name and script:line (paths shortened to the repository's).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function selfTimes(profile: CpuProfile): { totalMs: number; rows: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/.*\/(dist|node_modules)\//, '')}:${f.lineNumber + 1}`;
    const us = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  return { totalMs: total / 1000, rows: [...self].map(([k, us]) => [k, us / 1000] as [string, number]).sort((a, b) => b[1] - a[1]) };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/dist\//, '/dist/'))) {
  const { totalMs, rows } = selfTimes(JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as CpuProfile);
  const top = Number(process.argv[3] ?? 15);
  process.stdout.write(`total ${totalMs.toFixed(0)} ms\n`);
  for (const [name, ms] of rows.slice(0, top)) process.stdout.write(`${ms.toFixed(0).padStart(6)} ms ${((100 * ms) / totalMs).toFixed(1).padStart(5)}%  ${name}\n`);
}
