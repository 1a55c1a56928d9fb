/**
 * Kernel-header fuzzing: mutated bzImage setup headers, ELF and program/section headers and compressed
 * payloads through what `capture` (loadKernelImage, checkFits, loadSegments) and `symbols`
 * (decompressBzImage, decodeKallsyms, symbolsFromElf) run on a kernel file, called in process. Each must
 * either give a result that holds together (segments inside the file, finite addresses) or throw a
 * UserError; nothing else, and never hang. Field offsets: Documentation/arch/x86/boot.rst (setup header,
 * capture/boot/bzimage.ts HDR) and the ELF-64 object file format (Elf64_Ehdr/Phdr/Shdr).
 */
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { HDR } from '../../capture/boot/bzimage.js';
import { loadSegments, looksLikeElf, parseElf64 } from '../../capture/boot/elf.js';
import { checkFits, loadKernelImage } from '../../capture/boot/kernel-image.js';
import { decompressBzImage } from '../../capture/kernel/decompress.js';
import { decodeKallsyms } from '../../capture/kernel/kallsyms.js';
import { UserError } from '../../src/errors.js';
import { symbolsFromElf } from '../../src/symbols/elf-symbols.js';
import { makeBzImage } from '../bzimage-fixture.js';
import { int, pick, rng, type Rng } from './mutate.js';
import { addFailure, emptyFuzzCounts, type FuzzCounts } from './trace-fuzz.js';

/** [offset, size in bytes] of the setup-header fields a loader reads. */
const BZ_FIELDS: [number, number][] = [
  [HDR.setupSects, 1], [HDR.bootFlag, 2], [HDR.jump + 1, 1], [HDR.header, 4], [HDR.version, 2], [HDR.loadflags, 1],
  [HDR.initrdAddrMax, 4], [HDR.kernelAlignment, 4], [HDR.relocatableKernel, 1], [HDR.xloadflags, 2], [HDR.cmdlineSize, 4],
  [HDR.payloadOffset, 4], [HDR.payloadLength, 4], [HDR.prefAddress, 8], [HDR.initSize, 4],
];
/** Elf64_Ehdr: e_ident class/data, e_type, e_machine, e_entry, e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx. */
const EHDR_FIELDS: [number, number][] = [[4, 1], [5, 1], [16, 2], [18, 2], [24, 8], [32, 8], [40, 8], [54, 2], [56, 2], [58, 2], [60, 2], [62, 2]];
/** Elf64_Phdr: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align. */
const PHDR_FIELDS: [number, number][] = [[0, 4], [4, 4], [8, 8], [16, 8], [24, 8], [32, 8], [40, 8], [48, 8]];
/** Elf64_Shdr: sh_name, sh_type, sh_offset, sh_size, sh_link, sh_entsize. */
const SHDR_FIELDS: [number, number][] = [[0, 4], [4, 4], [24, 8], [32, 8], [40, 4], [56, 8]];

/** Values at the edges: zero, one, all ones, sign bits, the file's own length and around it, random. */
function edgeValue(r: Rng, size: number, fileLength: number): bigint {
  const bits = BigInt(size * 8);
  const max = (1n << bits) - 1n;
  const v = pick(r, [0n, 1n, 2n, max, max >> 1n, (max >> 1n) + 1n, BigInt(fileLength), BigInt(fileLength) - 1n, BigInt(fileLength) + 1n,
    BigInt(int(r, 0x10000)), 1n << 53n, BigInt(Math.floor(r() * 2 ** 32)) * BigInt(Math.floor(r() * 2 ** 32))]);
  return ((v % (max + 1n)) + max + 1n) % (max + 1n);
}

/** One base kernel file to mutate, and where its headers and payload are. */
export interface Base {
  name: string;
  buf: Buffer;
  kind: 'bzimage' | 'elf';
  /** Run the decompressor and kallsyms decoder (cheap only for small payloads). */
  decompress: boolean;
}

