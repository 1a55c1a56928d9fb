/**
 * `boot-trace capture --mode trace`: a whole boot recorded under QEMU with the tracing plugin
 * (capture/engines/qemu-trace/). The option checks and the handler of that mode; capture.ts hands over.
 */
import { DEFAULT_TIMEOUT_S, defaultOutDir } from '../../capture/capture.js';
import { TraceUnavailable, traceSummaryLines, traceWithQemu } from '../../capture/engines/qemu-trace/trace-qemu.js';
import { pluginPath } from '../../capture/engines/qemu-trace/plugin-build.js';
import { annotateProfile, prepareCapture, type PreparedCapture } from '../../capture/setup.js';
import { UserError } from '../errors.js';
import { GRANULARITIES } from '../trace/recording/format.js';
import { captureSummaryLines } from './capture-summary.js';
import type { CaptureArgs } from './capture.js';

/** A traced boot runs 2-3x slower than a plain one (docs/performance.md): its default timeout is longer. */
export const TRACE_TIMEOUT_S = 300;

export function checkTraceArgs(a: Pick<CaptureArgs, 'engine' | 'block-irq' | 'clock' | 'max-steps' | 'granularity'>): 'trace' {
  if (a.granularity !== undefined && !(GRANULARITIES as readonly string[]).includes(a.granularity)) {
    throw new UserError(`--granularity ${a.granularity}: unknown; give ${GRANULARITIES.join(', ')}`);
  }
  if (a.engine === 'kvm') throw new UserError('--mode trace records under QEMU (TCG plugin): use --engine qemu or auto');
  if (a['block-irq']) throw new UserError('--block-irq applies to step mode');
  if (a.clock === 'steps') throw new UserError('--clock steps applies to step mode; a trace-mode recording has both clocks (analyzers: --clock host|instructions)');
  if (a['max-steps'] !== undefined && !(Number.isInteger(a['max-steps']) && a['max-steps'] > 0)) {
    throw new UserError(`--max-steps ${a['max-steps']}: give a positive whole number`);
  }
  return 'trace';
}

/**
 * Whether a capture with no --mode records the whole boot: the default engine choice fell to QEMU (KVM
 * cannot run this kernel here), a Linux kernel, and nothing that asks for another mode.
 */
export function wholeBootByDefault(args: CaptureArgs, prepared: PreparedCapture): boolean {
  return args.mode === undefined && args.engine === 'auto' && prepared.engine === 'qemu' && args.guest === undefined
    && args['trace-from'] === undefined && args['trace-until'] === undefined && args['max-steps'] === undefined
    && args.clock === 'host' && !args['block-irq'] && args.decompress === undefined
    && prepared.setup.decompress.mode === 'guest'; // a bzImage that QEMU boots as it is
}

/**
 * Runs a trace-mode capture. `prepared` given: the default main job (wholeBootByDefault), which falls back
 * to a plain QEMU boot, with a line saying why, when the plugin cannot be built or loaded here
 * (returns false, nothing written to stdout); otherwise such a failure is the command's error.
 */
export async function traceCommand(args: CaptureArgs, prepared?: PreparedCapture): Promise<boolean> {
  if (args.guest !== undefined) throw new UserError('--mode trace records a Linux kernel, not --guest demo');
  const byDefault = prepared !== undefined;
  if (byDefault) {
    args.out ??= defaultOutDir(); // the same folder if this falls back to a plain boot
    try {
      pluginPath();
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      process.stderr.write(`boot-trace: a plain QEMU boot instead of a whole-boot trace: ${err.message}\n`);
      return false;
    }
  }
  prepared ??= await prepareCapture({
    ...(args.kernel !== undefined ? { kernel: args.kernel } : {}),
    engine: 'qemu',
    ...(args.initrd !== undefined ? { initrd: args.initrd } : {}),
    ...(args.workload !== undefined ? { workload: args.workload } : {}),
    ...(args['system-map'] !== undefined ? { systemMap: args['system-map'] } : {}),
    ...(args.cmdline !== undefined ? { cmdline: args.cmdline } : {}),
    mode: 'run',
  });
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.on('SIGINT', onSigint);
  let r;
  try {
    if (byDefault) process.stderr.write('boot-trace: recording the whole boot (QEMU TCG plugin, function granularity; --mode run for a plain boot)\n');
    r = await traceWithQemu({
      kernel: prepared.bootKernel,
      ...(prepared.initrd !== undefined ? { initrd: prepared.initrd } : {}),
      cmdline: prepared.cmdline,
      memoryMiB: args.memory,
      outDir: args.out ?? defaultOutDir(),
      timeoutS: args.timeout === DEFAULT_TIMEOUT_S ? TRACE_TIMEOUT_S : args.timeout,
      echo: args.echo,
      signal: abort.signal,
      granularity: args.granularity ?? 'function',
      ...(args['system-map'] !== undefined ? { systemMap: args['system-map'] } : {}),
      ...(args['trace-from'] !== undefined ? { from: args['trace-from'] } : {}),
      ...(args['trace-until'] !== undefined ? { until: args['trace-until'] } : {}),
      ...(args['max-steps'] !== undefined ? { maxSteps: args['max-steps'] } : {}),
    });
  } catch (err) {
    if (byDefault && err instanceof TraceUnavailable) {
      process.stderr.write(`boot-trace: a plain QEMU boot instead of a whole-boot trace: ${err.message}\n`);
      return false;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
  annotateProfile(r.profileFile, { setup: prepared.setup });
  for (const line of traceSummaryLines(r.profile)) process.stderr.write(line + '\n');
  if (args.summary) {
    process.stderr.write('\n');
    for (const line of await captureSummaryLines(r.outDir)) process.stderr.write(line + '\n');
  }
  process.stdout.write(r.outDir + '\n');
  if (r.profile.exit.reason === 'interrupted') process.exitCode = 130;
  else if (r.failed) process.exitCode = 2;
  return true;
}
