/**
 * Host-side kernel decompression: the LZ4 block decoder on hand-made blocks, each format on data
 * compressed in the test (zlib, and the xz / zstd / lz4 command-line tools when present), bzImage
 * payload extraction with the kernel's 4-byte size trailer, corrupt and unsupported input, and the
 * real Debian cloud kernel when it is in the cache.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HDR } from '../capture/boot/bzimage.js';
import { decompressBzImage, decompressKernel, decompressStream } from '../capture/kernel/decompress.js';
import { lz4Block, lz4LegacyDecompress } from '../capture/kernel/lz4.js';
import { detectFormat, readPayload, type PayloadFormat } from '../capture/kernel/payload.js';
import { UserError } from '../src/errors.js';
import { makeBzImage } from './bzimage-fixture.js';
import { findKernel } from '../capture/kernel/discover.js';
import { defaultKernelMissing, onPath } from './preconditions.js';

const tmp = mkdtempSync(join(tmpdir(), 'boot-trace-decompress-'));

function have(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Compress with a CLI tool the way the kernel's build does (scripts/Makefile.lib, xz_wrap.sh). */
function compressWith(format: PayloadFormat, data: Buffer): Buffer | null {
  if (format === 'gzip') return gzipSync(data, { level: 9 });
  const cmd: Record<string, [string, string[]]> = {
    lz4: ['lz4', ['-l', '-9', '-c']],
    xz: ['xz', ['--check=crc32', '--x86', '--lzma2=dict=1MiB', '-c']],
    zstd: ['zstd', ['-19', '-q', '-c']],
    lzma: ['lzma', ['-9', '-c']],
  };
  const [tool, args] = cmd[format]!;
  if (!have(tool)) return null;
  const r = spawnSync(tool, args, { input: data, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * Test data shaped like a kernel: an ELF header, then x86-ish code bytes with repeats (so matches of
 * every length and overlap occur), then incompressible noise.
 */
function kernelLike(bytes: number, seed = 1): Buffer {
  const b = Buffer.alloc(bytes);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2;
  b[5] = 1;
  let x = seed;
  const rnd = (): number => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (let i = 16; i < bytes; ) {
    const kind = rnd() % 4;
    if (kind === 0 && i > 300) {
      // copy an earlier stretch (long matches, sometimes overlapping)
      const back = 1 + ((rnd() << 8) | rnd()) % Math.min(i - 1, 60000);
      const len = 4 + rnd() * 2;
      for (let k = 0; k < len && i < bytes; k++, i++) b[i] = b[i - back]!;
    } else if (kind === 1) {
      const len = rnd() % 40;
      for (let k = 0; k < len && i < bytes; k++, i++) b[i] = 0x90; // runs
    } else {
      const len = 1 + (rnd() % 30);
      for (let k = 0; k < len && i < bytes; k++, i++) b[i] = rnd();
    }
  }
  return b;
}

/** A bzImage whose payload is `compressed` followed by the u32 LE decompressed size, as the build makes it. */
function bzImageWith(compressed: Buffer, size: number): Buffer {
  const payloadOffset = 0x2cc;
  const img = makeBzImage({ pmBytes: payloadOffset + compressed.length + 4 + 64 });
  const setup = (img[HDR.setupSects]! + 1) * 512;
  compressed.copy(img, setup + payloadOffset);
  img.writeUInt32LE(size, setup + payloadOffset + compressed.length);
  img.writeUInt32LE(compressed.length + 4, HDR.payloadLength);
  return img;
}

describe('LZ4 block decoder', () => {
  it('decodes literals, an overlapping match and the final literal-only sequence', () => {
    // token 0x22: 2 literals "ab", match length 2+4 at offset 2 -> "abababab"; token 0x10: literal "c".
    const block = Uint8Array.from([0x22, 0x61, 0x62, 0x02, 0x00, 0x10, 0x63]);
    const out = new Uint8Array(9);
    expect(lz4Block(block, 0, block.length, out, 0, 't')).toBe(9);
    expect(Buffer.from(out).toString('latin1')).toBe('ababababc');
  });

  it('decodes extended literal and match lengths (15 + 255 + n)', () => {
    const lits = Buffer.alloc(15 + 255 + 3, 0x41); // 273 literals
    // token 0xff, literal length bytes 255, 3; literals; offset 1; match extension 255, 10 -> 4+15+255+10 = 284
    const block = Buffer.concat([Buffer.from([0xff, 255, 3]), lits, Buffer.from([1, 0, 255, 10]), Buffer.from([0x10, 0x42])]);
    const out = new Uint8Array(273 + 284 + 1);
    expect(lz4Block(block, 0, block.length, out, 0, 't')).toBe(out.length);
    expect(Buffer.from(out).toString('latin1')).toBe('A'.repeat(273 + 284) + 'B');
  });

  it('rejects a match offset pointing before the output', () => {
    const block = Uint8Array.from([0x10, 0x61, 0x05, 0x00]);
    expect(() => lz4Block(block, 0, block.length, new Uint8Array(64), 0, 'blk')).toThrow(/blk: corrupt LZ4 block .*offset 5/);
  });
});

describe('payload format detection', () => {
  it('knows every kernel compression by its magic and nothing else', () => {
    const cases: [number[], PayloadFormat | null][] = [
      [[0x1f, 0x8b, 0x08], 'gzip'],
      [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
      [[0x02, 0x21, 0x4c, 0x18], 'lz4'],
      [[0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
      [[0x42, 0x5a, 0x68, 0x39], 'bzip2'],
      [[0x5d, 0x00, 0x00, 0x80], 'lzma'],
      [[0x89, 0x4c, 0x5a, 0x4f], 'lzo'],
      [[0x7f, 0x45, 0x4c, 0x46], null],
    ];
    for (const [bytes, fmt] of cases) expect(detectFormat(Uint8Array.from(bytes))).toBe(fmt);
  });
});

describe.each(['gzip', 'lz4', 'xz', 'zstd', 'lzma'] as const)('%s payloads', (format) => {
  // 9 MB for LZ4 so the legacy format needs two 8 MiB blocks; the slower xz/zstd encoders get 1.5 MB.
  const plain = kernelLike(format === 'lz4' ? 9 << 20 : 3 << 19, format.length);
  const compressed = compressWith(format, plain);
  const pkg = { gzip: 'gzip', lz4: 'lz4', xz: 'xz-utils', lzma: 'xz-utils', zstd: 'zstd' }[format];
  const noTool = compressed ? null : `no \`${format}\` command to make test streams with (apt-get install ${pkg})`;

  it('decompresses a stream made by the standard tool', async (ctx) => {
    if (noTool) ctx.skip(noTool);
    expect(detectFormat(compressed!)).toBe(format);
    const out = await decompressStream(compressed!, format, 'test');
    expect(out.length).toBe(plain.length);
    expect(out.equals(plain)).toBe(true);
  });

  it('finds the payload in a bzImage, strips the size trailer and returns the ELF', async (ctx) => {
    if (noTool) ctx.skip(noTool);
    const img = bzImageWith(compressed!, plain.length);
    const p = readPayload(img, 'fake.bzImage');
    expect(p.format).toBe(format);
    expect(p.size).toBe(plain.length);
    expect(p.data.equals(compressed!)).toBe(true);
    const r = await decompressBzImage(img, 'fake.bzImage');
    expect(r.format).toBe(format);
    expect(r.vmlinux.equals(plain)).toBe(true);
  });

  it('names the file when the payload is corrupt or truncated', async (ctx) => {
    if (noTool) ctx.skip(noTool);
    const bad = Buffer.from(compressed!);
    // Damage the middle of the stream (headers intact so the format is still detected).
    for (let i = Math.floor(bad.length / 3); i < Math.floor(bad.length / 3) + 64; i++) bad[i] ^= 0x5a;
    const img = bzImageWith(bad, plain.length);
    const damaged = decompressBzImage(img, 'bad.bzImage').then((r) => r.vmlinux.equals(plain));
    // gzip/xz/zstd check CRCs; LZ4 legacy has none, so damage is caught only when it breaks the structure
    // or the size trailer; either way the result must never silently equal the original.
    await expect(damaged.catch((e: unknown) => e)).resolves.not.toBe(true);
    const cut = bzImageWith(compressed!.subarray(0, compressed!.length >> 1), plain.length);
    await expect(decompressBzImage(cut, 'cut.bzImage')).rejects.toThrow(/cut\.bzImage/);
  });
});

describe('unsupported and foreign payloads', () => {
  it('refuses bzip2 with a clear message', async () => {
    const img = bzImageWith(Buffer.from('BZh91AY&SY' + 'x'.repeat(100), 'latin1'), 1000);
    await expect(decompressBzImage(img, 'old.bzImage')).rejects.toThrow(/old\.bzImage.*bzip2-compressed kernels are not supported/);
  });

  it('says so when the payload has no known magic', async () => {
    const img = bzImageWith(Buffer.alloc(100, 0x33), 1000);
    await expect(decompressBzImage(img, 'odd.bzImage')).rejects.toThrow(/odd\.bzImage: payload at file offset 0x[0-9a-f]+ starts with 33 33/);
  });

  it('rejects a payload that decompresses to something other than an ELF', async () => {
    const plain = Buffer.alloc(5000, 0x41);
    const img = bzImageWith(gzipSync(plain), plain.length);
    await expect(decompressBzImage(img, 'notelf.bzImage')).rejects.toThrow(/not an ELF vmlinux/);
  });

  it('checks the size trailer', async () => {
    const plain = kernelLike(20000);
    await expect(decompressBzImage(bzImageWith(gzipSync(plain), plain.length + 1), 'size.bzImage')).rejects.toThrow(
      /decompressed to 20000 bytes, but its size trailer says 20001/,
    );
  });

  it('throws UserError for a stream that is not LZ4 legacy', () => {
    expect(() => lz4LegacyDecompress(Buffer.from('hello'), 'x')).toThrow(UserError);
  });
});

describe('decompressKernel cache', () => {
  it('writes the vmlinux to cacheDir(vmlinux) under the file hash and serves it from there', async () => {
    const prev = process.env.BOOT_TRACE_CACHE;
    process.env.BOOT_TRACE_CACHE = mkdtempSync(join(tmp, 'cache-'));
    try {
      const plain = kernelLike(100000);
      const file = join(tmp, 'k.bzImage');
      writeFileSync(file, bzImageWith(gzipSync(plain), plain.length));
      const first = await decompressKernel(file);
      expect(first.cached).toBe(false);
      expect(first.format).toBe('gzip');
      const second = await decompressKernel(file);
      expect(second.cached).toBe(true);
      expect(second.sha256).toBe(first.sha256);
      expect(second.vmlinux.equals(plain)).toBe(true);
      expect(readFileSync(join(process.env.BOOT_TRACE_CACHE, 'vmlinux', `${first.sha256}.elf`)).equals(plain)).toBe(true);
    } finally {
      if (prev === undefined) delete process.env.BOOT_TRACE_CACHE;
      else process.env.BOOT_TRACE_CACHE = prev;
    }
  });
});

describe('the real Debian cloud kernel', () => {
  /** The standard tool that decompresses each payload format, as a reference (scripts/Makefile.lib's compressors). */
  const reference: Record<string, [string, string[], string]> = {
    lz4: ['lz4', ['-d', '-c'], 'lz4'],
    gzip: ['gzip', ['-d', '-c'], 'gzip'],
    xz: ['xz', ['-d', '-c'], 'xz-utils'],
    zstd: ['zstd', ['-d', '-c'], 'zstd'],
  };

  it('decompresses its payload to the ELF vmlinux, byte-identical to the standard tool', async (ctx) => {
    const missing = defaultKernelMissing();
    if (missing) ctx.skip(missing);
    const kernel = (await findKernel({ log: () => {} })).path;
    const buf = readFileSync(kernel);
    const payload = readPayload(buf, kernel);
    const r = await decompressBzImage(buf, kernel);
    expect(r.format).toBe(payload.format);
    expect(r.vmlinux.length).toBe(payload.size);
    expect(r.vmlinux.readUInt32BE(0)).toBe(0x7f454c46);
    console.info(`${kernel}: ${payload.format} ${payload.data.length} -> ${r.vmlinux.length} bytes in ${r.ms.toFixed(0)} ms`);
    const ref = reference[payload.format];
    if (!ref) ctx.skip(`no reference decompressor for ${payload.format} payloads`);
    const [tool, args, pkg] = ref!;
    if (!onPath(tool)) ctx.skip(`\`${tool}\` not found to cross-check with (apt-get install ${pkg})`);
    const out = spawnSync(tool, args, { input: payload.data, maxBuffer: 256 << 20 });
    expect(out.status).toBe(0);
    expect(r.vmlinux.equals(out.stdout)).toBe(true);
  });
});
