/**
 * `boot-trace capture`: boot a kernel and record its console and boot profile (and in step mode a trace
 * of every instruction) into an output folder. With no arguments it boots the default kernel (host's,
 * cached or Debian's cloud kernel) with the appliance initramfs on the engine that can run it here
 * (capture/setup.ts, capture/engine-choice.ts), through runCapture (capture/engines/run-capture.ts), then
 * prints the capture's summary on stderr; stdout gets only the output folder, so scripts can take it.
 * `boot-trace benchmark` takes the same options (captureOptions) and boots through captureFromArgs.
 */
import type { Argv, CommandModule } from 'yargs';
import type { RearmMode } from '../../capture/engines/kvm/debug/step-watchdog.js';
import type { TraceFromTrap } from '../../capture/engines/kvm/run-loop.js';
import { DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_S } from '../../capture/engines/defaults.js';
import type { CaptureRun } from '../../capture/engines/record.js';
import { ENGINE_NAMES, MODES } from '../../capture/engines/registry.js';
import { runCapture, type RunOptions } from '../../capture/engines/run-capture.js';
import { traceSummaryLines } from '../../capture/engines/qemu-trace/trace-qemu.js';
import { summaryLines, type CaptureMode } from '../../capture/output/profile.js';
import { prepareCapture } from '../../capture/setup.js';
import { UserError } from '../errors.js';
import { captureSummaryLines } from './capture-summary.js';
import { checkTraceArgs, TRACE_TIMEOUT_S, wholeBootByDefault, wholeBootOrPlain } from './capture-trace.js';
import { GRANULARITIES } from '../trace/recording/format.js';
import { numberOption } from './options.js';

export interface CaptureArgs {
  kernel?: string;
  guest?: string;
  engine: 'kvm' | 'qemu' | 'auto';
  decompress?: 'host' | 'guest';
  memory: number;
  cmdline?: string;
  append?: string;
  initrd?: string;
  workload?: string;
  'system-map'?: string;
  mode?: CaptureMode;
  granularity?: string;
  clock: 'host' | 'steps';
  'block-irq': boolean;
  timeout: number;
  'max-steps'?: number;
  'trace-from'?: string;
  'trace-until'?: string;
  'trace-from-trap': TraceFromTrap;
  'step-rearm': RearmMode;
  out?: string;
  force: boolean;
  echo: boolean;
}

/**
 * Checks between options that yargs cannot express; returns the mode to use. A trace window implies
 * step mode unless another mode was asked for (then it is an error unless that mode takes windows).
 */
export function checkCaptureArgs(a: Pick<CaptureArgs, 'mode' | 'trace-from' | 'trace-until' | 'max-steps' | 'block-irq' | 'engine' | 'clock' | 'granularity'>): CaptureMode {
  const windowed = a['trace-from'] !== undefined || a['trace-until'] !== undefined;
  const mode = a.mode ?? (windowed ? 'step' : 'run');
  if (mode === 'trace') checkTraceArgs(a);
  else if (a.granularity !== undefined) throw new UserError('--granularity needs --mode trace');
  if (mode === 'run') {
    if (windowed) throw new UserError('--trace-from/--trace-until need --mode step');
    if (a['max-steps'] !== undefined) throw new UserError('--max-steps needs --mode step');
    if (a['block-irq']) throw new UserError('--block-irq needs --mode step');
    if (a.clock === 'steps') throw new UserError('--clock steps needs --mode step (instructions is the same clock; --mode trace records both)');
  }
  if (a['max-steps'] !== undefined && !(Number.isInteger(a['max-steps']) && a['max-steps'] > 0)) {
    throw new UserError(`--max-steps ${a['max-steps']}: give a positive whole number`);
  }
  if (a.engine === 'qemu' && a['trace-until'] !== undefined && mode === 'step') throw new UserError('--trace-until works only with the KVM engine (--engine kvm)');
  return mode;
}

