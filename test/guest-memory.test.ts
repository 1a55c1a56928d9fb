/**
 * The guest's `free -m`, read from a real appliance boot under QEMU (samples/console, a colleague's TCG
 * capture) and from the shapes busybox and procps print.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GuestMemoryReader, parseFreeM } from '../analyzers/guest-memory.js';
import { feedConsole } from './console-lines-fixture.js';
import { sample } from './helpers.js';

const REAL = sample('console', 'qemu-tcg-6.1-appliance-initcall-debug.log.gz');

describe('guest memory from free -m', () => {
  it('reads the Mem: and Swap: rows of a real appliance console (QEMU TCG, 6.1 kernel)', () => {
    const text = gunzipSync(readFileSync(REAL)).toString('utf8');
    // The expected figures, taken from the console's own Mem: row by a plain regex.
    const row = /^\d+\.\d Mem:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(text)!;
    expect(row).not.toBeNull();
    const [total, used, free, shared, cache, avail] = row.slice(1).map(Number);
    const mem = parseFreeM(text)!;
    expect(mem).toMatchObject({ total_mib: total, used_mib: used, free_mib: free, shared_mib: shared, buff_cache_mib: cache, available_mib: avail });
    expect(mem).toMatchObject({ swap_total_mib: 0, swap_used_mib: 0, swap_free_mib: 0 });
    expect(mem.total_mib).toBeGreaterThan(100);
    expect(mem.used_mib + mem.free_mib).toBeLessThanOrEqual(mem.total_mib);
  });

  it('gives the same through the console parser, in any chunking', () => {
    const text = gunzipSync(readFileSync(REAL));
    const file = join(mkdtempSync(join(tmpdir(), 'bt-guest-mem-')), 'console.log');
    writeFileSync(file, text);
    const want = parseFreeM(text.toString('utf8'));
    for (const chunk of [1 << 16, 7]) {
      const reader = new GuestMemoryReader();
      feedConsole(file, reader, chunk);
      expect(reader.result(), `chunks of ${chunk}`).toEqual(want);
    }
  }, 30_000);

  it('reads the older busybox shape (buffers, cached)', () => {
    const mem = parseFreeM([
      '             total       used       free     shared    buffers     cached',
      'Mem:           491         12        479          0          0          4',
      '-/+ buffers/cache:          8        483',
      'Swap:            0          0          0',
    ].join('\n'))!;
    expect(mem).toMatchObject({ total_mib: 491, used_mib: 12, free_mib: 479, shared_mib: 0, buffers_mib: 0, cached_mib: 4, swap_total_mib: 0 });
    expect(mem.buff_cache_mib).toBeUndefined();
  });

  it('keeps the first table and ignores a Mem: row without a header', () => {
    expect(parseFreeM('Mem: 1 2 3\n')).toBeNull();
    const two = parseFreeM('  total used free\nMem: 100 10 90\n  total used free\nMem: 100 50 50\n')!;
    expect(two.used_mib).toBe(10);
  });

  it('returns null when the console has no free -m output', () => {
    expect(parseFreeM(readFileSync(sample('console', 'console-boot-time.log'), 'utf8'))).toBeNull();
  });
});
