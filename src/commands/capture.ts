/**
 * `boot-trace capture`: boot a kernel and record its console and boot profile (and in step mode a trace
 * of every instruction) into an output folder. With no arguments it boots the default kernel (host's,
 * cached or Debian's cloud kernel) with the appliance initramfs on the engine that can run it here
 * (capture/setup.ts, capture/engine-choice.ts), then prints the capture's summary on stderr; stdout gets
 * only the output folder, so scripts can take it.
 */
import type { CommandModule } from 'yargs';
import { capture, defaultOutDir, DEFAULT_TIMEOUT_S } from '../../capture/capture.js';
import { captureWithQemu } from '../../capture/engines/qemu.js';
import { summaryLines } from '../../capture/profile.js';
import { annotateProfile, prepareCapture, type PreparedCapture } from '../../capture/setup.js';
import { DEFAULT_MEMORY_MIB } from '../../capture/layout.js';
import { UserError } from '../errors.js';
import { captureSummaryLines } from './capture-summary.js';

export interface CaptureArgs {
  kernel?: string;
  guest?: string;
  engine: 'kvm' | 'qemu' | 'auto';
  decompress?: 'host' | 'guest';
  memory: number;
  cmdline?: string;
  initrd?: string;
  workload?: string;
  'system-map'?: string;
  mode?: 'run' | 'step';
  clock: 'host' | 'steps';
  'block-irq': boolean;
  timeout: number;
  'max-steps'?: number;
  'trace-from'?: string;
  'trace-until'?: string;
  'trace-from-trap': 'auto' | 'hw' | 'sw';
  'step-rearm': 'auto' | 'always';
  out?: string;
  echo: boolean;
  summary: boolean;
}

/**
 * Checks between options that yargs cannot express; returns the mode to use. A trace window implies
 * step mode unless --mode run was asked for (then it is an error).
 */
export function checkCaptureArgs(a: Pick<CaptureArgs, 'mode' | 'trace-from' | 'trace-until' | 'max-steps' | 'block-irq' | 'engine' | 'clock'>): 'run' | 'step' {
  const windowed = a['trace-from'] !== undefined || a['trace-until'] !== undefined;
  const mode = a.mode ?? (windowed ? 'step' : 'run');
  if (mode === 'run') {
    if (windowed) throw new UserError('--trace-from/--trace-until need --mode step');
    if (a['max-steps'] !== undefined) throw new UserError('--max-steps needs --mode step');
    if (a['block-irq']) throw new UserError('--block-irq needs --mode step');
    if (a.clock === 'steps') throw new UserError('--clock steps needs --mode step');
  }
  if (a['max-steps'] !== undefined && !(Number.isInteger(a['max-steps']) && a['max-steps'] > 0)) {
    throw new UserError(`--max-steps ${a['max-steps']}: give a positive whole number`);
  }
  if (a.engine === 'qemu' && a['trace-until'] !== undefined) throw new UserError('--trace-until works only with the KVM engine (--engine kvm)');
  return mode;
}

