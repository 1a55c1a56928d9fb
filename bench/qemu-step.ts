/**
 * Step speed of the QEMU engine through its gdbstub, against the KVM engine's step mode.
 * (1) stepWithQemu on the Debian cloud kernel: --trace-from start_kernel, STEPS instructions, trace
 *     written and symbolised (steps / stepping time, profile.json);
 * (2) what one step costs at the protocol level, on a QEMU this benchmark drives itself: `p` alone (a
 *     round trip that runs no guest code), `vCont;s` alone, and the two together (what (1) does per line);
 * (3) baseline in the same run: `node dist/src/cli.js capture --guest demo --mode step` (KVM engine).
 *
 *   node dist/bench/qemu-step.js
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAppliance } from '../capture/appliance/appliance.js';
import { GdbRemote } from '../capture/engines/qemu/gdb-remote.js';
import { findExecutable } from '../capture/engines/qemu/qemu.js';
import { stepWithQemu } from '../capture/engines/qemu/qemu-step.js';
import { findKernel } from '../capture/kernel/discover.js';
import { kernelSymbolTable } from '../capture/kernel/symbols.js';
import { median, runWhenMain } from './measure.js';

const RUNS = 3;
const STEPS = 5000;
const RAW = 2000;
const CMDLINE = 'console=ttyS0 panic=-1 reboot=t nokaslr';
const n = (v: number): string => Math.round(v).toLocaleString('en-US');

/** Rates of the raw protocol loops on one paused-at-start_kernel QEMU. */
async function rawLoops(kernel: string, start: bigint, work: string): Promise<{ p: number; s: number; sp: number; qemuCpuUsPerStep: number }> {
  const sock = join(work, 'raw.sock');
  const q = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-m', '512', '-smp', '1', '-nographic', '-monitor', 'none', '-serial', 'null', '-no-reboot',
    '-kernel', kernel, '-append', CMDLINE, '-S', '-gdb', `unix:${sock},server=on,wait=off`,
  ], { stdio: 'ignore' });
  const timer = setTimeout(() => q.kill('SIGKILL'), 300_000);
  try {
    const g = await GdbRemote.connect({ path: sock }, { timeoutMs: 15_000 });
    await g.supported();
    const rip = (await g.registerNumber('rip'))!;
    await g.insertBreakpoint(start);
    await g.resume('c', 120_000);
    const rate = async (f: () => Promise<unknown>): Promise<number> => {
      const t = performance.now();
      for (let i = 0; i < RAW; i++) await f();
      return (RAW / (performance.now() - t)) * 1000;
    };
    const p = await rate(() => g.readRegister(rip));
    const s = await rate(() => g.resume('vCont;s'));
    const cpu0 = qemuCpuMs(q.pid!);
    const sp = await rate(async () => {
      await g.resume('vCont;s');
      await g.readRegister(rip);
    });
    const qemuCpuUsPerStep = ((qemuCpuMs(q.pid!) - cpu0) / RAW) * 1000;
    await g.kill();
    return { p, s, sp, qemuCpuUsPerStep };
  } finally {
    clearTimeout(timer);
    q.kill('SIGKILL');
  }
}

/** utime + stime of a process in ms (clock ticks of 10 ms). */
function qemuCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function kvmDemo(work: string): { rate: number; steps: number } | string {
  const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
  if (!existsSync('/dev/kvm')) return 'no /dev/kvm';
  const out = join(work, 'kvm-demo');
  const r = spawnSync(process.execPath, [cli, 'capture', '--guest', 'demo', '--mode', 'step', '--out', out], { encoding: 'utf8', timeout: 300_000 });
  try {
    const p = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8')) as { steps: number; steps_per_second: number };
    return { rate: p.steps_per_second, steps: p.steps };
  } catch {
    return `capture failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`;
  }
}

export async function run(): Promise<string> {
  const title = '## Step mode through QEMU\'s gdbstub';
  if (!findExecutable('qemu-system-x86_64')) return `${title}\n\nnot available: qemu-system-x86_64 is not installed\n`;
  const work = mkdtempSync(join(tmpdir(), 'boot-trace-bench-qemu-step-'));
  try {
    const kernel = (await findKernel({ log: () => {} })).path;
    const initrd = await buildAppliance({ log: () => {} });
    const symbols = await kernelSymbolTable(kernel);
    const start = symbols.resolve('start_kernel')!;
    const rates: number[] = [];
    const kvmRates: number[] = [];
    let kvmNote = '';
    let kvmSteps = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await stepWithQemu({
        kernel, initrd, cmdline: CMDLINE, memoryMiB: 512, outDir: join(work, `q${i}`), timeoutS: 300,
        traceFrom: 'start_kernel', maxSteps: STEPS, symbols, clock: 'host',
      });
      if (r.profile.exit.reason !== 'max-steps') throw new Error(`QEMU step run ended with ${r.profile.exit.reason}: ${r.profile.exit.detail}`);
      rates.push(r.profile.step!.steps_per_second);
      const k = kvmDemo(work); // interleaved, so load from other processes hits both alike
      if (typeof k === 'string') kvmNote = k;
      else {
        kvmRates.push(k.rate);
        kvmSteps = k.steps;
      }
    }
    const raw = await rawLoops(kernel, start, work);
    const kvmRow = kvmRates.length
      ? `| KVM engine: \`node dist/src/cli.js capture --guest demo --mode step\` (demo guest, ${n(kvmSteps)} steps; baseline) | ${n(median(kvmRates))} | ${kvmRates.map(n).join(', ')} |`
      : `| KVM engine, demo guest (baseline) | not available: ${kvmNote} | |`;
    return [
      title,
      '',
      '`node dist/bench/qemu-step.js`: `stepWithQemu` (the engine behind `--engine qemu --mode step`) on the Debian cloud',
      `kernel under TCG, \`--trace-from start_kernel --max-steps ${STEPS} --clock host\`, trace written and symbolised from kallsyms,`,
      `${RUNS} runs interleaved with the KVM engine's step mode on the demo guest. Rate: steps / stepping time (profile.json).`,
      '',
      '| loop | steps/s (median) | all runs |',
      '|---|---:|---|',
      `| QEMU gdbstub: \`stepWithQemu\` (${n(STEPS)} steps from start_kernel) | ${n(median(rates))} | ${rates.map(n).join(', ')} |`,
      kvmRow,
      '',
      `Per step at the protocol level (${n(RAW)} packets each, one QEMU paused at start_kernel, this process driving it):`,
      '',
      '| packets | per second | us each |',
      '|---|---:|---:|',
      `| \`p10\` (read rip: a round trip, no guest code) | ${n(raw.p)} | ${n(1e6 / raw.p)} |`,
      `| \`vCont;s\` (one instruction; QEMU stops and restarts the VM) | ${n(raw.s)} | ${n(1e6 / raw.s)} |`,
      `| \`vCont;s\` + \`p10\` (one trace line) | ${n(raw.sp)} | ${n(1e6 / raw.sp)} |`,
      '',
      `QEMU's own CPU time per \`vCont;s\` + \`p10\`: ${n(raw.qemuCpuUsPerStep)} us. QEMU 7.2's stop reply (\`T05thread:p01.01;\`) carries`,
      'no registers and its stub takes no packet while the VM runs, so each line costs two round trips; see docs/qemu-engine.md.',
      '',
    ].join('\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, run);
