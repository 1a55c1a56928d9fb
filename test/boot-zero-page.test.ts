import { describe, expect, it } from 'vitest';
import { encodeCmdline, cmdlineLimit } from '../capture/boot/cmdline.js';
import { buildZeroPage, e820Map, placeInitrd } from '../capture/boot/zero-page.js';
import { CMDLINE_ADDR, CMDLINE_MAX_SIZE, DEFAULT_CMDLINE, MIB } from '../capture/layout.js';
import { UserError } from '../src/errors.js';

const MEM = 256 * MIB;

describe('e820Map', () => {
  it('is the map that booted a 6.1 kernel here', () => {
    expect(e820Map(MEM)).toEqual([
      { addr: 0, size: 0x9fc00, type: 1 },
      { addr: 0x9fc00, size: 0x400, type: 2 },
      { addr: 0xf0000, size: 0x10000, type: 2 },
      { addr: 0x100000, size: MEM - 0x100000, type: 1 },
    ]);
  });
  it('refuses sizes it cannot describe', () => {
    expect(() => e820Map(MIB)).toThrow(UserError);
    expect(() => e820Map(4096 * MIB)).toThrow(/not supported/);
  });
});

describe('buildZeroPage', () => {
  const e820 = e820Map(MEM);

  it('synthesizes a minimal header for a vmlinux and fills in the loader fields', () => {
    const zp = buildZeroPage({ cmdlineAddr: CMDLINE_ADDR, cmdlineSize: 120, initrd: { addr: 0xf000000, size: 0x123456 }, e820 });
    expect(zp.length).toBe(4096);
    expect(zp.readUInt16LE(0x1fe)).toBe(0xaa55);
    expect(zp.toString('latin1', 0x202, 0x206)).toBe('HdrS');
    expect(zp.readUInt16LE(0x206)).toBe(0x20f);
    expect(zp.readUInt32LE(0x230)).toBe(0x1000000);
    expect(zp[0x210]).toBe(0xff);
    expect(zp[0x211]! & 0x01).toBe(0x01);
    expect(zp.readUInt32LE(0x228)).toBe(CMDLINE_ADDR);
    expect(zp.readUInt32LE(0xc8)).toBe(0);
    expect(zp.readUInt32LE(0x238)).toBe(120);
    expect(zp.readUInt32LE(0x218)).toBe(0xf000000);
    expect(zp.readUInt32LE(0x21c)).toBe(0x123456);
    expect(zp[0x1e8]).toBe(4);
    // The table as the kernel reads it: 20-byte {u64 addr, u64 size, u32 type} entries at 0x2d0.
    const table = [...Array(zp[0x1e8])].map((_, i) => ({
      addr: Number(zp.readBigUInt64LE(0x2d0 + i * 20)),
      size: Number(zp.readBigUInt64LE(0x2d0 + i * 20 + 8)),
      type: zp.readUInt32LE(0x2d0 + i * 20 + 16),
    }));
    expect(table).toEqual(e820);
    expect(zp[0x1ef]).toBe(0); // sentinel: nonzero makes the kernel wipe fields as a "broken loader"
  });

  it('copies a bzImage setup header and keeps its loadflags bits', () => {
    const hdr = Buffer.alloc(0x26c - 0x1f1);
    hdr[0] = 27; // setup_sects
    hdr.writeUInt16LE(0xaa55, 0x1fe - 0x1f1);
    hdr.write('HdrS', 0x202 - 0x1f1, 'latin1');
    hdr.writeUInt16LE(0x20f, 0x206 - 0x1f1);
    hdr[0x211 - 0x1f1] = 0x20; // QUIET_FLAG from the image
    hdr.writeUInt32LE(0x2fd5000, 0x260 - 0x1f1);
    const zp = buildZeroPage({ setupHeader: hdr, cmdlineAddr: CMDLINE_ADDR, cmdlineSize: 10, e820 });
    expect(zp[0x1f1]).toBe(27);
    expect(zp.readUInt32LE(0x260)).toBe(0x2fd5000);
    expect(zp[0x211]).toBe(0x21);
    expect(zp.readUInt32LE(0x230)).toBe(0); // not synthesized over a real header
    expect(zp.readUInt32LE(0x218)).toBe(0); // no initrd
  });

  it('splits addresses above 4 GiB into the ext_ fields', () => {
    const zp = buildZeroPage({ cmdlineAddr: 0x1_2345_6000, cmdlineSize: 1, initrd: { addr: 0x2_0000_1000, size: 0x1_0000_0002 }, e820 });
    expect(zp.readUInt32LE(0x228)).toBe(0x23456000);
    expect(zp.readUInt32LE(0xc8)).toBe(1);
    expect(zp.readUInt32LE(0x218)).toBe(0x1000);
    expect(zp.readUInt32LE(0xc0)).toBe(2);
    expect(zp.readUInt32LE(0x21c)).toBe(2);
    expect(zp.readUInt32LE(0xc4)).toBe(1);
  });
});

describe('placeInitrd', () => {
  it('goes as high as possible, page aligned, below RAM end and initrd_addr_max', () => {
    expect(placeInitrd(0x123456, MEM, 0x7fffffff, 0x4000000)).toBe(MEM - 0x124000);
    expect(placeInitrd(0x1000, MEM, 0x37ffffff, 0x4000000)).toBe(MEM - 0x1000);
    expect(placeInitrd(0x1000, 2048 * MIB, 0x37ffffff, 0x4000000)).toBe(0x38000000 - 0x1000);
    const size = 3 * MIB + 5;
    const at = placeInitrd(size, MEM, 0x7fffffff, 0x4000000);
    expect(at % 4096).toBe(0);
    expect(at + size).toBeLessThanOrEqual(MEM);
    expect(MEM - (at + size)).toBeLessThan(4096);
  });

  it('says how much memory would do when it does not fit above the kernel', () => {
    expect(() => placeInitrd(40 * MIB, 100 * MIB, 0x7fffffff, 0x4378000)).toThrow(
      'initramfs of 40.0 MiB does not fit between the kernel\'s end 0x4378000 and 0x6400000 (the end of RAM): give --memory 108 or more',
    );
    expect(() => placeInitrd(MIB, 2048 * MIB, 0x37ffffff, 0x38000000)).toThrow(/and 0x38000000 \(the kernel.s initrd_addr_max\)$/);
  });
});

describe('encodeCmdline', () => {
  it('NUL-terminates and refuses what does not fit', () => {
    const b = encodeCmdline(DEFAULT_CMDLINE, CMDLINE_MAX_SIZE);
    expect(b.length).toBe(DEFAULT_CMDLINE.length + 1);
    expect(b[b.length - 1]).toBe(0);
    expect(b.toString('latin1', 0, b.length - 1)).toBe(DEFAULT_CMDLINE);
    expect(() => encodeCmdline('x'.repeat(2047), 2048)).not.toThrow();
    expect(() => encodeCmdline('x'.repeat(2048), 2048)).toThrow('kernel command line is 2048 bytes; at most 2047 fit (shorten --cmdline)');
    expect(() => encodeCmdline('a\0b', 2048)).toThrow(UserError);
  });
  it('limit is the smaller of the reserved room and the kernel cmdline_size + NUL', () => {
    expect(cmdlineLimit(2048, 2047)).toBe(2048);
    expect(cmdlineLimit(2048, 255)).toBe(256);
    expect(cmdlineLimit(2048)).toBe(2048);
  });
});
