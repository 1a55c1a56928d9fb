/**
 * Hostile and unlucky trace inputs (issue 15): numbers too big for a double, whitespace the format allows,
 * lines of any length in every input form. Each gives a sane answer with a coded warning per bad line, or a
 * one-line error. The samples in samples/robustness/ are the reduced inputs that broke the reader before.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { hotFunctionColumns } from '../src/output/columns.js';
import { valueGuard, writeRows } from '../src/output/write.js';
import { FunctionTable } from '../src/trace/functions.js';
import { MALFORMED_CODES } from '../src/trace/malformed.js';
import { TraceParser } from '../src/trace/parser.js';
import { readTrace } from '../src/trace/reader.js';
import { CLI, cliJson, runCli, sample } from './helpers.js';

interface Hot { function: string; time_us: number; percent: number; lines: number }
interface First { function: string; first_us: number }

/** What the parser makes of a text: events as [t, name, offset] and malformed lines as [line, code]. */
function parse(text: string, maxLineBytes?: number) {
  const functions = new FunctionTable();
  const events: [number, string, number][] = [];
  const malformed: [number, string][] = [];
  const p = new TraceParser(functions, { event: (t, fn, off) => events.push([t, functions.names[fn]!, off]) },
    (line, _text, code) => malformed.push([line, MALFORMED_CODES[code]!]), maxLineBytes);
  p.push(Buffer.from(text, 'latin1'));
  p.end();
  return { events, malformed };
}

const robust = (f: string): string => sample('robustness', f);

