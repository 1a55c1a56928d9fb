/**
 * The demo guest under QEMU: `qemu-system-x86_64 -kernel demo.elf` boots it through its PVH ELF note
 * (XEN_ELFNOTE_PHYS32_ENTRY, samples/guest/head.S), it prints what it prints under KVM and resets through
 * the i8042 (-no-reboot ends QEMU). Stepped through QEMU's gdbstub, it executes exactly the instructions it
 * executes under the KVM engine: per-function counts (hot-functions) of the raw traces are compared, and
 * the whole traces line for line once the one known difference of docs/qemu-engine.md ("The demo guest
 * under both engines") is taken out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadKernelImage } from '../capture/boot/kernel-image.js';
import { captureWithQemu, type QemuCaptureResult } from '../capture/engines/qemu/qemu.js';
import { stepWithQemu, type QemuStepResult } from '../capture/engines/qemu/qemu-step.js';
import { demoGuestPath } from '../capture/guest/build.js';
import { symbolsFromElf } from '../src/symbols/elf-symbols.js';
import { demoConstants, kvmMissing } from './capture-helpers.js';
import { cliJson, runCli, testOutput } from './helpers.js';
import { describeNeeds, qemuMissing } from './preconditions.js';

const noKvm = kvmMissing();

// stepWithQemu adds nokaslr; the KVM capture gets the same line, so both guests print the same text.
const CMDLINE = 'console=ttyS0 demo.engine=any nokaslr';
const STAGES = ['init_entry', 'mounts_done', 'init_ok', 'ready'];
const KERNEL_MAP = 0xffffffff80000000n;

const consoleText = (file: string): string[] =>
  readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => l.slice(l.indexOf(' ') + 1));
const events = (traceFile: string): string[] =>
  readFileSync(traceFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(l.indexOf(' ') + 1));

/** hot-functions lines per function of a trace file. */
function hot(traceFile: string): Record<string, number> {
  const rows = cliJson<{ function: string; lines: number }[]>(['hot-functions', traceFile, '--top', '0']);
  return Object.fromEntries(rows.map((r) => [r.function, r.lines]));
}

/** The PT_NOTE notes of an ELF64 file: type, name, 32-bit description. */
function elfNotes(buf: Buffer): { type: number; name: string; desc: number }[] {
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  const notes: { type: number; name: string; desc: number }[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (buf.readUInt32LE(ph) !== 4) continue; // PT_NOTE
    const off = Number(buf.readBigUInt64LE(ph + 8));
    const size = Number(buf.readBigUInt64LE(ph + 32));
    for (let p = off; p < off + size; ) {
      const namesz = buf.readUInt32LE(p);
      const descsz = buf.readUInt32LE(p + 4);
      const type = buf.readUInt32LE(p + 8);
      const name = buf.subarray(p + 12, p + 12 + namesz).toString('latin1').replace(/\0+$/, '');
      const descAt = p + 12 + ((namesz + 3) & ~3);
      notes.push({ type, name, desc: buf.readUInt32LE(descAt) });
      p = descAt + ((descsz + 3) & ~3);
    }
  }
  return notes;
}