/** The options of one capture, shared by `capture` and `benchmark`. */
export function captureOptions<T>(y: Argv<T>): Argv<T & CaptureArgs> {
  // Numbers through one checker (options.ts numberOption): an error quotes what was typed, never NaN.
  const numbers = numberOption(numberOption(numberOption(y,
    'memory', { integer: true, min: 0, aboveMin: true, default: DEFAULT_MEMORY_MIB, unit: 'of MiB', describe: 'guest memory in MiB' }),
    'timeout', { integer: false, min: 0, aboveMin: true, default: DEFAULT_TIMEOUT_S, unit: 'of seconds', describe: 'stop after this many seconds' }),
    'max-steps', { integer: true, min: 0, aboveMin: true, describe: 'step mode: stop after this many instructions; trace mode: after this many guest instructions recorded' });
  return numbers
    .option('kernel', { type: 'string', describe: 'kernel to boot: bzImage or ELF vmlinux (default: /boot/vmlinuz-$(uname -r), the cache, or Debian\'s cloud kernel)' })
    .option('guest', { choices: ['demo'], describe: 'boot a built-in guest instead (built with cc on first use)' })
    .option('engine', { choices: [...ENGINE_NAMES, 'auto'] as const, default: 'auto' as const, describe: 'KVM (this VMM), QEMU, or auto: KVM if a probe shows it can run a stock kernel here, else QEMU' })
    .option('decompress', { choices: ['host', 'guest'] as const, describe: 'KVM: decompress the bzImage on the host and boot the ELF vmlinux (default), or let the kernel decompress itself in the guest' })
    .option('cmdline', { type: 'string', describe: 'kernel command line, replacing the engine\'s default (see docs/capture.md)' })
    .option('append', { type: 'string', describe: 'words added to the kernel command line (the engine\'s default, or --cmdline)' })
    .option('initrd', { type: 'string', describe: 'initramfs to load (default: the appliance)' })
    .option('workload', { type: 'string', describe: 'shell commands the appliance runs once booted (default: ls /proc; cat /proc/version)' })
    .option('system-map', { type: 'string', describe: 'symbols: System.map, nm output, kallsyms dump or unstripped ELF (default: the kernel\'s own kallsyms)' })
    .option('mode', { choices: MODES, describe: 'run freely (default; where only QEMU can boot the kernel, a bare capture records the whole boot), single-step and trace every instruction (default with --trace-from/--trace-until), or trace: record the whole boot under QEMU with the TCG plugin (docs/whole-boot.md)' })
    .option('granularity', { type: 'string', describe: `trace mode: ${GRANULARITIES.join(', ')}: one record per change of function (default), per executed block (+ translation map), or per instruction` })
    .option('clock', {
      choices: ['host', 'steps', 'instructions'] as const, default: 'host' as const,
      describe: 'step mode: trace timestamps in host microseconds since VM creation, or the instruction count (steps and instructions are one clock); trace mode records both clocks (analyzers pick one with --clock)',
      // One vocabulary: "instructions" (the analyzers' name) and "steps" are the same instruction count.
      coerce: (v: unknown) => (v === 'instructions' ? 'steps' : v),
    })
    .option('block-irq', { type: 'boolean', default: false, describe: 'step mode: inject no interrupts while stepping (KVM_GUESTDBG_BLOCKIRQ)' })
    .option('trace-from', { type: 'string', alias: 'from', describe: 'step mode: run freely to this SYMBOL or ADDRESS (hardware breakpoint), then step; trace mode: start recording there (default: kernel entry; `firmware`: QEMU\'s first instruction)' })
    .option('trace-until', { type: 'string', describe: 'step mode: stop at this SYMBOL, ADDRESS or marker:STAGE (KVM engine); trace mode: end the recording there' })
    .option('trace-from-trap', { choices: ['auto', 'hw', 'sw'] as const, default: 'auto' as const, describe: 'KVM: catch --trace-from with a hardware breakpoint (hw), a trap written into guest code (sw), or both, the breakpoint first (auto; docs/nested-kvm.md)' })
    .option('step-rearm', { choices: ['auto', 'always'] as const, default: 'auto' as const, describe: 'KVM step mode: set single-step again after instructions that lose it and on detected losses (auto), or after every step (always: exact, slower)' })
    .option('out', { type: 'string', describe: 'output folder, new or empty (default: captures/<timestamp>)' })
    .option('force', { type: 'boolean', default: false, describe: 'empty a non-empty --out folder of capture files first' })
    .option('echo', { type: 'boolean', default: false, describe: 'copy the guest serial console to stderr' }) as unknown as Argv<T & CaptureArgs>;
}