describe('numbers out of range', () => {
  it('skips a 400-digit offset as OFFSET_RANGE and keeps the lines around it', () => {
    const r = runCli(['hot-functions', robust('trace-infinite-offset.log'), '--format', 'json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/trace-infinite-offset\.log:2: malformed line skipped: "11 setup_arch \+ 1000.*" \[OFFSET_RANGE: the offset is above 2147483647/);
    // 10 start_kernel, 12 setup_arch + 5, 20 mm_init: 2 us and 8 us of 10.
    expect(JSON.parse(r.stdout)).toEqual([
      { function: 'setup_arch', time_us: 8, percent: 80, lines: 1 },
      { function: 'start_kernel', time_us: 2, percent: 20, lines: 1 },
      { function: 'mm_init', time_us: 0, percent: 0, lines: 1 },
    ]);
  });

  it('skips a 400-digit timestamp as TIMESTAMP_RANGE: no Infinity in time, percent or first calls', () => {
    const hot = runCli(['hot-functions', robust('trace-infinite-timestamp.log'), '--format', 'json']);
    expect(hot.status, hot.stderr).toBe(0);
    expect(hot.stderr).toMatch(/trace-infinite-timestamp\.log:2: malformed line skipped: "1000.*" \[TIMESTAMP_RANGE: /);
    expect(JSON.parse(hot.stdout)).toEqual([
      { function: 'start_kernel', time_us: 10, percent: 100, lines: 1 },
      { function: 'mm_init', time_us: 0, percent: 0, lines: 1 },
    ]);
    expect(cliJson<First[]>(['first-calls', robust('trace-infinite-timestamp.log')])).toEqual([
      { first_us: 10, function: 'start_kernel' },
      { first_us: 20, function: 'mm_init' },
    ]);
    for (const args of [['summary'], ['export', '--to', 'chrome'], ['syscalls', '--format', 'csv']]) {
      const r = runCli([args[0]!, robust('trace-infinite-timestamp.log'), ...args.slice(1)]);
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(0);
      expect(r.stdout, args[0]).not.toMatch(/Infinity|NaN|∞/);
    }
  });

  it('never shows a percent above 100 when time goes backwards', () => {
    // 0 -> 100 -> 0 -> 100: 200 us counted over a 100 us span.
    const rows = cliJson<Hot[]>(['hot-functions', '-'], { input: '0 kernel_init\n100 mm_init\n0 kernel_init\n100 mm_init\n' });
    expect(rows).toEqual([
      { function: 'kernel_init', time_us: 200, percent: 100, lines: 2 },
      { function: 'mm_init', time_us: 0, percent: 0, lines: 2 },
    ]);
  });

  it('reads the largest timestamp and offset the format allows, and rejects one more', () => {
    const { events, malformed } = parse('9007199254740991 a + 2147483647\n9007199254740992 b\n1 c + 2147483648\n');
    expect(events).toEqual([[9007199254740991, 'a', 2147483647]]);
    expect(malformed).toEqual([[2, 'TIMESTAMP_RANGE'], [3, 'OFFSET_RANGE']]);
  });
});

describe('what the format accepts, exactly (docs/trace-format.md)', () => {
  it('reads the spec-deviations sample as documented: blanks anywhere, timestamps only as digits[.digits]', () => {
    const r = runCli(['first-calls', robust('trace-spec-deviations.log'), '--format', 'json']);
    expect(r.status, r.stderr).toBe(0);
    // `12 d +8`, `13 e +<TAB>8`, `14 f in  section`, `15 g in<TAB>section` are all within the grammar.
    expect(JSON.parse(r.stdout)).toEqual([
      { first_us: 10, function: 'start_kernel' },
      { first_us: 12, function: 'd' },
      { first_us: 13, function: 'e' },
      { first_us: 14, function: 'f' },
      { first_us: 15, function: 'g' },
    ]);
    const warnings = r.stderr.trim().split('\n');
    expect(warnings).toEqual([
      expect.stringMatching(/:2: malformed line skipped: "\. a" \[BAD_TIMESTAMP: /),
      expect.stringMatching(/:3: malformed line skipped: "\.5 b" \[BAD_TIMESTAMP: /),
      expect.stringMatching(/:4: malformed line skipped: "11\. c" \[BAD_TIMESTAMP: /),
    ]);
  });

  it('names the code with --strict, and totals the skipped lines by code', async () => {
    const strict = runCli(['first-calls', robust('trace-spec-deviations.log'), '--strict']);
    expect(strict.status).toBe(1);
    expect(strict.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^boot-trace: .*trace-spec-deviations\.log:2: malformed line: "\. a" \[BAD_TIMESTAMP: /)]);
    const warnings: string[] = [];
    await readTrace(sample('with-malformed.log'), () => ({ event() {} }), { reportLimit: 1, warn: (w) => warnings.push(w) });
    // Lines 3-8 of the sample: garbage, a timestamp alone, "+" with no offset, a bad timestamp, trailing text.
    expect(warnings.at(-1)).toMatch(/with-malformed\.log: 5 malformed lines skipped in all \(BAD_TIMESTAMP 2, MISSING_SYMBOL 1, BAD_OFFSET 1, UNEXPECTED_TEXT 1\)$/);
  });

  it('gives each example of the codes table its code', () => {
    const doc = readFileSync(join(sample(), '..', 'docs', 'trace-format.md'), 'utf8');
    const table = doc.slice(doc.indexOf('### Malformed-line codes'));
    let checked = 0;
    for (const row of table.split('\n').filter((l) => /^\| `[A-Z_]+` \|/.test(l))) {
      const code = /^\| `([A-Z_]+)`/.exec(row)![1]!;
      const examples = [...row.split('|')[3]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\\xff/g, '\xff').replace(/\\r/g, '\r'));
      for (const ex of examples) {
        expect(parse(`${ex}\n`).malformed, `${code}: ${JSON.stringify(ex)}`).toEqual([[1, code]]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
    expect(parse(`${'1 '.repeat(40)}\n`, 64).malformed).toEqual([[1, 'LINE_TOO_LONG']]);
  });

  it('takes any run of spaces and tabs between fields, and CRLF, and nothing else as a blank', () => {
    const { events, malformed } = parse(' \t1\t \tfoo \t+\t 8\t in \t section\t.text \t\r\n2 bar+8\n3\vbaz\n4 qux\xa0in section .text\n');
    expect(events).toEqual([[1, 'foo', 8], [2, 'bar+8', 0]]);
    expect(malformed).toEqual([[3, 'BAD_TIMESTAMP'], [4, 'BAD_SYMBOL']]);
  });
});

describe('long lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bt-long-'));
  // A 20 MB line between two good ones: long enough that the old quadratic carry took minutes on .gz.
  const text = Buffer.concat([Buffer.from('10 start_kernel in section .text\n11 '), Buffer.alloc(20 << 20, 0x61), Buffer.from('\n12 mm_init\n')]);
  const plain = join(dir, 'long.log');
  const gz = join(dir, 'long.log.gz');
  writeFileSync(plain, text);
  writeFileSync(gz, gzipSync(text));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('cuts a line over 64 KiB and reports it once, the same from a plain file, .gz, stdin and the parallel reader', () => {
    const runs = [
      runCli(['hot-functions', plain, '--format', 'json']),
      runCli(['hot-functions', gz, '--format', 'json']),
      runCli(['hot-functions', '-', '--format', 'json'], { input: text }),
      runCli(['hot-functions', plain, '--format', 'json'], { env: { BOOT_TRACE_PARALLEL_MIN: '1', BOOT_TRACE_PARALLEL_RANGE: '4096' } }),
    ];
    for (const r of runs) {
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual([
        { function: 'start_kernel', time_us: 2, percent: 100, lines: 1 },
        { function: 'mm_init', time_us: 0, percent: 0, lines: 1 },
      ]);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/:2: malformed line skipped: "11 a{117}" \[LINE_TOO_LONG: the line is longer than 65536 bytes/)]);
    }
  });

  it('keeps a line of exactly the limit and cuts one byte more, across chunk boundaries', () => {
    const line = (n: number): string => `1 ${'x'.repeat(n - 2)}`;
    for (const chunk of [1, 7, 100, 1 << 20]) {
      const functions = new FunctionTable();
      const got: string[] = [];
      const p = new TraceParser(functions, { event: (_t, fn) => got.push(functions.names[fn]!) }, (l, _t, code) => got.push(`${l}:${MALFORMED_CODES[code]}`), 200);
      const buf = Buffer.from(`${line(200)}\n${line(201)}\n${line(200)}\r\n${line(5000)}`);
      for (let i = 0; i < buf.length; i += chunk) p.push(buf.subarray(i, i + chunk));
      p.end();
      // A CR counts: "...\r" of 201 bytes is one too many.
      expect(got, `chunk ${chunk}`).toEqual(['x'.repeat(198), '2:LINE_TOO_LONG', '3:LINE_TOO_LONG', '4:LINE_TOO_LONG']);
    }
  });

  it('ends every command on a .gz holding one long line promptly (the old reader took minutes)', () => {
    for (const args of [['first-calls'], ['summary'], ['export', '--to', 'collapsed'], ['syscalls']]) {
      const r = spawnSync(process.execPath, [CLI, args[0]!, gz, ...args.slice(1)], { encoding: 'utf8', timeout: 30_000 });
      expect(r.error, args[0]).toBeUndefined();
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(0);
    }
  });
});

describe('the writers\' last guard', () => {
  it('writes no Infinity, NaN, percent above 100 or negative duration, and names the column once', async () => {
    const warnings: string[] = [];
    const guard = valueGuard(hotFunctionColumns(), (w) => warnings.push(w));
    const rows = [
      { function: 'a', time_us: Infinity, percent: 600, lines: 1 },
      { function: 'b', time_us: -5, percent: NaN, lines: 2 },
      { function: 'c', time_us: 5, percent: 100, lines: 3 },
    ].map(guard);
    expect(rows).toEqual([
      { function: 'a', time_us: null, percent: null, lines: 1 },
      { function: 'b', time_us: null, percent: null, lines: 2 },
      { function: 'c', time_us: 5, percent: 100, lines: 3 },
    ]);
    expect(warnings).toEqual([
      'boot-trace: internal error: time_us Infinity is not a finite number; written as empty (please report this with the input)',
      'boot-trace: internal error: percent 600 is a percent outside 0-100; written as empty (please report this with the input)',
    ]);
    // Through writeRows, every format: the table too, whatever the column's own formatting does with null.
    for (const format of ['table', 'csv', 'json'] as const) {
      let out = '';
      const sink = new (await import('node:stream')).Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) });
      const stderr = process.stderr.write;
      process.stderr.write = (() => true) as typeof process.stderr.write;
      try {
        await writeRows([{ function: 'a', time_us: 1, percent: 250, lines: 1 }], hotFunctionColumns(), format, sink);
      } finally {
        process.stderr.write = stderr;
      }
      expect(out, format).not.toMatch(/250/);
    }
  });
});