describeNeeds(qemuMissing(), 'the demo guest under QEMU (PVH entry)', () => {
  const kernel = demoGuestPath();
  const image = loadKernelImage(readFileSync(kernel), kernel);
  const symbols = symbolsFromElf(image.elf!)!;

  it('carries a PVH note (Xen, type 18) naming pvh_start\'s physical address; KVM still enters at e_entry', () => {
    const pvh = elfNotes(readFileSync(kernel)).filter((n) => n.name === 'Xen' && n.type === 18);
    expect(pvh).toHaveLength(1);
    expect(BigInt(pvh[0]!.desc)).toBe(symbols.resolve('pvh_start')! - KERNEL_MAP);
    expect(image.entry).toBe(0x1000000);
  });

  describe('run mode (captureWithQemu)', () => {
    let run: QemuCaptureResult;
    beforeAll(async () => {
      run = await captureWithQemu({ kernel, cmdline: CMDLINE, memoryMiB: 128, outDir: testOutput('demo-qemu', 'run'), timeoutS: 120, accel: 'tcg' });
    }, 180_000);

    it('prints the banner, the command line from hvm_start_info, the user write, and resets', () => {
      const lines = consoleText(run.consoleFile);
      expect(lines).toContain('boot-trace demo guest');
      expect(lines).toContain(`Command line: ${CMDLINE}`);
      expect(lines).toContain('hello from user space');
      expect(lines[lines.length - 1]).toBe('reboot: Restarting system');
      expect(run.profile.exit.reason).toBe('reset');
    });

    it('reports the BOOT_TIME markers in order in profile.json', () => {
      expect(Object.keys(run.profile.guest_markers_us)).toEqual(STAGES);
      const ns = STAGES.map((s) => run.profile.guest_markers_us[s]!);
      for (let i = 1; i < ns.length; i++) expect(ns[i]).toBeGreaterThan(ns[i - 1]!);
    });
  });

  describe('step mode through the gdbstub, against the KVM engine', () => {
    let q: QemuStepResult;
    let kvmTrace: string | null = null;
    beforeAll(async () => {
      // From the physical entry, like the KVM engine's first line; to the reset that ends QEMU.
      q = await stepWithQemu({
        kernel, cmdline: CMDLINE, memoryMiB: 128, outDir: testOutput('demo-qemu', 'step'), timeoutS: 600,
        traceFrom: '0x1000000', maxSteps: Infinity, symbols, clock: 'steps', accel: 'tcg',
      });
      if (!noKvm) {
        // Through the built CLI: the KVM engine's vCPU worker is a compiled file.
        const dir = testOutput('demo-qemu', 'kvm-step');
        const r = runCli(['capture', '--guest', 'demo', '--cmdline', CMDLINE, '--mode', 'step', '--clock', 'steps', '--out', dir, '--timeout', '120'], { timeoutMs: 180_000 });
        if (r.status !== 0) throw new Error(`KVM capture exited ${r.status}: ${r.stderr}`);
        kvmTrace = join(dir, 'trace.log');
      }
    }, 660_000);

    it('steps from the entry to the i8042 reset', () => {
      expect(q.profile.exit.reason).toBe('reset');
      expect(q.profile.exit.symbol).toMatch(/^machine_restart \+ \d+ in section \.text$/);
      expect(consoleText(q.consoleFile)).toContain(`Command line: ${CMDLINE}`);
    });

    it('counts the work functions exactly as work.h does (raw trace)', () => {
      // The engine drops the steps QEMU's gdbstub answers without executing anything (profile.json counts
      // them); nothing is collapsed here.
      const c = demoConstants();
      const want = {
        work_small: (1 + c.WORK_NESTED_SMALL_CALLS!) * (2 * c.WORK_SMALL_ITERS! + 2),
        work_medium: 2 * c.WORK_MEDIUM_ITERS! + 2,
        work_nested: 2 * c.WORK_NESTED_ITERS! + 4,
      };
      const qemu = hot(q.traceFile!);
      console.info(`demo-qemu raw lines per work function: ${Object.keys(want).map((fn) => `${fn} ${qemu[fn]}`).join(', ')}; no-progress steps dropped: ${q.profile.qemu!.gdbstub!.no_progress_steps}`);
      for (const [fn, n] of Object.entries(want)) expect(qemu[fn], fn).toBe(n);
    });

    it('counts each work function as the KVM engine does (raw traces)', (ctx) => {
      if (!kvmTrace) ctx.skip(`no KVM engine to compare with: ${noKvm}`);
      const qemu = hot(q.traceFile!);
      const kvm = hot(kvmTrace!);
      for (const fn of ['work_small', 'work_medium', 'work_nested']) expect(qemu[fn], fn).toBe(kvm[fn]);
    });

    it('names _start at its physical address through the ELF\'s physical aliases, as the KVM engine does', () => {
      const first = events(q.traceFile!).slice(0, 2);
      expect(first[0]).toBe('_start in section .text');
      expect(first.every((l) => l.startsWith('_start'))).toBe(true);
    });

    it('gives the KVM trace line for line, once the known differences are taken out', (ctx) => {
      if (!kvmTrace) ctx.skip(`no KVM engine to compare with: ${noKvm}`);
      const qemu = events(q.traceFile!);
      const kvm = events(kvmTrace!);
      // The instruction after each `out` has no KVM line (docs/kvm-facts.md, the software-backed KVM); QEMU has one per character.
      const inKvm = new Set(kvm);
      const afterOut = new Set(qemu.filter((l) => !inKvm.has(l)));
      expect(afterOut.size).toBe(1);
      expect([...afterOut][0]).toMatch(/^serial_putc \+ \d+ in section \.text$/);
      expect(qemu.filter((l) => !afterOut.has(l))).toEqual(kvm);
    });
  });
});
