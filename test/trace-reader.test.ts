import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FunctionTable, UNRESOLVED, USER } from '../src/trace/functions.js';
import { TraceParser } from '../src/trace/parser.js';
import { readTrace } from '../src/trace/reader.js';
import { sample } from './helpers.js';

interface Ev { t: number; fn: string; offset: number; addr: number }

/** Parses text fed in chunks of `chunk` bytes and returns the events with names resolved. */
function parse(text: string | Buffer, chunk = 1 << 20) {
  const functions = new FunctionTable();
  const events: Ev[] = [];
  const malformed: [number, string][] = [];
  const p = new TraceParser(functions, { event: (t, fn, offset, addr) => events.push({ t, fn: functions.names[fn]!, offset, addr }) },
    (line, t) => malformed.push([line, t]));
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  for (let i = 0; i < buf.length; i += chunk) p.push(buf.subarray(i, i + chunk));
  p.end();
  return { events, malformed, counts: p.counts };
}

describe('trace line parser', () => {
  it('reads the three line forms of the 2016 traces', () => {
    const { events } = parse(readFileSync(sample('2016-enter-userspace.log')));
    expect(events[0]).toEqual({ t: 11409434.8589973, fn: 'prepare_exit_to_usermode', offset: 0, addr: 0 });
    expect(events[1]).toEqual({ t: 11409435.5189973, fn: 'retint_user', offset: 8, addr: 0 });
    expect(events[2]).toEqual({ t: 11409436.4899973, fn: '[user]', offset: -1, addr: 0x7fb95ab3cd20 });
    expect(events).toHaveLength(5);
  });

  it('puts bare kernel-half addresses in [unresolved] and user ones in [user]', () => {
    const { events } = parse('1 ffffffff81000000\n2 7fffffffffff\n3 800000000000\n');
    expect(events.map((e) => e.fn)).toEqual(['[unresolved]', '[user]', '[unresolved]']);
  });

  it('accepts CRLF, blank lines, comments, tabs and integer timestamps', () => {
    const { events, counts } = parse('# meta\r\n\r\n5\tfoo in section .text\r\n  6 foo + 3 in section .text\r\n');
    expect(events.map((e) => [e.t, e.fn, e.offset])).toEqual([[5, 'foo', 0], [6, 'foo', 3]]);
    expect(counts).toMatchObject({ lines: 4, comments: 1, blank: 1, events: 2, malformed: 0 });
  });

  it('counts malformed lines with their 1-based line numbers', () => {
    const { events, malformed } = parse(readFileSync(sample('with-malformed.log')));
    expect(malformed.map(([n]) => n)).toEqual([3, 4, 5, 7, 8]);
    expect(malformed[0]![1]).toBe('garbage line here');
    expect(events.map((e) => e.fn)).toEqual(['start_kernel', 'setup_arch', 'mm_init']);
  });

  it('gives the same events for every chunk size, down to one byte', () => {
    for (const file of ['2016-trace-excerpts.log', 'syscalls.log', 'with-malformed.log', '2016-timer-interrupt-crlf.log', '2016-init-module-no-final-newline.log']) {
      const whole = parse(readFileSync(sample(file)));
      for (const chunk of [1, 2, 3, 7, 64]) expect(parse(readFileSync(sample(file)), chunk), `${file} in ${chunk}-byte chunks`).toEqual(whole);
    }
  });

  it('counts time going backwards against the previous line', () => {
    const { counts } = parse(readFileSync(sample('time-backwards.log')));
    expect(counts.backwards).toBe(1);
    expect(counts.firstBackwardsLine).toBe(4);
  });

  it('interns each distinct name once', () => {
    const functions = new FunctionTable();
    const ids = new Set<number>();
    // Enough names to force several rehashes of the table.
    for (let round = 0; round < 2; round++) for (let i = 0; i < 5000; i++) ids.add(functions.idOf(`fn_${i}`));
    expect(ids.size).toBe(5000);
    expect(functions.size).toBe(5002);
    expect(functions.names[USER]).toBe('[user]');
    expect(functions.names[UNRESOLVED]).toBe('[unresolved]');
    expect(functions.names[functions.idOf('fn_4321')]).toBe('fn_4321');
  });
});

describe('readTrace', () => {
  const collect = async (input: string, chunkSize?: number) => {
    const fns: string[] = [];
    const r = await readTrace(input, (functions) => ({ event: (_t, fn) => fns.push(functions.names[fn]!) }), { chunkSize, warn: () => {} });
    return { fns, r };
  };

  it('reads .gz files and gives what the plain file gives, in any chunk size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-gz-'));
    const gz = join(dir, 'trace.log.gz');
    writeFileSync(gz, gzipSync(readFileSync(sample('2016-trace-excerpts.log'))));
    const plain = await collect(sample('2016-trace-excerpts.log'));
    expect((await collect(gz)).fns).toEqual(plain.fns);
    expect((await collect(gz, 1)).fns).toEqual(plain.fns);
    expect(plain.r.events).toBe(42); // 46 lines, 4 of them comments
  });

  it('names the file and line of the first malformed line with strict', async () => {
    await expect(readTrace(sample('with-malformed.log'), () => ({ event() {} }), { strict: true })).rejects.toThrow(
      /with-malformed\.log:3: malformed line: "garbage line here"/,
    );
  });

  it('reports the first malformed lines, then a total', async () => {
    const warnings: string[] = [];
    await readTrace(sample('with-malformed.log'), () => ({ event() {} }), { reportLimit: 2, warn: (l) => warnings.push(l) });
    expect(warnings).toEqual([
      expect.stringMatching(/with-malformed\.log:3: malformed line skipped: "garbage line here"/),
      expect.stringMatching(/with-malformed\.log:4: malformed line skipped: "11\.0"/),
      expect.stringMatching(/with-malformed\.log: 5 malformed lines skipped in all/),
    ]);
  });

  it('rejects binary data, a missing file and a directory with the file named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-bad-'));
    const bin = join(dir, 'garbage.bin');
    writeFileSync(bin, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2, 3]));
    await expect(collect(bin)).rejects.toThrow(/garbage\.bin: binary data/);
    await expect(collect(join(dir, 'nope.log'))).rejects.toThrow(/nope\.log: cannot open: no such file/);
    await expect(collect(dir)).rejects.toThrow(/is a directory/);
  });

  it('rejects text that has no trace line in it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-text-'));
    const txt = join(dir, 'notes.txt');
    writeFileSync(txt, 'hello\nworld\n');
    await expect(collect(txt)).rejects.toThrow(/notes\.txt: not a boot trace/);
  });

  it('treats an empty file as an empty trace', async () => {
    const { fns, r } = await collect(sample('empty.log'));
    expect(fns).toEqual([]);
    expect(r.lines).toBe(0);
  });

  it('fails a truncated .gz with the file named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-trunc-'));
    const gz = join(dir, 'cut.log.gz');
    const full = gzipSync(readFileSync(sample('2016-trace-excerpts.log')));
    writeFileSync(gz, full.subarray(0, full.length - 12));
    await expect(collect(gz)).rejects.toThrow(/cut\.log\.gz: cannot read: .*(unexpected end|Z_BUF_ERROR)/i);
  });
});