describe('every robustness sample, every command that reads it', () => {
  const shared = join(sample(), '..', '..', 'shared', 'robustness');
  const files = readdirSync(sample('robustness')).filter((f) => f.endsWith('.log'));

  it('holds a copy of each of ../shared/robustness/', (ctx) => {
    if (!existsSync(shared)) ctx.skip('no ../shared/robustness next to the repository (only on the project machine)');
    for (const f of readdirSync(shared)) expect(readFileSync(sample('robustness', f)), f).toEqual(readFileSync(join(shared, f)));
  });

  it('answers sanely (no Infinity, NaN, negative duration or percent outside 0-100) or fails in one line', () => {
    const commands = (f: string): string[][] => (f.startsWith('trace')
      ? [['hot-functions'], ['first-calls'], ['syscalls'], ['syscalls', '--summary']]
      : [['stages'], ['initcalls']]);
    let runs = 0;
    for (const f of files) {
      for (const cmd of commands(f)) {
        const r = runCli([cmd[0]!, robust(f), ...cmd.slice(1), '--format', 'json']);
        const what = `${cmd.join(' ')} ${f}: ${r.stderr}`;
        expect(r.stderr, what).not.toMatch(/internal error|\n\s+at /);
        if (r.status !== 0) {
          expect(r.status, what).toBe(1);
          expect(r.stderr.trim().split('\n').at(-1), what).toMatch(/^boot-trace: /);
          continue;
        }
        runs++;
        expect(r.stdout, what).not.toMatch(/Infinity|NaN/);
        for (const row of JSON.parse(r.stdout) as Record<string, unknown>[]) {
          for (const [key, v] of Object.entries(row)) {
            if (typeof v !== 'number') continue;
            if (key === 'percent') expect(v, `${what} ${key}`).toBeGreaterThanOrEqual(0);
            if (key === 'percent') expect(v, `${what} ${key}`).toBeLessThanOrEqual(100);
            if (/(duration|time|total|mean|max)_us$/.test(key)) expect(v, `${what} ${key}`).toBeGreaterThanOrEqual(0);
          }
        }
      }
    }
    expect(runs).toBeGreaterThanOrEqual(12);
  });
});
