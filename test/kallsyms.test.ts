/**
 * kallsyms decoding. First on tables this test encodes itself in each layout scripts/kallsyms.c has
 * produced (<= 6.1, 6.2/6.3 and Debian's 6.1 with kallsyms_seqs_of_names, >= 6.4; absolute-percpu and
 * plain relative offsets), hidden in noise with decoys; then the proof on a real kernel: the decoded
 * table must agree with /proc/kallsyms of the same kernel booted under QEMU TCG, on every text symbol.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decompressKernel } from '../capture/kernel/decompress.js';
import { findKernel } from '../capture/kernel/discover.js';
import { decodeKallsyms, findKallsyms, toSystemMap, type KallsymsEntry } from '../capture/kernel/kallsyms.js';
import { procKallsymsDump } from '../capture/kernel/proc-kallsyms.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';
import { CLI } from './helpers.js';

type Layout = 'v6.1' | 'v6.2-seqs' | 'v6.4';

/** Symbols like a kernel's: absolute per-cpu ones at 0.., then text, then data; one name > 127 chars. */
function makeSymbols(n: number, percpu: boolean): KallsymsEntry[] {
  const out: KallsymsEntry[] = [];
  if (percpu) {
    out.push({ addr: 0n, type: 'A', name: 'fixed_percpu_data' }, { addr: 0x1000n, type: 'A', name: 'cpu_debug_store' });
  }
  let addr = 0xffffffff81000000n;
  for (let i = out.length; i < n; i++) {
    const kind = i % 7;
    const name =
      i === 300 ? `very_long_rust_symbol_${'x'.repeat(150)}_${i}` : kind === 0 ? `ext4_read_${i}` : kind === 1 ? `__pfx_acpi_${i}` : `do_write_trace_${i}_${i % 10}`;
    out.push({ addr, type: i > n - 40 ? (i % 2 ? 'D' : 'd') : i % 3 ? 't' : 'T', name });
    addr += BigInt(16 + (i % 5) * 8);
  }
  return out;
}

/** Encode `syms` as scripts/kallsyms.c does (each label 8-aligned) and return a buffer with noise around. */
function encodeTables(syms: KallsymsEntry[], layout: Layout, mode: 'absolute-percpu' | 'relative'): Buffer {
  // Tokens: every used character stands for itself; free byte values get multi-character tokens.
  const used = new Set<number>();
  for (const s of syms) for (const ch of s.type + s.name) used.add(ch.charCodeAt(0));
  const multi = ['ext4_', 'read_', '__pfx_', 'acpi_', 'do_', 'write_', 'trace_', 'xx', 'xxxx'];
  const tokens: string[] = [];
  let m = 0;
  for (let i = 0; i < 256; i++) tokens.push(used.has(i) ? String.fromCharCode(i) : m < multi.length ? multi[m++]! : `\x01unused${i}`);
  const byToken = new Map(tokens.map((t, i) => [t, i]));
  const longest = [...tokens].filter((t) => t.length > 1 && !t.startsWith('\x01')).sort((a, b) => b.length - a.length);
  const encodeName = (s: string): number[] => {
    const out: number[] = [];
    for (let i = 0; i < s.length; ) {
      const t = longest.find((tok) => s.startsWith(tok, i)) ?? s[i]!;
      out.push(byToken.get(t)!);
      i += t.length;
    }
    return out;
  };

  const parts: Buffer[] = [];
  let size = 0;
  const put = (b: Buffer): void => {
    parts.push(b);
    size += b.length;
  };
  const align = (): void => put(Buffer.alloc((8 - (size % 8)) % 8));
  // Noise with decoys: the digit run as UTF-16 text, and a lone "0\01\0..9\0" without a token index.
  put(Buffer.from('some .rodata before the tables', 'latin1'));
  put(Buffer.from('0123456789 ok', 'utf16le'));
  put(Buffer.from('0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00', 'latin1'));
  align();

  const base = syms.find((s) => s.type !== 'A')!.addr;
  const offsets = Buffer.alloc(4 * syms.length);
  syms.forEach((s, i) => {
    if (mode === 'relative') offsets.writeUInt32LE(Number(s.addr - base), 4 * i);
    else offsets.writeInt32LE(s.type === 'A' ? Number(s.addr) : Number(base - s.addr - 1n), 4 * i);
  });
  const relBase = Buffer.alloc(8);
  relBase.writeBigUInt64LE(base);
  const numSyms = Buffer.alloc(4);
  numSyms.writeUInt32LE(syms.length);
  const names: number[] = [];
  const markers: number[] = [];
  syms.forEach((s, i) => {
    if (i % 256 === 0) markers.push(names.length);
    const enc = encodeName(s.type + s.name);
    if (enc.length > 127) names.push((enc.length & 0x7f) | 0x80, enc.length >> 7);
    else names.push(enc.length);
    names.push(...enc);
  });
  const markersBuf = Buffer.alloc(4 * markers.length);
  markers.forEach((v, i) => markersBuf.writeUInt32LE(v, 4 * i));
  const seqs = Buffer.alloc(3 * syms.length);
  [...syms.keys()].sort((a, b) => (syms[a]!.name < syms[b]!.name ? -1 : 1)).forEach((idx, i) => seqs.writeUIntBE(idx, 3 * i, 3));
  const tokenTable = Buffer.concat(tokens.map((t) => Buffer.from(`${t}\0`, 'latin1')));
  const tokenIndex = Buffer.alloc(512);
  let off = 0;
  tokens.forEach((t, i) => {
    tokenIndex.writeUInt16LE(off, 2 * i);
    off += t.length + 1;
  });

  const addressTables = (): void => {
    align();
    put(offsets);
    align();
    put(relBase);
  };
  if (layout !== 'v6.4') addressTables();
  for (const b of [numSyms, Buffer.from(names), markersBuf]) {
    align();
    put(b);
  }
  if (layout === 'v6.2-seqs') {
    align();
    put(seqs);
  }
  align();
  put(tokenTable);
  align();
  put(tokenIndex);
  if (layout === 'v6.4') {
    addressTables();
    align();
    put(seqs);
  }
  put(Buffer.from('\0\0more data after the tables 0\x001\x002\x00', 'latin1'));
  return Buffer.concat(parts);
}

