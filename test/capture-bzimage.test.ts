/**
 * The bzImage path end to end under /dev/kvm, on a hand-made bzImage whose 64-bit entry (protected-mode
 * part + 0x200) prints the zero page's boot_flag low byte ('U' = 0x55), a 'B', and the first byte of the
 * initrd it finds through ramdisk_image, then resets: checks the in-place read to 0x100000, the entry
 * point, RSI = zero page, the copied setup header and the initrd placement.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { kvmMissing } from './capture-helpers.js';
import { runCli, testOutput } from './helpers.js';
import { describeNeeds } from './preconditions.js';

const missing = kvmMissing();

const ENTRY_CODE = [
  0x66, 0xba, 0xf8, 0x03, //         mov $0x3f8, %dx
  0x8a, 0x86, 0xfe, 0x01, 0, 0, //   mov 0x1fe(%rsi), %al   (boot_flag, low byte 0x55)
  0xee, //                           out %al, %dx
  0xb0, 0x42, 0xee, //               mov $'B', %al; out
  0x8b, 0x9e, 0x18, 0x02, 0, 0, //   mov 0x218(%rsi), %ebx  (ramdisk_image)
  0x8a, 0x03, 0xee, //               mov (%rbx), %al; out
  0xb0, 0x0a, 0xee, //               mov $'\n', %al; out
  0xb0, 0xfe, 0xe6, 0x64, //         mov $0xfe, %al; out %al, $0x64  (i8042 reset)
  0xf4, //                           hlt
];

/** A minimal bzImage (boot protocol 2.15) with one setup sector and ENTRY_CODE at the 64-bit entry. */
function tinyBzImage(): Buffer {
  const setupBytes = 2 * 512;
  const pm = Buffer.alloc(0x1000);
  Buffer.from(ENTRY_CODE).copy(pm, 0x200);
  const b = Buffer.alloc(setupBytes + pm.length);
  b[0x1f1] = 1; // setup_sects
  b.writeUInt16LE(0xaa55, 0x1fe);
  b[0x200] = 0xeb; // jmp over the header...
  b[0x201] = 0x66; // ...to 0x268: the header ends there
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x20f, 0x206);
  b[0x211] = 0x01; // LOADED_HIGH
  b.writeUInt32LE(0x100000, 0x214);
  b.writeUInt32LE(0x7fffffff, 0x22c); // initrd_addr_max
  b.writeUInt32LE(0x200000, 0x230); // kernel_alignment
  b[0x234] = 1; // relocatable
  b.writeUInt16LE(0x1, 0x236); // xloadflags: 64-bit entry
  b.writeUInt32LE(2047, 0x238); // cmdline_size
  b.writeBigUInt64LE(0x1000000n, 0x258); // pref_address
  b.writeUInt32LE(0x100000, 0x260); // init_size
  pm.copy(b, setupBytes);
  return b;
}

describeNeeds(missing, 'capture --kernel bzImage (KVM)', () => {
  const dir = testOutput('capture-bzimage');
  const kernel = join(dir, 'tiny.bzImage');
  writeFileSync(kernel, tinyBzImage());

  it('enters at 0x100200 with RSI = zero page and finds the initrd', () => {
    const initrd = join(dir, 'initrd.img');
    writeFileSync(initrd, Buffer.from('Zinitrd contents'));
    const out = join(dir, 'run');
    const r = runCli(['capture', '--engine', 'kvm', '--kernel', kernel, '--initrd', initrd, '--timeout', '20', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(join(out, 'console.log'), 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => l.slice(l.indexOf(' ') + 1))).toEqual(['UBZ']);
    const p = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
    expect(p.exit.reason).toBe('reset');
    expect(p.phases_us.rootfs_load).toBeGreaterThanOrEqual(0);
  });

  it('traces the entry in step mode as bare addresses (no symbols)', () => {
    const out = join(dir, 'step');
    const r = runCli(['capture', '--engine', 'kvm', '--kernel', kernel, '--mode', 'step', '--clock', 'steps', '--timeout', '20', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const events = readFileSync(join(out, 'trace.log'), 'utf8').trimEnd().split('\n').filter((l) => !l.startsWith('#'));
    expect(events[0]).toBe('0 100200');
    expect(events[1]).toBe('1 100204');
    expect(events.every((l) => /^\d+ 100[0-9a-f]{3}$/.test(l))).toBe(true);
  });
});
