/**
 * The reader's WebAssembly fast path (src/trace/wasm/line-scanner.ts) against the TypeScript parser it
 * stands in front of: on every text trace the project has, on real public inputs, on lines mutated at
 * every field boundary, in chunks of every size, the events (time, function id, offset, address), the
 * function table, the counts and the malformed-line reports must be the same with and without it.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateTrace } from '../bench/generate.js';
import { FunctionTable } from '../src/trace/functions.js';
import { TraceParser } from '../src/trace/parser.js';
import { mulberry32 } from '../src/random.js';
import { spawnSync } from 'node:child_process';
import { ROOT, runCli, sample, testOutput } from './helpers.js';

interface Result {
  events: number[];
  names: string[];
  counts: unknown;
  malformed: [number, string, number][];
  firstTime: number;
  lastTime: number;
  /** Lines the fast path parsed. */
  fastLines: number;
}

/**
 * Parses `data` pushed in chunks of `chunk` bytes (0: at once), with or without the fast path; `inPlace`:
 * each chunk is first put where a reader puts it (TraceParser.readBuffer, the fast path's own memory).
 */
function parse(data: Buffer, fastPath: boolean, chunk = 0, maxLineBytes?: number, inPlace = false): Result {
  const functions = new FunctionTable();
  const events: number[] = [];
  const malformed: [number, string, number][] = [];
  const parser = new TraceParser(
    functions,
    { event: (t, fn, offset, addr) => void events.push(t, fn, offset, addr) },
    (line, text, code) => void malformed.push([line, text, code]),
    maxLineBytes,
    fastPath,
  );
  const buffer = inPlace ? TraceParser.readBuffer(functions, chunk) : null;
  if (chunk <= 0) parser.push(data);
  else if (buffer) for (let i = 0; i < data.length; i += chunk) parser.push(buffer.subarray(0, data.copy(buffer, 0, i, i + chunk)));
  else for (let i = 0; i < data.length; i += chunk) parser.push(Buffer.from(data.subarray(i, i + chunk)));
  parser.end();
  return { events, names: functions.names, counts: parser.counts, malformed, firstTime: parser.firstTime, lastTime: parser.lastTime, fastLines: parser.fastLines };
}

/** Returns the fast path's result (its fastLines says how many lines it took). */
function expectSame(data: Buffer, chunk = 0, maxLineBytes?: number, inPlace = false): Result {
  const reference = parse(data, false, chunk, maxLineBytes);
  const fast = parse(data, true, chunk, maxLineBytes, inPlace);
  expect(reference.fastLines).toBe(0);
  // One comparison for the whole stream (a mismatch shows the first differing index), then the rest.
  expect(fast.events.length).toBe(reference.events.length);
  const firstDiff = fast.events.findIndex((v, i) => !Object.is(v, reference.events[i]));
  expect(firstDiff, `event field ${firstDiff} (line ~${Math.floor(firstDiff / 4) + 1})`).toBe(-1);
  expect(fast.names).toEqual(reference.names);
  expect(fast.counts).toEqual(reference.counts);
  expect(fast.malformed).toEqual(reference.malformed);
  expect(fast.firstTime).toBe(reference.firstTime);
  expect(fast.lastTime).toBe(reference.lastTime);
  return fast;
}

/** Every text trace in the project's samples and the shared real-world and hostile inputs. */
function traceFiles(): string[] {
  const dirs = [join(ROOT, 'samples'), join(ROOT, 'samples', 'realworld'), join(ROOT, 'samples', 'robustness'),
    join(ROOT, '..', 'shared', 'samples'), join(ROOT, '..', 'shared', 'realworld'), join(ROOT, '..', 'shared', 'robustness')];
  return dirs.filter((d) => existsSync(d)).flatMap((d) => readdirSync(d).map((f) => join(d, f)))
    .filter((f) => statSync(f).isFile() && f.endsWith('.log'));
}

