/**
 * The whole-boot recording format (src/trace/recording/format.ts, docs/whole-boot.md) read back from
 * files written by its documented layout: record frames built here byte by byte as the plugin writes
 * them, the header/symbol/end frames by boot-trace's own writer. No QEMU needed.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { FunctionTable, USER } from '../src/trace/functions.js';
import { ENCODING, FRAME, frameHeader, type RecordingHeader } from '../src/trace/recording/format.js';
import { openRecording } from '../src/trace/recording/decode.js';
import { processNames } from '../src/trace/recording/processes.js';
import { readRecordingTrace } from '../src/trace/recording/read.js';
import { finishRecording, startRecording } from '../src/trace/recording/write.js';
import { exportText } from '../src/export/text.js';

const MAP = [
  'ffffffff81000000 T _text',
  'ffffffff81000000 T startup_64',
  'ffffffff81000100 T start_kernel',
  'ffffffff81000200 T do_work',
  'ffffffff81000300 T __x86_return_thunk',
  'ffffffff81000310 T _etext',
].join('\n') + '\n';
const K = (off: number): number => -0x7f000000 + off; // 0xffffffff81000000 + off as a signed number

function uv(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const zz = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1);

/** An 'R' frame of function-granularity records [t_ns, instructions, address], deltas from zero. */
function functionFrame(records: [number, number, number][], encoding: number = ENCODING.raw): Buffer {
  const bytes: number[] = [];
  let t = 0, ic = 0, a = 0;
  for (const [rt, ric, ra] of records) {
    bytes.push(...uv(rt - t), ...uv(ric - ic), ...uv(zz(ra - a)));
    [t, ic, a] = [rt, ric, ra];
  }
  const raw = Buffer.from(bytes);
  const stored = encoding === ENCODING.zlib ? deflateSync(raw) : raw;
  return Buffer.concat([frameHeader(FRAME.records, encoding, stored, raw.length, records.length, crc32(stored)), stored]);
}

function jsonFrame(type: number, value: object): Buffer {
  const b = Buffer.from(JSON.stringify(value));
  return Buffer.concat([frameHeader(type, ENCODING.raw, b, b.length, 0, crc32(b)), b]);
}

function header(granularity: RecordingHeader['granularity']): RecordingHeader {
  return {
    format: 'boot-trace recording', version: 1, granularity,
    kernel: { path: 'vmlinuz', sha256: '0'.repeat(64), release: null }, qemu: { version: 'test', args: [] },
    kernel_cmdline: '', command: [], created: '', clocks: { host: { unit: 'ns', origin: '' }, instructions: { unit: 'instructions', origin: '' } },
    start: { address: '1000000', symbol: 'startup_64' }, until: null, max_steps: null, folded: '', symbols: { source: 'test', count: 5 },
  };
}

const END = { reason: 'exit', started: true, records: 5, instructions: 60, host_ns: 5000, excluded_ns: 0, translations: 3, frames: 2, write_ns: 0, compression: 'none', write_errors: 0 };

function events(file: string, clock: 'host' | 'instructions' = 'host', warnings: string[] = []): string[] {
  const out: string[] = [];
  let functions: FunctionTable;
  readRecordingTrace(file, (f) => {
    functions = f;
    return { event: (t, fn, offset, addr) => void out.push(`${t} ${fn === USER ? addr.toString(16) : functions.names[fn]}${offset > 0 ? `+${offset}` : ''}`) };
  }, { clock, warn: (l) => warnings.push(l) });
  return out;
}