/** Compresses like the kernel build (scripts/Makefile.lib), with the CLI tools; null when the tool is missing. */
function compress(format: string, data: Buffer): Buffer | null {
  if (format === 'gzip') return gzipSync(data, { level: 9 });
  const cmd: Record<string, [string, string[]]> = {
    xz: ['xz', ['--check=crc32', '--x86', '--lzma2=dict=1MiB', '-c']],
    lzma: ['lzma', ['-9', '-c']],
    zstd: ['zstd', ['-19', '-q', '-c']],
    lz4: ['lz4', ['-l', '-9', '-c']],
  };
  const [tool, args] = cmd[format]!;
  const r = spawnSync(tool, args, { input: data, maxBuffer: 64 << 20 });
  return r.status === 0 ? r.stdout : null;
}

/**
 * Bases: the small vmlinux-like ELF (built with cc), bzImages whose payload is that ELF compressed in each
 * format the tools here can make (setup header from `realSetup`, a real kernel's, when given), and a real
 * kernel file whose headers are mutated but whose payload is too big to decompress each time.
 */
export function kernelBases(elf: Buffer, realSetup?: Buffer, realKernel?: Buffer, realVmlinux?: Buffer): Base[] {
  const bases: Base[] = [{ name: 'elf', buf: elf, kind: 'elf', decompress: true }];
  for (const format of ['gzip', 'xz', 'lzma', 'zstd', 'lz4']) {
    const c = compress(format, elf);
    if (!c) continue;
    const payloadOffset = 0x2cc;
    const payload = Buffer.concat([c, Buffer.alloc(4)]);
    payload.writeUInt32LE(elf.length, c.length);
    let img: Buffer;
    if (realSetup) {
      // The real kernel's setup sectors, with our payload where its payload_offset says.
      const pm = Buffer.alloc(payloadOffset + payload.length + 64);
      img = Buffer.concat([realSetup, pm]);
      img.writeUInt32LE(payloadOffset, HDR.payloadOffset);
    } else {
      img = makeBzImage({ pmBytes: payloadOffset + payload.length + 64 });
    }
    const setup = (img[HDR.setupSects]! + 1) * 512;
    payload.copy(img, setup + payloadOffset);
    img.writeUInt32LE(payload.length, HDR.payloadLength);
    bases.push({ name: `bzImage-${format}`, buf: img, kind: 'bzimage', decompress: true });
  }
  if (realKernel) bases.push({ name: 'real-bzImage', buf: realKernel, kind: 'bzimage', decompress: false });
  if (realVmlinux) bases.push({ name: 'real-vmlinux', buf: realVmlinux, kind: 'elf', decompress: false });
  return bases;
}

/**
 * Mutates `buf` in place and returns how to undo it (so a 50 MB real kernel is never copied): header
 * fields set to edge values, random bytes in the headers, payload bytes flipped. Truncation is returned
 * as a shorter view instead.
 */
function mutate(r: Rng, base: Base): { buf: Buffer; undo: () => void; what: string } {
  const buf = base.buf;
  const saved: [number, number][] = [];
  const set = (at: number, v: number): void => {
    if (at < 0 || at >= buf.length) return;
    saved.push([at, buf[at]!]);
    buf[at] = v;
  };
  const field = (at: number, size: number): void => {
    const v = edgeValue(r, size, buf.length);
    for (let i = 0; i < size; i++) set(at + i, Number((v >> BigInt(8 * i)) & 0xffn));
  };
  const what: string[] = [];
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    const kind = int(r, 10);
    if (base.kind === 'bzimage' && kind < 5) {
      const [at, size] = pick(r, BZ_FIELDS);
      field(at, size);
      what.push(`setup header 0x${at.toString(16)}`);
    } else if (base.kind === 'elf' && kind < 5) {
      const phoff = Number(buf.readBigUInt64LE(32) & 0xffffffffn);
      const shoff = Number(buf.readBigUInt64LE(40) & 0xffffffffn);
      const which = int(r, 3);
      if (which === 0) {
        const [at, size] = pick(r, EHDR_FIELDS);
        field(at, size);
        what.push(`Elf64_Ehdr +${at}`);
      } else if (which === 1) {
        const [at, size] = pick(r, PHDR_FIELDS);
        const ph = phoff + 56 * int(r, Math.max(1, buf.readUInt16LE(56)));
        field(ph + at, size);
        what.push(`Elf64_Phdr at 0x${ph.toString(16)} +${at}`);
      } else {
        const [at, size] = pick(r, SHDR_FIELDS);
        const sh = shoff + 64 * int(r, Math.max(1, buf.readUInt16LE(60)));
        field(sh + at, size);
        what.push(`Elf64_Shdr at 0x${sh.toString(16)} +${at}`);
      }
    } else if (kind < 8) {
      // Random bytes in the first 4 KiB: headers and, for the small files, the start of the payload.
      const at = int(r, Math.min(buf.length, 4096));
      set(at, int(r, 256));
      what.push(`byte 0x${at.toString(16)}`);
    } else if (base.decompress) {
      // Inside the compressed payload, its size trailer included.
      const at = 0x2cc + int(r, Math.max(1, buf.length - 0x2cc));
      set(at, int(r, 256));
      what.push(`payload byte 0x${at.toString(16)}`);
    }
  }
  let view = buf;
  if (r() < 0.1) {
    view = buf.subarray(0, int(r, buf.length));
    what.push(`cut to ${view.length} bytes`);
  }
  return {
    buf: view,
    what: what.join(', '),
    undo: () => {
      for (let i = saved.length - 1; i >= 0; i--) buf[saved[i]![0]] = saved[i]![1];
    },
  };
}

