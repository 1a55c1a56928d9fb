import { HDR } from '../capture/boot/bzimage.js';

/**
 * A bzImage laid out per Documentation/arch/x86/boot.rst: boot sector + `sects` setup sectors, then a
 * protected-mode part holding a fake payload. Field values follow a Debian 6.1 cloud kernel.
 */
export function makeBzImage(o: { sects?: number; version?: number; xloadflags?: number; pmBytes?: number } = {}): Buffer {
  const sects = o.sects ?? 27;
  const setup = ((sects || 4) + 1) * 512;
  const pm = o.pmBytes ?? 0x3000;
  const b = Buffer.alloc(setup + pm);
  b[HDR.setupSects] = sects;
  b.writeUInt16LE(0xaa55, HDR.bootFlag);
  b[HDR.jump] = 0xeb;
  b[HDR.jump + 1] = 0x6a; // header runs to 0x26c
  b.write('HdrS', HDR.header, 'latin1');
  b.writeUInt16LE(o.version ?? 0x20f, HDR.version);
  b[HDR.loadflags] = 0x01;
  b.writeUInt32LE(0x7fffffff, HDR.initrdAddrMax);
  b.writeUInt32LE(0x200000, HDR.kernelAlignment);
  b[HDR.relocatableKernel] = 1;
  b.writeUInt16LE(o.xloadflags ?? 0x7f, HDR.xloadflags);
  b.writeUInt32LE(2047, HDR.cmdlineSize);
  b.writeUInt32LE(0x2cc, HDR.payloadOffset);
  b.writeUInt32LE(0x1000, HDR.payloadLength);
  b.writeBigUInt64LE(0x1000000n, HDR.prefAddress);
  b.writeUInt32LE(0x2fd5000, HDR.initSize);
  b.writeUInt32LE(0x184c2102, setup + 0x2cc); // LZ4 legacy magic at the payload
  return b;
}

