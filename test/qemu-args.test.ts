/** The QEMU engine's pieces that need no QEMU: its command line, the accelerator choice, peak RSS parsing, errors. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseAccel, hardwareVirtualisation, qemuArgs } from '../capture/engines/qemu/qemu-args.js';
import { captureWithQemu, findExecutable, QEMU_MISSING } from '../capture/engines/qemu/qemu.js';
import { parseTimeOutput, readVmHwm } from '../capture/engines/qemu/peak-rss.js';
import { qemuMissing } from './preconditions.js';

describe('qemu command line', () => {
  it('puts the serial port on a FIFO (commas doubled), ends on reset, and passes kernel, initrd and cmdline through', () => {
    const args = qemuArgs({ kernel: '/k/vmlinuz', initrd: '/k/initrd.gz', cmdline: 'console=ttyS0 quiet', memoryMiB: 384, accel: 'tcg', serial: '/tmp/a,b/serial.fifo', extraArgs: ['-smp', '2'] });
    expect(args).toEqual([
      '-accel', 'tcg', '-m', '384', '-smp', '1', '-nographic', '-monitor', 'none',
      '-chardev', 'file,id=serial0,path=/tmp/a,,b/serial.fifo', '-serial', 'chardev:serial0', '-no-reboot',
      '-kernel', '/k/vmlinuz', '-initrd', '/k/initrd.gz', '-append', 'console=ttyS0 quiet', '-smp', '2',
    ]);
    const kvm = qemuArgs({ kernel: 'k', cmdline: '', memoryMiB: 64, accel: 'kvm', serial: 'stdio' });
    expect(kvm.slice(9, 11)).toEqual(['-serial', 'stdio']);
    expect(kvm).not.toContain('-initrd');
    expect(kvm.slice(-2)).toEqual(['-cpu', 'host']);
    // Without SeaBIOS on the serial port (bootQemuTcg): no display, and not -nographic
    const quiet = qemuArgs({ kernel: 'k', cmdline: '', memoryMiB: 64, accel: 'tcg', serial: 'stdio', firmwareOnSerial: false });
    expect(quiet.slice(6, 8)).toEqual(['-display', 'none']);
    expect(quiet).not.toContain('-nographic');
  });

  it('takes KVM on auto only with /dev/kvm and vmx/svm; refuses an explicit kvm that cannot open', () => {
    const probe = (opens: boolean, hw: boolean) => ({ kvmOpens: () => opens, hardware: () => hw });
    expect(chooseAccel('auto', probe(true, true))).toEqual({ accel: 'kvm' });
    expect(chooseAccel('auto', probe(true, false))).toEqual({ accel: 'tcg' });
    expect(chooseAccel('auto', probe(false, true))).toEqual({ accel: 'tcg' });
    expect(chooseAccel('tcg', probe(true, true))).toEqual({ accel: 'tcg' });
    expect(chooseAccel('kvm', probe(true, false))).toEqual({ accel: 'kvm' });
    expect(chooseAccel('kvm', probe(false, false))).toEqual({ error: expect.stringMatching(/\/dev\/kvm cannot be opened/) });
    expect(hardwareVirtualisation('processor\t: 0\nflags\t\t: fpu vme de pse vmx ssse3\n')).toBe(true);
    expect(hardwareVirtualisation('processor\t: 0\nflags\t\t: fpu vme de pse ssse3 hypervisor\n')).toBe(false);
  });
});

describe('qemu peak RSS', () => {
  it('reads GNU time output, also after its "non-zero status" line', () => {
    expect(parseTimeOutput('224764\n')).toBe(224764);
    expect(parseTimeOutput('Command exited with non-zero status 1\n1234\n')).toBe(1234);
    expect(parseTimeOutput('Command terminated by signal 9\n')).toBeNull();
  });

  it('reads VmHWM of a live process and null for a missing one', () => {
    expect(readVmHwm(process.pid)).toBeGreaterThan(10 * 1024 * 1024);
    expect(readVmHwm(2 ** 22 + 12345)).toBeNull();
  });
});

describe('qemu engine errors', () => {
  it('names the package when qemu-system-x86_64 is not on PATH', async () => {
    const saved = process.env.PATH;
    process.env.PATH = mkdtempSync(join(tmpdir(), 'no-qemu-'));
    try {
      expect(findExecutable('qemu-system-x86_64')).toBeNull();
      await expect(captureWithQemu({ kernel: '/nonexistent', cmdline: '', memoryMiB: 64, outDir: tmpdir(), timeoutS: 1 }))
        .rejects.toThrow(QEMU_MISSING);
    } finally {
      process.env.PATH = saved;
    }
    expect(QEMU_MISSING).toBe('qemu-system-x86_64 not found: apt-get install qemu-system-x86');
  });

  it('names an unreadable kernel before starting anything', async (ctx) => {
    if (qemuMissing()) ctx.skip(qemuMissing()!);
    await expect(captureWithQemu({ kernel: '/nonexistent/vmlinuz', cmdline: '', memoryMiB: 64, outDir: mkdtempSync(join(tmpdir(), 'qemu-')), timeoutS: 1 }))
      .rejects.toThrow(/--kernel \/nonexistent\/vmlinuz: cannot read/);
  });

  it('reports in one line what QEMU said when it refuses a kernel, without waiting for the timeout', async (ctx) => {
    if (qemuMissing()) ctx.skip(qemuMissing()!);
    const dir = mkdtempSync(join(tmpdir(), 'qemu-'));
    const notAKernel = join(dir, 'not-a-kernel.bin');
    writeFileSync(notAKernel, Buffer.alloc(8192, 0x5a));
    const t0 = performance.now();
    // The output folder is a new one beside the file: --out must be new or empty.
    await expect(captureWithQemu({ kernel: notAKernel, cmdline: 'console=ttyS0', memoryMiB: 64, outDir: join(dir, 'out'), timeoutS: 30 }))
      .rejects.toThrow(/^qemu-system-x86_64 failed before the guest ran: .*invalid kernel header/);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });
});
