/**
 * trace.log's lines as the step loop writes them (capture/trace-writer.ts): timestamps in both clocks,
 * formatted without strings, against the same values formatted by JavaScript's own number printing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TraceWriter } from '../capture/trace-writer.js';
import { writeUint } from '../src/output/digits.js';
import { mulberry32 } from '../src/random.js';

describe('TraceWriter', () => {
  it('writes integers of every length, in and past int32, as String() does', () => {
    const buf = new Uint8Array(32);
    const random = mulberry32(5);
    const values = [0, 1, 9, 10, 99, 100, 0x7fffffff, 0x80000000, 2 ** 32, 2 ** 53 - 1];
    for (let k = 0; k < 5000; k++) values.push(Math.floor(random() * 10 ** Math.floor(random() * 16)));
    for (const v of values) {
      const end = writeUint(buf, 3, v);
      expect(Buffer.from(buf.subarray(3, end)).toString('latin1')).toBe(String(v));
    }
  });

  it('formats host-clock times to 0.1 us and step counts as integers, one line per event with its address tail', () => {
    const dir = mkdtempSync(join(tmpdir(), 'boot-trace-writer-'));
    try {
      const file = join(dir, 'trace.log');
      const w = new TraceWriter(file, (a) => (a === 0xffffffff81000000n ? 'start_kernel in section .text' : a.toString(16)));
      const random = mulberry32(9);
      const times = [0, 0.04, 0.05, 0.95, 9.96, 123456.75, 214748364.7, 214748364.8, 5e9 + 0.35, 1e12 / 3];
      for (let k = 0; k < 5000; k++) times.push(random() * 10 ** Math.floor(random() * 12));
      const expected: string[] = [];
      for (const [k, t] of times.entries()) {
        const lo = k % 2 === 0 ? 0x81000000 : 0x1000 + k;
        w.event(t, 1, k % 2 === 0 ? 0xffffffff : 0, lo);
        const tenths = Math.round(t * 10);
        expected.push(`${Math.floor(tenths / 10)}.${tenths % 10} ${k % 2 === 0 ? 'start_kernel in section .text' : (0x1000 + k).toString(16)}`);
        w.event(k * 7919, 0, 0, 0x2000);
        expected.push(`${k * 7919} 2000`);
      }
      w.close();
      expect(readFileSync(file, 'latin1').split('\n').slice(0, -1)).toEqual(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('flush() puts every line recorded so far in the file, before close (the QEMU engine flushes before ending QEMU)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'boot-trace-writer-'));
    try {
      const file = join(dir, 'trace.log');
      const w = new TraceWriter(file, (a) => a.toString(16));
      w.comment('mode: step');
      for (let k = 0; k < 100; k++) w.event(k, 0, 0, 0x1000 + (k % 7));
      w.flush();
      const lines = readFileSync(file, 'latin1').split('\n');
      expect(lines.length).toBe(102);
      expect(lines[0]).toBe('# mode: step');
      expect(lines[100]).toBe(`99 ${(0x1000 + (99 % 7)).toString(16)}`);
      w.close();
      expect(readFileSync(file, 'latin1').split('\n').length).toBe(102);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hands its first 64 events over as a batch, then 2,048 at a time, and the rest at close', () => {
    const counts: number[] = [];
    const events = new Float64Array(2048 * 2);
    const w = new TraceWriter(
      { first: () => events, batch: (_t, e, c) => (counts.push(c), e), text: () => events, flush: () => undefined, close: () => undefined },
      (a) => a.toString(16),
    );
    for (let k = 0; k < 5000; k++) w.event(k, 0, 0, 0x1000);
    w.close();
    expect(counts).toEqual([64, 2048, 2048, 5000 - 64 - 2 * 2048]);
  });
});