const GUEST_RAM = 512 << 20;

/** What capture and symbols do with a kernel file, minus the VM; throws UserError or returns problems found. */
async function exercise(buf: Buffer, decompress: boolean, seen: Record<string, number>): Promise<string | null> {
  // capture: the loader.
  let image: ReturnType<typeof loadKernelImage> | null = null;
  try {
    image = loadKernelImage(buf, 'k');
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
  }
  if (image) {
    seen.loaded = (seen.loaded ?? 0) + 1;
    for (const s of image.segments) {
      if (!Number.isSafeInteger(s.gpa) || !Number.isSafeInteger(s.memsz) || s.data.length > s.memsz) return `segment ${JSON.stringify({ gpa: s.gpa, memsz: s.memsz, len: s.data.length })}`;
      if (s.data.buffer !== buf.buffer) return 'segment data outside the file';
    }
    if (![image.entry, image.initSize, image.highestAddress].every(Number.isFinite)) return `entry ${image.entry}, initSize ${image.initSize}`;
    try {
      checkFits(image, GUEST_RAM, 'k');
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
    }
  }
  // symbols: the decompressor, then the symbol readers on what came out.
  if (!decompress) return null;
  let vmlinux: Buffer;
  try {
    vmlinux = (await decompressBzImage(buf, 'k')).vmlinux;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return null;
  }
  if (!looksLikeElf(vmlinux)) return 'decompressBzImage returned no ELF';
  seen.decompressed = (seen.decompressed ?? 0) + 1;
  try {
    decodeKallsyms(vmlinux, 'k');
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
  }
  try {
    const elf = parseElf64(vmlinux, 'k');
    loadSegments(elf);
    symbolsFromElf(elf);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
  }
  return null;
}

/** `n` mutated kernel files over the bases, round robin. */
export async function fuzzKernelHeaders(n: number, seed: number, bases: Base[], hangMs = 5000): Promise<FuzzCounts & { byBase: Record<string, number>; outcomes: Record<string, number> }> {
  const r = rng(seed);
  // byBase: inputs per base; outcomes: how many got through the loader and the decompressor whole.
  const c = { ...emptyFuzzCounts(), byBase: {} as Record<string, number>, outcomes: {} as Record<string, number> };
  for (let k = 0; k < n; k++) {
    const base = bases[k % bases.length]!;
    const m = mutate(r, base);
    c.inputs++;
    c.byBase[base.name] = (c.byBase[base.name] ?? 0) + 1;
    const started = performance.now();
    try {
      const problem = await exercise(m.buf, base.decompress, c.outcomes);
      if (problem) addFailure(c, 'wrong', `seed ${seed} input ${k} (${base.name}: ${m.what}): ${problem}`);
    } catch (err) {
      addFailure(c, 'crashes', `seed ${seed} input ${k} (${base.name}: ${m.what}): ${err instanceof Error ? err.stack : String(err)}`);
    } finally {
      m.undo();
    }
    if (performance.now() - started > hangMs) addFailure(c, 'hangs', `seed ${seed} input ${k} (${base.name}: ${m.what}): ${(performance.now() - started).toFixed(0)} ms`);
  }
  return c;
}