/**
 * One capture from parsed options: prepareCapture (what to boot, on which engine) then runCapture.
 * `log` gets setup's progress lines (default stderr); `signal` stops it (benchmark's Ctrl-C).
 */
export async function captureFromArgs(args: CaptureArgs, o: { log?: (line: string) => void; signal?: AbortSignal; progress?: boolean } = {}): Promise<CaptureRun> {
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
    ...(args.append !== undefined ? { append: args.append } : {}),
    mode,
    ...(o.log ? { log: o.log } : {}),
  });
  const options: RunOptions = {
    mode,
    memoryMiB: args.memory,
    timeoutS: mode === 'trace' && args.timeout === DEFAULT_TIMEOUT_S ? TRACE_TIMEOUT_S : args.timeout,
    ...(args.granularity !== undefined ? { granularity: args.granularity } : {}),
    // A whole-boot recording holds both clocks; its profile and summary are on the host clock.
    clock: mode === 'trace' ? 'host' : args.clock,
    blockIrq: args['block-irq'],
    ...(args['max-steps'] !== undefined ? { maxSteps: args['max-steps'] } : {}),
    ...(args['trace-from'] !== undefined ? { traceFrom: args['trace-from'] } : {}),
    ...(args['trace-until'] !== undefined ? { traceUntil: args['trace-until'] } : {}),
    ...(args['trace-from-trap'] !== undefined ? { traceFromTrap: args['trace-from-trap'] } : {}),
    ...(args['step-rearm'] !== undefined ? { stepRearm: args['step-rearm'] } : {}),
    ...(args.out !== undefined ? { out: args.out } : {}),
    force: args.force,
    echo: args.echo,
    ...(o.progress !== undefined ? { progress: o.progress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  // The default main job: where KVM cannot run the kernel, record the whole boot (docs/whole-boot.md).
  if (wholeBootByDefault(args, prepared)) return wholeBootOrPlain(prepared, options, o.log ?? ((l) => process.stderr.write(l + '\n')));
  return runCapture(prepared, options);
}

export const captureCommand: CommandModule<object, CaptureArgs & { summary: boolean }> = {
  command: 'capture',
  describe: 'boot a kernel (default: this machine\'s or Debian\'s, with the appliance) and record its console, boot profile and trace',
  builder: (y) =>
    captureOptions(y)
      .option('summary', { type: 'boolean', default: true, describe: 'print the capture\'s summary (markers, stages, hot functions) at the end; --no-summary for the boot profile only' }) as never,
  handler: async (args) => {
    const r = await captureFromArgs(args);
    for (const line of summaryLines(r.profile)) process.stderr.write(line + '\n');
    if (r.profile.trace) for (const line of traceSummaryLines(r.profile.trace)) process.stderr.write(line + '\n');
    if (args.summary) {
      process.stderr.write('\n');
      for (const line of await captureSummaryLines(r.outDir)) process.stderr.write(line + '\n');
    }
    process.stdout.write(r.outDir + '\n');
    // The guest failed (kernel panic, emulation failure, failed entry) or was interrupted: the files are
    // written, but the status says so.
    if (r.status !== 0) process.exitCode = r.status;
  },
};