export const captureCommand: CommandModule<object, CaptureArgs> = {
  command: 'capture',
  describe: 'boot a kernel (default: this machine\'s or Debian\'s, with the appliance) and record its console, boot profile and trace',
  builder: (y) =>
    y
      .option('kernel', { type: 'string', describe: 'kernel to boot: bzImage or ELF vmlinux (default: /boot/vmlinuz-$(uname -r), the cache, or Debian\'s cloud kernel)' })
      .option('guest', { choices: ['demo'], describe: 'boot a built-in guest instead (built with cc on first use)' })
      .option('engine', { choices: ['kvm', 'qemu', 'auto'] as const, default: 'auto' as const, describe: 'KVM (this VMM), QEMU, or auto: KVM if a probe shows it can run a stock kernel here, else QEMU' })
      .option('decompress', { choices: ['host', 'guest'] as const, describe: 'KVM: decompress the bzImage on the host and boot the ELF vmlinux (default), or let the kernel decompress itself in the guest' })
      .option('memory', { type: 'number', default: DEFAULT_MEMORY_MIB, describe: 'guest memory in MiB' })
      .option('cmdline', { type: 'string', describe: 'kernel command line (default: one fit for the engine; see docs/capture.md)' })
      .option('initrd', { type: 'string', describe: 'initramfs to load (default: the appliance)' })
      .option('workload', { type: 'string', describe: 'shell commands the appliance runs once booted (default: ls /proc; cat /proc/version)' })
      .option('system-map', { type: 'string', describe: 'symbols: System.map, nm output, kallsyms dump or unstripped ELF (default: the kernel\'s own kallsyms)' })
      .option('mode', { choices: ['run', 'step'] as const, describe: 'run freely (default), or single-step and trace every instruction (default with --trace-from/--trace-until)' })
      .option('clock', { choices: ['host', 'steps'] as const, default: 'host' as const, describe: 'trace timestamps: host microseconds since VM creation, or the instruction index' })
      .option('block-irq', { type: 'boolean', default: false, describe: 'step mode: inject no interrupts while stepping (KVM_GUESTDBG_BLOCKIRQ)' })
      .option('timeout', { type: 'number', default: DEFAULT_TIMEOUT_S, describe: 'stop after this many seconds' })
      .option('max-steps', { type: 'number', describe: 'step mode: stop after this many instructions' })
      .option('trace-from', { type: 'string', describe: 'step mode: run freely to this SYMBOL or ADDRESS (hardware breakpoint), then step' })
      .option('trace-until', { type: 'string', describe: 'step mode: stop at this SYMBOL, ADDRESS or marker:STAGE (KVM engine)' })
      .option('trace-from-trap', { choices: ['auto', 'hw', 'sw'] as const, default: 'auto' as const, describe: 'KVM: catch --trace-from with a hardware breakpoint (hw), a trap written into guest code (sw), or both, the breakpoint first (auto)' })
      .option('step-rearm', { choices: ['auto', 'always'] as const, default: 'auto' as const, describe: 'KVM step mode: set single-step again after instructions that lose it and on detected losses (auto), or after every step (always: exact, slower)' })
      .option('out', { type: 'string', describe: 'output folder (default: captures/<timestamp>)' })
      .option('echo', { type: 'boolean', default: false, describe: 'copy the guest serial console to stderr' })
      .option('summary', { type: 'boolean', default: true, describe: 'print the capture\'s summary (markers, stages, hot functions) at the end; --no-summary for the boot profile only' }) as never,
  handler: async (args) => {
    const mode = checkCaptureArgs(args);
    const prepared = await prepareCapture({
      ...(args.kernel !== undefined ? { kernel: args.kernel } : {}),
      ...(args.guest === 'demo' ? { guest: 'demo' as const } : {}),
      engine: args.engine,
      ...(args.decompress !== undefined ? { decompress: args.decompress } : {}),
      ...(args.initrd !== undefined ? { initrd: args.initrd } : {}),
      ...(args.workload !== undefined ? { workload: args.workload } : {}),
      ...(args['system-map'] !== undefined ? { systemMap: args['system-map'] } : {}),
      ...(args.cmdline !== undefined ? { cmdline: args.cmdline } : {}),
      mode,
    });
    const r = prepared.engine === 'kvm' ? await runKvm(args, mode, prepared) : await runQemu(args, mode, prepared);
    for (const line of r.lines) process.stderr.write(line + '\n');
    if (args.summary) {
      process.stderr.write('\n');
      for (const line of await captureSummaryLines(r.outDir)) process.stderr.write(line + '\n');
    }
    process.stdout.write(r.outDir + '\n');
    // The guest failed (emulation failure, failed entry): the files are written, but say so in the status.
    if (r.reason === 'interrupted') process.exitCode = 130;
    else if (r.failed) process.exitCode = 2;
  },
};

interface EngineRun {
  outDir: string;
  lines: string[];
  reason: string;
  failed: boolean;
}