describe('the WebAssembly fast path parses as the TypeScript parser does', () => {
  it('on every sample, real-world and hostile input, whole and in chunks of 1, 7, 64 and 4096 bytes', () => {
    const files = traceFiles();
    expect(files.length).toBeGreaterThan(20);
    let events = 0, fast = 0;
    for (const f of files) {
      const data = readFileSync(f);
      for (const chunk of [0, 1, 7, 64, 4096]) {
        const r = expectSame(data, chunk);
        events += r.events.length / 4;
        fast += r.fastLines;
      }
    }
    // Not a comparison of empty streams, and most of the events came through the fast path.
    expect(events).toBeGreaterThan(1_000);
    expect(fast / events).toBeGreaterThan(0.8);
  });

  it('on a generated 200,000-line trace, pushed as one 10 MB buffer (more than the fast path holds at once) and in 256 KiB reads', () => {
    const file = join(testOutput('line-scanner'), 'generated.log');
    const fd = openSync(file, 'w');
    generateTrace(200_000, fd, 7);
    closeSync(fd);
    const data = readFileSync(file);
    expect(data.length).toBeGreaterThan(1 << 20);
    const whole = expectSame(data);
    expectSame(data, 256 << 10);
    // As the readers read: into the fast path's memory, scanned where the chunk lies.
    expect(expectSame(data, 256 << 10, undefined, true).fastLines).toBe(whole.fastLines);
    expectSame(data, 4093, undefined, true);
    expect(whole.events.length / 4).toBeGreaterThan(190_000);
    // Every line of the benchmark's trace has one of the shapes the fast path takes.
    expect(whole.fastLines).toBe(whole.events.length / 4);
    rmSync(file);
  });

  it('on lines mutated at every field boundary (blanks, tabs, CR, digits, hex, offsets, tails, bytes over 126)', () => {
    const base = [
      '11409434.8589973 prepare_exit_to_usermode in section .text',
      '11409435.5189973 retint_user + 8 in section .text',
      '11409436.4899973 7fb95ab3cd20',
      '11409437 ffffffff81000000',
      '5.5 do_syscall_64 + 40',
      '6 name_alone',
      '7.25 deadbeef in section .text',
    ];
    const pieces = ['', ' ', '  ', '\t', '\r', '+', '.', '0', '9', 'a', 'F', 'g', '#', '\x7f', '\xe9', 'in', ' in section .text',
      ' in section .data', ' in section .text of vmlinux', '12345678901234567', '99999999999', 'ffffffffffffffffff', '\x00'];
    const random = mulberry32(14);
    const lines: string[] = [];
    for (const line of base) {
      lines.push(line);
      for (let k = 0; k < 400; k++) {
        const at = Math.floor(random() * (line.length + 1));
        const cut = random() < 0.3 ? Math.floor(random() * 3) : 0;
        const piece = pieces[Math.floor(random() * pieces.length)]!;
        lines.push(line.slice(0, at) + piece + line.slice(at + cut));
      }
    }
    // Timestamps and offsets at the edges of what the fast path takes (15 digits) and of the limits.
    for (const ts of ['1', '0.0', '123456789012345', '1234567890123456', '999999999999999.999999999999999', '1.1234567890123456',
      '9007199254740991', '9007199254740992', '00000000000000000001.5']) lines.push(`${ts} f + 1 in section .text`, `${ts} 7fff`);
    for (const off of ['0', '2147483647', '2147483648', '99999999999', '0000000000001']) lines.push(`1.5 f + ${off} in section .text`, `2.5 f + ${off}`);
    for (const hex of ['7fffffffffff', '800000000000', 'ffffffffffffffff', '1ffffffffffffffff', 'FFFFFFFF81000000', 'fffffffffffff801']) lines.push(`3 ${hex}`);
    const data = Buffer.from(lines.join('\n') + '\n', 'latin1');
    const r = expectSame(data);
    expect(r.malformed.length).toBeGreaterThan(100);
    expect(r.events.length / 4).toBeGreaterThan(1000);
    expectSame(data, 13);
    expectSame(data, 0, 40);
    expectSame(data, 13, undefined, true);
    expectSame(data, 4096, 40, true);
  });

  it('on a trace with more distinct names than its name cache holds (40,000), with ids in first-seen order', () => {
    const lines: string[] = [];
    for (let i = 0; i < 40_000; i++) lines.push(`${i}.5 fn_${i} + 4 in section .text`);
    for (let i = 39_999; i >= 0; i -= 3) lines.push(`${40_000 + i} fn_${i} in section .text`);
    const r = expectSame(Buffer.from(lines.join('\n') + '\n'));
    expect(r.names.length).toBe(40_002);
  });

  it('on a CPU without SSE4.1 (V8 cannot compile its SIMD: `node --no-enable-sse4-1`) the reader parses every line in TypeScript, with the same output', () => {
    const noSse41 = ['--no-enable-sse4-1'];
    // Without the flag the fast path parses the lines; with it, none (and nothing fails).
    const fastLinesOf = (flags: string[]): number => {
      const script = `import { FunctionTable } from '${ROOT}/dist/src/trace/functions.js';
        import { TraceParser } from '${ROOT}/dist/src/trace/parser.js';
        import { readFileSync } from 'node:fs';
        const p = new TraceParser(new FunctionTable(), { event() {} }, () => {});
        p.push(readFileSync(process.argv[1])); p.end(); console.log(p.fastLines, p.counts.events);`;
      const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script, sample('2016-init-module.log')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const [fast, events] = r.stdout.trim().split(' ').map(Number);
      expect(events).toBeGreaterThan(0);
      return fast!;
    };
    expect(fastLinesOf([])).toBeGreaterThan(0);
    expect(fastLinesOf(noSse41)).toBe(0);
    for (const command of ['hot-functions', 'first-calls', 'syscalls']) {
      const file = sample(command === 'syscalls' ? 'syscalls.log' : '2016-trace-excerpts.log');
      const fast = runCli([command, file, '--format', 'csv']);
      const slow = spawnSync(process.execPath, [...noSse41, join(ROOT, 'dist', 'src', 'cli.js'), command, file, '--format', 'csv'], { encoding: 'utf8' });
      expect(fast.status, fast.stderr).toBe(0);
      expect(slow.status, slow.stderr).toBe(0);
      expect(slow.stdout).toBe(fast.stdout);
      expect(slow.stderr).toBe(fast.stderr);
    }
  });
});
