/**
 * Boot a kernel + initrd under QEMU with TCG (software emulation, works without usable KVM) and collect
 * its serial console. A cross-check tool for the appliance and for kallsyms decoding (the tests take a
 * /proc/kallsyms dump with it), not the QEMU capture engine.
 *
 *   const r = await bootQemuTcg({ kernel, initrd, append: 'console=ttyS0 nokaslr panic=-1' });
 *   r.console  // everything the guest wrote to ttyS0
 */
import { spawn, spawnSync } from 'node:child_process';
import { UserError } from '../../src/errors.js';

export const QEMU = 'qemu-system-x86_64';

export interface QemuBootOptions {
  kernel: string;
  initrd: string;
  append: string;
  /** Guest RAM in MiB (default 512). */
  memMiB?: number;
  /** Kill QEMU after this long (default 120 s). */
  timeoutMs?: number;
}

export interface QemuBootResult {
  console: string;
  /** QEMU's exit code (0 after a guest power-off or reset with -no-reboot), null if killed. */
  code: number | null;
  timedOut: boolean;
  ms: number;
  stderr: string;
}

/** True when qemu-system-x86_64 runs here. */
export function haveQemu(): boolean {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

export function bootQemuTcg(opts: QemuBootOptions): Promise<QemuBootResult> {
  const args = [
    '-accel', 'tcg', '-m', String(opts.memMiB ?? 512), '-smp', '1',
    '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-kernel', opts.kernel, '-initrd', opts.initrd, '-append', opts.append,
  ];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new UserError(`${QEMU}: cannot start (${e.message}); install the qemu-system-x86 package`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        console: Buffer.concat(out).toString('latin1'),
        code,
        timedOut,
        ms: performance.now() - t0,
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}
