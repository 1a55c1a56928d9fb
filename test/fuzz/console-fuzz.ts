/**
 * Console fuzzing, black box: the console reader (analyzers/console-lines.ts, whose internals are being
 * rewritten) gets mutated consoles in random chunk sizes and must keep its contract: no throw other than
 * UserError, every stamp it reports null or a finite number, line numbers counting up from 1, and each
 * input done within the hang limit. What the lines mean is the console analyzers' tests' business.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ConsoleParser } from '../../analyzers/console-lines.js';
import { UserError } from '../../src/errors.js';
import { ROOT } from './paths.js';
import { int, mutateText, pick, rng } from './mutate.js';
import { addFailure, emptyFuzzCounts, type FuzzCounts } from './trace-fuzz.js';

export const CONSOLE_TOKENS = [
  '[    0.100000] ', '[', ']', '[ 12.5]', '[    T1]', '<7>', '12634512.3 ', '9'.repeat(400), '9'.repeat(400) + '.5 ',
  `[${'9'.repeat(400)}.000001] `, 'calling  foo+0x0/0x10 @ 1', 'initcall foo+0x0/0x10 returned 0 after ', ' usecs', '-5',
  'Freeing unused kernel image (initmem) memory: 2736K', 'Run /init as init process', 'Linux version 6.1.0', 'SeaBIOS',
  '\x1b[2J', '\x1bc', '\x1b[', '\r', '\n', '\r\n', ' ', '\t', '\x00', '\xff', '\u00e9', '.', '0', 'NaN', 'Infinity',
];

function consoleSeeds(): string[] {
  const seeds: string[] = [];
  for (const dir of [join(ROOT, 'samples', 'console'), join(ROOT, 'samples', 'robustness')]) {
    for (const f of readdirSync(dir)) {
      if (!f.startsWith('console') && !f.startsWith('dmesg') && !f.startsWith('qemu')) continue;
      const raw = readFileSync(join(dir, f));
      const text = (f.endsWith('.gz') ? gunzipSync(raw) : raw).toString('latin1');
      // A window of a long console: mutations should land among few lines.
      const at = text.length > 4000 ? text.indexOf('\n', Math.floor(text.length / 3)) + 1 : 0;
      seeds.push(text.slice(at, at + 4000));
    }
  }
  return seeds;
}

const finiteOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isFinite(v));

export function fuzzConsoleReader(n: number, seed: number, hangMs = 2000): FuzzCounts {
  const r = rng(seed);
  const seeds = consoleSeeds();
  const c = emptyFuzzCounts();
  for (let k = 0; k < n; k++) {
    const text = mutateText(r, pick(r, seeds), CONSOLE_TOKENS, 1 + int(r, 6));
    const buf = Buffer.from(text, 'latin1');
    c.inputs++;
    const bad: string[] = [];
    let lastLine = 0;
    // Every way of reading host stamps: decided from the file, forced on (capture's console.log), off.
    const hostStamps = pick(r, ['auto', true, false] as const);
    const parser = new ConsoleParser({
      line: (l) => {
        if (l.lineNo !== lastLine + 1) bad.push(`line number ${l.lineNo} after ${lastLine}`);
        lastLine = l.lineNo;
        if (!finiteOrNull(l.hostUs) || !Number.isFinite(l.bytes)) bad.push(`line ${l.lineNo}: hostUs ${l.hostUs}, bytes ${l.bytes}`);
      },
      message: (m) => {
        if (!finiteOrNull(m.hostUs) || !finiteOrNull(m.kernelUs)) bad.push(`message at line ${m.lineNo}: hostUs ${m.hostUs}, kernelUs ${m.kernelUs}`);
      },
    }, { hostStamps });
    const started = performance.now();
    try {
      const chunk = pick(r, [1, 5, 64, 4096, buf.length + 1]);
      for (let i = 0; i < buf.length; i += chunk) parser.push(buf.subarray(i, i + chunk));
      parser.end();
      if (bad.length) addFailure(c, 'wrong', `seed ${seed} input ${k} (hostStamps ${hostStamps}): ${bad[0]}\n${JSON.stringify(text.slice(0, 300))}`);
    } catch (err) {
      if (!(err instanceof UserError)) addFailure(c, 'crashes', `seed ${seed} input ${k}: ${String(err)}\n${JSON.stringify(text.slice(0, 300))}`);
    }
    if (performance.now() - started > hangMs) addFailure(c, 'hangs', `seed ${seed} input ${k}: ${(performance.now() - started).toFixed(0)} ms`);
  }
  return c;
}