describe('kallsyms decoding of synthetic tables', () => {
  for (const layout of ['v6.1', 'v6.2-seqs', 'v6.4'] as const) {
    for (const mode of ['absolute-percpu', 'relative'] as const) {
      it(`finds and decodes the ${layout} layout with ${mode} offsets`, () => {
        const syms = makeSymbols(700, mode === 'absolute-percpu');
        const buf = encodeTables(syms, layout, mode);
        const layoutFound = findKallsyms(buf, 'synthetic');
        expect(layoutFound.numSyms).toBe(700);
        expect(layoutFound.addressMode).toBe(mode);
        const decoded = decodeKallsyms(buf, 'synthetic');
        expect(decoded).toEqual(syms);
      });
    }
  }

  it('prints System.map lines', () => {
    expect(toSystemMap([{ addr: 0xffffffff81000000n, type: 'T', name: '_stext' }, { addr: 0x1000n, type: 'A', name: 'cpu_debug_store' }])).toBe(
      'ffffffff81000000 T _stext\n0000000000001000 A cpu_debug_store\n',
    );
  });

  it('`boot-trace symbols` on a file that is no kernel fails in one line naming it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'boot-trace-kallsyms-')), 'notes.txt');
    writeFileSync(file, 'not a kernel\n'.repeat(100));
    const r = spawnSync(process.execPath, [CLI, 'symbols', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    // bytes 0x1fe..0x1ff of the repeated text are " a": boot_flag reads 0x6120
    expect(r.stderr).toBe(`boot-trace: ${file}: not a usable bzImage (boot_flag at 0x1fe is 0x6120, not 0xaa55)\n`);
  });

  it('says so when there are no tables', () => {
    const noise = Buffer.alloc(100000, 0x41);
    Buffer.from('0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00', 'latin1').copy(noise, 5000);
    expect(() => decodeKallsyms(noise, 'plain.bin')).toThrow(/^plain\.bin: cannot find the kallsyms tables/);
  });
});

describeNeeds(defaultKernelMissing(), 'kallsyms of a real kernel against /proc/kallsyms from a QEMU TCG boot', async () => {
  // Once a kernel can be had, failing to get it fails the block.
  const kernel = (await findKernel({ log: () => {} })).path;

  it('agrees on every text symbol (and on the whole table)', async (ctx) => {
    const missing = firstMissing(qemuMissing(), busyboxMissing());
    if (missing) ctx.skip(missing);
    const { vmlinux, ms } = await decompressKernel(kernel);
    const t0 = performance.now();
    const decoded = decodeKallsyms(vmlinux, kernel);
    const decodeMs = performance.now() - t0;
    const dump = await procKallsymsDump(kernel);
    console.info(`${kernel}: decompress ${ms.toFixed(0)} ms, decode ${decodeMs.toFixed(0)} ms, ${decoded.length} symbols; /proc/kallsyms ${dump.cached ? 'from the cache' : `took ${(dump.ms / 1000).toFixed(1)} s`}`);

    const procLines = dump.text.split('\n').filter((l) => l !== '');
    // Module symbols ("... [ext4]") and BPF/ftrace trampolines are not in the image; none are loaded here.
    const proc = procLines.filter((l) => !l.includes('\t['));
    const ours = toSystemMap(decoded).split('\n').filter((l) => l !== '');
    const isText = (l: string): boolean => / [tT] /.test(l);
    const procText = proc.filter(isText);
    const ourText = ours.filter(isText);
    expect(procText.length).toBeGreaterThan(10000);
    expect(ourText).toEqual(procText);
    expect(ours).toEqual(proc);
    expect(ours.some((l) => l.endsWith(' T start_kernel'))).toBe(true);
  }, 900_000);

  it('`boot-trace symbols` prints the decoded System.map', () => {
    const r = spawnSync(process.execPath, [CLI, 'symbols', kernel], { encoding: 'latin1', maxBuffer: 256 << 20 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ffffffff8[0-9a-f]{7} T _stext$/m);
    expect(r.stdout).toMatch(/^ffffffff8[0-9a-f]{7} T start_kernel$/m);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(lines.every((l) => /^[0-9a-f]{16} [A-Za-z] \S+$/.test(l))).toBe(true);
    expect(lines.length).toBeGreaterThan(10000);
  }, 120_000);
});