describe('whole-boot recordings read back', () => {
  let tmp: string;
  let whole: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bt-recording-'));
    whole = join(tmp, 'whole.bin');
    startRecording(whole, header('function'), MAP);
    appendFileSync(whole, functionFrame([[1000, 0, K(0)], [1500, 10, K(0x100)], [2250, 25, K(0x204)]]));
    // A second frame, zlib as the plugin writes it; a thunk record (folded) and a user address.
    appendFileSync(whole, functionFrame([[3000, 40, K(0x300)], [3500, 45, 0x401000]], ENCODING.zlib));
    appendFileSync(whole, jsonFrame(FRAME.pluginEnd, END));
    finishRecording(whole, '', { reason: 'shutdown', detail: 'test' });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('gives the analyzers symbolised events on both clocks, thunks folded into the function before them', () => {
    expect(events(whole)).toEqual(['1 startup_64', '1.5 start_kernel', '2.25 do_work+4', '3.5 401000']);
    expect(events(whole, 'instructions')).toEqual(['0 startup_64', '10 start_kernel', '25 do_work+4', '45 401000']);
    const rec = openRecording(whole);
    expect(rec.cut).toBeNull();
    expect(rec.header.granularity).toBe('function');
    expect(rec.captureEnd).toEqual({ reason: 'shutdown', detail: 'test' });
  });

  it('writes the 2016 text format with exact microseconds', () => {
    const out = join(tmp, 'whole.txt');
    exportText(whole, { output: out, warn: () => {} });
    const lines = readFileSync(out, 'latin1').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual(['1.000 startup_64 in section .text', '1.500 start_kernel in section .text', '2.250 do_work + 4 in section .text', '3.500 401000']);
  });

  it('reads a recording cut mid-frame up to its last whole frame and says it was cut', () => {
    const cut = join(tmp, 'cut.bin');
    const full = readFileSync(whole);
    writeFileSync(cut, full);
    const secondFrame = openRecording(whole).recordFrames[1]!.offset;
    truncateSync(cut, secondFrame + 30);
    const warnings: string[] = [];
    expect(events(cut, 'host', warnings)).toEqual(['1 startup_64', '1.5 start_kernel', '2.25 do_work+4']);
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`recording cut short \\(a partial frame at byte ${secondFrame} .*read 3 records up to the cut`))]);
  });

  it('says a recording without the plugin\'s end frame was cut (QEMU killed between frames)', () => {
    const cut = join(tmp, 'noend.bin');
    writeFileSync(cut, readFileSync(whole).subarray(0, openRecording(whole).recordFrames[1]!.offset));
    const warnings: string[] = [];
    expect(events(cut, 'host', warnings)).toHaveLength(3);
    expect(warnings[0]).toMatch(/no end frame from the plugin/);
  });

  it('refuses a frame that fails its CRC, naming the byte', () => {
    const bad = join(tmp, 'bad.bin');
    const b = Buffer.from(readFileSync(whole));
    const at = openRecording(whole).recordFrames[0]!.offset;
    b[at + 24 + 2]! ^= 1;
    writeFileSync(bad, b);
    expect(() => events(bad)).toThrow(new UserError(`${bad}: corrupt recording: the frame at byte ${at} fails its CRC-32 check`));
  });

  it('rebuilds block granularity from the translation map', () => {
    const file = join(tmp, 'block.bin');
    startRecording(file, header('block'), MAP);
    // Translations: id 0 at startup_64 (3 instructions), id 1 at do_work (2); then runs 0, 1, 1, 0.
    const bytes = [
      ...uv(1), ...uv(zz(K(0))), ...uv(3), 4, 4, 2,
      ...uv(3), ...uv(zz(K(0x200))), ...uv(2), 5, 1,
      ...uv(0), ...uv(100), ...uv(2), ...uv(50), ...uv(2), ...uv(50), ...uv(0), ...uv(50),
    ];
    const raw = Buffer.from(bytes);
    appendFileSync(file, Buffer.concat([frameHeader(FRAME.records, ENCODING.raw, raw, raw.length, 6, crc32(raw)), raw]));
    appendFileSync(file, jsonFrame(FRAME.pluginEnd, END));
    expect(events(file, 'instructions')).toEqual(['0 startup_64', '3 do_work', '5 do_work', '7 startup_64']);
  });

  it('names processes from register-read system call entries (QEMU 10)', () => {
    const e = (kind: 0 | 1, instructions: number, nr: number, cr3: number, path = '') => ({ kind, tNs: instructions, instructions, nr, cr3, path });
    const names = processNames([
      e(1, 0, 0, 0x1000, '/sbin/modprobe'), e(0, 1, 12, 0xa000), e(0, 2, 231, 0xa000),
      e(1, 3, 0, 0x1000, '/init'), e(0, 4, 57, 0xa000), e(0, 5, 61, 0xa000), // /init (CR3 reused) forks
      e(0, 6, 59, 0xb000, '/bin/nope'), e(0, 7, 59, 0xb000, '/bin/mount'), e(0, 8, 165, 0xc000),
    ]);
    expect([...names.values()]).toEqual(['/sbin/modprobe', '/sbin/modprobe', '/init', '/init', '/init', '/init', '/bin/mount']);
  });
});
