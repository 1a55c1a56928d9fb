import { readFileSync } from 'node:fs';
import { findKernel } from '../capture/kernel/discover.js';
import { describe, expect, it } from 'vitest';
import { HDR, parseBzImage } from '../capture/boot/bzimage.js';
import { loadSegments, parseElf64 } from '../capture/boot/elf.js';
import { checkFits, loadKernelImage } from '../capture/boot/kernel-image.js';
import { HIMEM_START, KERNEL_LOAD_ADDR, MIB } from '../capture/layout.js';
import { UserError } from '../src/errors.js';
import { makeBzImage } from './bzimage-fixture.js';
import { buildGuests } from './elf-fixture.js';
import { defaultKernelMissing, describeNeeds, onPath } from './preconditions.js';

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('parseBzImage', () => {
  it('reads the setup header fields', () => {
    const bz = parseBzImage(makeBzImage(), 'vmlinuz');
    expect(bz.setupSects).toBe(27);
    expect(bz.protocolVersion).toBe(0x20f);
    expect(bz.setupHeader.length).toBe(0x202 + 0x6a - 0x1f1);
    expect(bz.setupHeader.readUInt16LE(HDR.bootFlag - 0x1f1)).toBe(0xaa55);
    expect(bz.protectedMode.length).toBe(0x3000);
    expect(bz.protectedMode.readUInt32LE(bz.payloadOffset)).toBe(0x184c2102);
    expect(bz).toMatchObject({
      initSize: 0x2fd5000,
      prefAddress: 0x1000000n,
      kernelAlignment: 0x200000,
      relocatable: true,
      xloadflags: 0x7f,
      cmdlineSize: 2047,
      initrdAddrMax: 0x7fffffff,
      payloadLength: 0x1000,
    });
  });

  it('setup_sects 0 means 4', () => {
    expect(parseBzImage(makeBzImage({ sects: 0 }), 'k').protectedMode.length).toBe(0x3000);
  });

  it('names the failed check', () => {
    const noFlag = makeBzImage();
    noFlag.writeUInt16LE(0, HDR.bootFlag);
    expect(userError(() => parseBzImage(noFlag, 'k'))).toMatch(/^k: .*boot_flag at 0x1fe is 0x0, not 0xaa55/);
    expect(userError(() => parseBzImage(makeBzImage({ version: 0x204 }), 'k'))).toMatch(/protocol 2\.04 is older than 2\.06.*cmdline_size/);
    expect(userError(() => parseBzImage(makeBzImage({ version: 0x20a }), 'k'))).toMatch(/2\.10 is older than 2\.12.*xloadflags/);
    expect(userError(() => parseBzImage(makeBzImage({ xloadflags: 0x7e }), 'k'))).toMatch(/no 64-bit entry point/);
    const cut = makeBzImage().subarray(0, 28 * 512 + 0x100);
    expect(userError(() => parseBzImage(cut, 'k'))).toMatch(/payload .* runs past .*truncated/);
    expect(userError(() => parseBzImage(makeBzImage().subarray(0, 28 * 512), 'k'))).toMatch(/setup sectors alone/);
  });
});

