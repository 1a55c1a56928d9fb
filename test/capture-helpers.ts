/** Shared by the capture tests: is /dev/kvm usable, a tiny hand-made ELF guest, the demo guest's constants. */
import { KvmSystem } from '../capture/kvm/kvm.js';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

/** Why KVM tests cannot run here, or null when /dev/kvm opens read-write. */
export function kvmMissing(): string | null {
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR));
    return null;
  } catch (err) {
    return `/dev/kvm not usable (${(err as NodeJS.ErrnoException).code})`;
  }
}

/**
 * Why the demo guest cannot be told its TSC frequency here, or null: the host's KVM_GET_SUPPORTED_CPUID table has
 * no leaf 0x16 (the VMM fills the leaf, never adds it: docs/kvm-facts.md), e.g. nested kvm_amd.
 */
export function tscLeafMissing(): string | null {
  const kvm = kvmMissing();
  if (kvm) return kvm;
  const system = KvmSystem.open();
  try {
    return system.supportedCpuid().some((e) => e.function === 0x16) ? null : "this host's KVM CPUID table has no leaf 0x16 (the guest cannot be told its TSC frequency)";
  } finally {
    system.close();
  }
}

/** `#define NAME value` constants of samples/guest/work.h, so expected counts come from the guest's source. */
export function demoConstants(): Record<string, number> {
  const text = readFileSync(join(ROOT, 'samples', 'guest', 'work.h'), 'utf8');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^#define (\w+) (0x[0-9a-fA-F]+|\d+)\s*$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/**
 * A minimal ELF64 executable: one PT_LOAD with `code` at physical = virtual `addr`, entry at its start.
 * For guests of a few instructions (a spin loop, a HLT, a fault) that the demo guest cannot show.
 */
export function tinyElf(code: Buffer, addr = 0x200000): Buffer {
  const EHDR = 64;
  const PHDR = 56;
  const off = 0x1000;
  const b = Buffer.alloc(off + code.length);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1; // EV_CURRENT
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(addr), 24); // e_entry
  b.writeBigUInt64LE(BigInt(EHDR), 32); // e_phoff
  b.writeBigUInt64LE(0n, 40); // e_shoff
  b.writeUInt16LE(EHDR, 52);
  b.writeUInt16LE(PHDR, 54);
  b.writeUInt16LE(1, 56); // e_phnum
  b.writeUInt16LE(64, 58); // e_shentsize
  b.writeUInt16LE(0, 60);
  const p = EHDR;
  b.writeUInt32LE(1, p); // PT_LOAD
  b.writeUInt32LE(5, p + 4); // R+X
  b.writeBigUInt64LE(BigInt(off), p + 8);
  b.writeBigUInt64LE(BigInt(addr), p + 16);
  b.writeBigUInt64LE(BigInt(addr), p + 24);
  b.writeBigUInt64LE(BigInt(code.length), p + 32);
  b.writeBigUInt64LE(BigInt(code.length), p + 40);
  b.writeBigUInt64LE(0x1000n, p + 48);
  code.copy(b, off);
  return b;
}
