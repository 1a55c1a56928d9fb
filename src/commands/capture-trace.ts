/**
 * `boot-trace capture --mode trace` and the default main job: what the capture command adds for the
 * whole-boot engine (capture/engines/qemu-trace/): its option checks, and the choice to record the
 * whole boot when a bare `capture` lands on QEMU, with a plain boot when no trace can be had here.
 */
import { DEFAULT_TIMEOUT_S } from '../../capture/engines/defaults.js';
import { TraceUnavailable } from '../../capture/engines/qemu-trace/trace-qemu.js';
import type { CaptureRun } from '../../capture/engines/record.js';
import { runCapture, type RunOptions } from '../../capture/engines/run-capture.js';
import { defaultOutDir } from '../../capture/output/folder.js';
import type { PreparedCapture } from '../../capture/setup.js';
import { UserError } from '../errors.js';
import { GRANULARITIES } from '../trace/recording/format.js';

/** A traced boot runs 2-4x slower than a plain one (docs/performance.md): its default timeout is longer. */
export const TRACE_TIMEOUT_S = 300;

/** The options of trace mode, checked before anything boots. */
export interface TraceArgsSubset {
  engine: string;
  'block-irq': boolean;
  clock: string;
  granularity?: string;
}

export function checkTraceArgs(a: TraceArgsSubset): void {
  if (a.engine === 'kvm') throw new UserError('--mode trace records under QEMU (TCG plugin): use --engine qemu or auto');
  if (a['block-irq']) throw new UserError('--block-irq applies to step mode');
  if (a.granularity !== undefined && !(GRANULARITIES as readonly string[]).includes(a.granularity)) {
    throw new UserError(`--granularity ${a.granularity}: unknown; give ${GRANULARITIES.join(', ')}`);
  }
}

/**
 * Whether a capture with no --mode records the whole boot (the default main job): the engine choice fell
 * to QEMU (KVM cannot run this kernel here), a bzImage QEMU boots as it is, nothing that asks for
 * another mode.
 */
export function wholeBootByDefault(
  args: { mode?: string; engine: string; guest?: string; 'trace-from'?: string; 'trace-until'?: string; 'max-steps'?: number; clock: string; 'block-irq': boolean; decompress?: string },
  prepared: PreparedCapture,
): boolean {
  return args.mode === undefined && args.engine === 'auto' && prepared.engine === 'qemu' && args.guest === undefined
    && args['trace-from'] === undefined && args['trace-until'] === undefined && args['max-steps'] === undefined
    && args.clock === 'host' && !args['block-irq'] && args.decompress === undefined
    && prepared.setup.decompress.mode === 'guest';
}

/**
 * The default main job: record the whole boot; when that cannot be done here (no cc, QEMU without
 * plugins, a kernel without kallsyms) say why in one line and boot plainly into the same folder.
 */
export async function wholeBootOrPlain(prepared: PreparedCapture, o: RunOptions, log: (line: string) => void): Promise<CaptureRun> {
  const out = o.out ?? defaultOutDir();
  log('boot-trace: recording the whole boot (QEMU TCG plugin, function granularity; --mode run for a plain boot)');
  try {
    return await runCapture(prepared, { ...o, out, mode: 'trace', timeoutS: o.timeoutS === DEFAULT_TIMEOUT_S ? TRACE_TIMEOUT_S : o.timeoutS });
  } catch (err) {
    if (!(err instanceof TraceUnavailable)) throw err;
    log(`boot-trace: a plain QEMU boot instead of a whole-boot trace: ${err.message}`);
    return runCapture(prepared, { ...o, out, mode: 'run', force: true });
  }
}