describe('loadKernelImage', () => {
  it('bzImage: protected-mode part at 1 MiB, entry +0x200, needs init_size at 16 MiB', () => {
    const k = loadKernelImage(makeBzImage(), 'vmlinuz');
    expect(k.kind).toBe('bzimage');
    expect(k.segments).toHaveLength(1);
    expect(k.segments[0]!.gpa).toBe(HIMEM_START);
    expect(k.entry).toBe(0x100200);
    expect(k.initSize).toBe(0x2fd5000);
    expect(k.highestAddress).toBe(KERNEL_LOAD_ADDR + 0x2fd5000);
    expect(k.setupHeader?.length).toBe(123);
  });

  it('rejects other files with the message the CLI prints', () => {
    const text = Buffer.from('#!/bin/sh\necho this is not a kernel\n'.repeat(40));
    expect(userError(() => loadKernelImage(text, 'kernel.bin'))).toBe(
      'kernel.bin: not a bzImage or ELF vmlinux (no "HdrS" at 0x202, no ELF magic)',
    );
    expect(userError(() => loadKernelImage(Buffer.from('MZ'), 'tiny'))).toMatch(/^tiny: not a bzImage or ELF vmlinux \(file is only 2 bytes/);
    expect(userError(() => loadKernelImage(makeBzImage().subarray(0, 0x240), 'cut'))).toMatch(/^cut: .*shorter than the 0x264-byte setup header/);
  });

  it('checkFits says how much memory the kernel needs', () => {
    const k = loadKernelImage(makeBzImage(), 'vmlinuz');
    expect(() => checkFits(k, 64 * MIB, 'vmlinuz')).not.toThrow();
    expect(userError(() => checkFits(k, 32 * MIB, 'vmlinuz'))).toBe(
      'vmlinuz: kernel needs 64 MiB of guest memory up to 0x3fd5000, --memory 32 gives 32 MiB',
    );
  });

  // A real distro bzImage: BOOT_TRACE_TEST_BZIMAGE, else the kernel capture would boot (fetched once into the cache).
  it('a real distro bzImage', async (ctx) => {
    let real = process.env.BOOT_TRACE_TEST_BZIMAGE;
    if (!real) {
      const missing = defaultKernelMissing();
      if (missing) ctx.skip(`${missing}; or set BOOT_TRACE_TEST_BZIMAGE=/path/to/vmlinuz`);
      real = (await findKernel({ log: () => {} })).path;
    }
    const k = loadKernelImage(readFileSync(real!), real!);
    expect(k.kind).toBe('bzimage');
    expect(k.bzImage!.protocolVersion).toBeGreaterThanOrEqual(0x20c);
    expect(k.highestAddress).toBeGreaterThan(KERNEL_LOAD_ADDR);
  }, 300_000);
});

const noCc = onPath('cc') ? null : 'no C compiler `cc` (apt-get install build-essential)';
const guests = noCc ? null : buildGuests();

describeNeeds(noCc, 'ELF kernels (built with cc)', () => {
  it('parses a low-linked guest: segments at p_paddr, entry as is', () => {
    const elf = parseElf64(guests!.low, 'low.elf');
    expect(elf.machine).toBe(62);
    expect(elf.sectionHeaders.map((s) => s.name)).toEqual(expect.arrayContaining(['.text', '.data', '.bss', '.symtab', '.strtab']));
    const segs = loadSegments(elf);
    // -Ttext=0x200000: some PT_LOAD holds .text at physical 0x200000 (ld may add a header segment below it).
    expect(segs.some((s) => s.gpa <= 0x200000 && 0x200000 < s.gpa + s.memsz)).toBe(true);
    expect(segs.some((s) => s.memsz > s.data.length)).toBe(true); // .bss is memory-only
    const k = loadKernelImage(guests!.low, 'low.elf');
    expect(k.kind).toBe('elf');
    expect(k.entry).toBe(Number(elf.entry));
    expect(k.highestAddress).toBe(Math.max(...segs.map((s) => s.gpa + s.memsz)));
    expect(k.setupHeader).toBeUndefined();
  });

  it('translates a high virtual entry through its PT_LOAD (linked like vmlinux)', () => {
    const elf = parseElf64(guests!.high, 'high.elf');
    expect(elf.entry >= 0xffffffff81000000n).toBe(true);
    const k = loadKernelImage(guests!.high, 'high.elf');
    expect(k.segments[0]!.gpa).toBe(KERNEL_LOAD_ADDR);
    expect(k.entry).toBe(KERNEL_LOAD_ADDR + Number(elf.entry - 0xffffffff81000000n));
    // The entry's bytes in the file are the start of _start: the same bytes the guest will run.
    const text = k.segments[0]!;
    expect(text.data.length).toBeGreaterThan(k.entry - text.gpa);
  });

  it('rejects 32-bit, non-x86-64 and truncated ELF files', () => {
    const c32 = Buffer.from(guests!.low);
    c32[4] = 1;
    expect(userError(() => loadKernelImage(c32, 'k32'))).toMatch(/^k32: .*32-bit ELF/);
    const arm = Buffer.from(guests!.low);
    arm.writeUInt16LE(183, 18);
    expect(userError(() => loadKernelImage(arm, 'arm'))).toMatch(/e_machine 183 is not x86-64/);
    expect(userError(() => loadKernelImage(guests!.low.subarray(0, 40), 'cut'))).toMatch(/shorter than the 64-byte ELF header/);
    expect(userError(() => loadKernelImage(guests!.low.subarray(0, 0x1010), 'cut'))).toMatch(/truncated/);
  });

  it('checkFits refuses segments below 1 MiB', () => {
    const k = loadKernelImage(guests!.low, 'low.elf');
    k.segments[0]!.gpa = 0x7000;
    expect(userError(() => checkFits(k, 64 * MIB, 'low.elf'))).toMatch(/overlaps the boot structures/);
  });
});
