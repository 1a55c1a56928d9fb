/**
 * The obvious Node implementation of hot-functions, for comparison in bench/analyzers.ts: readline-transform
 * splits the stream into line strings, each line is split on spaces. This is what the streaming reader
 * in src/trace/ is measured against, and why it does not use readline-transform on its hot path.
 *
 *   node dist/bench/readline-hot.js FILE
 */
import { createReadStream } from 'node:fs';
import ReadlineTransform from 'readline-transform';

const totals = new Map<string, number>();
let prevName = '';
let prevT = NaN;
createReadStream(process.argv[2]!)
  .pipe(new ReadlineTransform({ skipEmpty: true }))
  .on('data', (line: string) => {
    if (line.startsWith('#')) return;
    const parts = line.split(' ');
    const t = Number(parts[0]);
    if (prevName) totals.set(prevName, (totals.get(prevName) ?? 0) + Math.max(0, t - prevT));
    prevName = parts[1]!;
    prevT = t;
  })
  .on('end', () => {
    if (prevName && !totals.has(prevName)) totals.set(prevName, 0);
    const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 3);
    process.stdout.write(top.map(([k, v]) => `${v.toFixed(3)} ${k}`).join('\n') + '\n');
  });