async function runKvm(args: CaptureArgs, mode: 'run' | 'step', p: PreparedCapture): Promise<EngineRun> {
  const r = await capture({
    kernel: p.bootKernel,
    memoryMiB: args.memory,
    cmdline: p.cmdline,
    ...(p.initrd !== undefined ? { initrd: p.initrd } : {}),
    ...(p.systemMap !== undefined ? { systemMap: p.systemMap } : {}),
    mode,
    clock: args.clock,
    blockIrq: args['block-irq'],
    timeout: args.timeout,
    ...(args['max-steps'] !== undefined ? { maxSteps: args['max-steps'] } : {}),
    ...(args['trace-from'] !== undefined ? { traceFrom: args['trace-from'] } : {}),
    ...(args['trace-until'] !== undefined ? { traceUntil: args['trace-until'] } : {}),
    traceFromTrap: args['trace-from-trap'],
    stepRearm: args['step-rearm'],
    ...(args.out !== undefined ? { out: args.out } : {}),
    echo: args.echo,
    profileExtra: { setup: p.setup },
  });
  return { outDir: r.outDir, lines: summaryLines(r.profile), reason: r.profile.exit.reason, failed: r.failed };
}

async function runQemu(args: CaptureArgs, mode: 'run' | 'step', p: PreparedCapture): Promise<EngineRun> {
  const outDir = args.out ?? defaultOutDir();
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.on('SIGINT', onSigint);
  // What both QEMU modes take.
  const common = {
    kernel: p.bootKernel,
    ...(p.initrd !== undefined ? { initrd: p.initrd } : {}),
    cmdline: p.cmdline,
    memoryMiB: args.memory,
    outDir,
    timeoutS: args.timeout,
    echo: args.echo,
    signal: abort.signal,
  };
  try {
    if (mode === 'step') return await runQemuStep(args, p, common);
    if (args['block-irq']) throw new UserError('--block-irq applies to step mode');
    const r = await captureWithQemu(common);
    annotateProfile(r.profileFile, { setup: p.setup });
    return { outDir: r.outDir, lines: phaseLines(r.profile.phases, r.profile.exit), reason: r.profile.exit.reason, failed: r.failed };
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** QEMU step mode through the gdbstub engine (capture/engines/qemu-step.ts). */
async function runQemuStep(
  args: CaptureArgs,
  p: PreparedCapture,
  common: { kernel: string; initrd?: string; cmdline: string; memoryMiB: number; outDir: string; timeoutS: number; echo: boolean; signal: AbortSignal },
): Promise<EngineRun> {
  const mod = await import('../../capture/engines/qemu-step.js');
  const { loadSymbolFile } = await import('../symbols/load.js');
  const r = await mod.stepWithQemu({
    ...common,
    ...(args['trace-from'] !== undefined ? { traceFrom: args['trace-from'] } : {}),
    maxSteps: args['max-steps'] ?? Infinity,
    // No --system-map: leave symbols out, so the engine names lines from the kernel's own tables.
    ...(p.systemMap !== undefined ? { symbols: loadSymbolFile(p.systemMap) } : {}),
    clock: args.clock,
  });
  annotateProfile(r.profileFile, { setup: p.setup });
  return { outDir: r.outDir, lines: mod.qemuStepSummary(r.profile), reason: r.profile.exit.reason, failed: r.failed };
}

/** `[boot-profile]` lines for an engine whose phases differ from the KVM engine's (QEMU). */
export function phaseLines(phases: Record<string, number>, exit: { reason: string; detail: string }): string[] {
  const total = phases.total ?? 0;
  const lines = Object.entries(phases).map(([name, us]) => `[boot-profile] ${name}: ${(us / 1000).toFixed(us < 100_000 ? 2 : 0)}ms (${(total > 0 ? (100 * us) / total : 0).toFixed(1)}%)`);
  lines.push(`[boot-profile] exit: ${exit.reason}: ${exit.detail}`);
  return lines;
}
