/**
 * `runCapture(prepared, options)`: the one way a capture runs, for `boot-trace capture` and `boot-trace
 * benchmark` alike. `prepared` (capture/setup.ts prepareCapture) says what to boot on which engine; the
 * options say how (mode, limits, output folder). The engine comes from the registry by name and mode, runs
 * through recordCapture (record.ts), which writes profile.json; Ctrl-C stops it with its files written.
 *
 *   const prepared = await prepareCapture({ engine: 'auto' });
 *   const run = await runCapture(prepared, { out: 'captures/x' });
 *   run.profile.exit.reason   // 'shutdown'
 */
import type { PreparedCapture } from '../setup.js';
import { DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_S } from './defaults.js';
import { defaultOutDir } from '../output/folder.js';
import type { CaptureMode, Clock } from '../output/profile.js';
import { recordCapture, type CaptureRun } from './record.js';
import { engineFor } from './registry.js';

/** Signals that stop a capture cleanly (record.ts turns them into exit status 128 + number). */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface RunOptions {
  mode?: CaptureMode;
  /** Default DEFAULT_MEMORY_MIB (256). */
  memoryMiB?: number;
  /** Seconds; default DEFAULT_TIMEOUT_S (60). */
  timeoutS?: number;
  clock?: Clock;
  maxSteps?: number;
  traceFrom?: string;
  traceUntil?: string;
  /** KVM: how --trace-from is caught (capture/engines/kvm/run-loop.ts); default 'auto'. */
  traceFromTrap?: 'auto' | 'hw' | 'sw';
  /** KVM step mode: when single-step is set again (capture/engines/kvm/debug/step-watchdog.ts); default 'auto'. */
  stepRearm?: 'auto' | 'always';
  blockIrq?: boolean;
  /** Trace mode: function, block or instruction. */
  granularity?: string;
  /** Output folder; default captures/<timestamp>. Must be new or empty unless `force`. */
  out?: string;
  force?: boolean;
  echo?: boolean;
  /** Progress on stderr; default: when stderr is a TTY. */
  progress?: boolean;
  /** The caller's stop (benchmark's Ctrl-C; abort with a signal name as reason to have it recorded); runCapture also stops on SIGINT, SIGTERM and SIGHUP while it runs. */
  signal?: AbortSignal;
}

export async function runCapture(prepared: PreparedCapture, o: RunOptions = {}): Promise<CaptureRun> {
  const mode = o.mode ?? 'run';
  const engine = engineFor(prepared.engine, mode);
  // SIGINT, SIGTERM and SIGHUP all end a capture the same way: the engine stops, its files are written,
  // profile.json says 'interrupted' and which signal (exit.signal), and the status is 128 + the signal's number.
  const stop = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => stop.abort(name);
  const onCallerAbort = (): void => stop.abort(o.signal?.reason);
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  o.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (o.signal?.aborted) stop.abort(o.signal.reason);
  try {
    return await recordCapture(
      engine,
      {
        kernel: prepared.bootKernel,
        ...(prepared.initrd !== undefined ? { initrd: prepared.initrd } : {}),
        ...(prepared.systemMap !== undefined ? { systemMap: prepared.systemMap } : {}),
        cmdline: prepared.cmdline,
        memoryMiB: o.memoryMiB ?? DEFAULT_MEMORY_MIB,
        mode,
        clock: o.clock ?? 'host',
        timeoutS: o.timeoutS ?? DEFAULT_TIMEOUT_S,
        outDir: o.out ?? defaultOutDir(),
        ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
        ...(o.traceFrom !== undefined ? { traceFrom: o.traceFrom } : {}),
        ...(o.traceUntil !== undefined ? { traceUntil: o.traceUntil } : {}),
        ...(o.traceFromTrap !== undefined ? { traceFromTrap: o.traceFromTrap } : {}),
        ...(o.stepRearm !== undefined ? { stepRearm: o.stepRearm } : {}),
        blockIrq: o.blockIrq ?? false,
        ...(o.granularity !== undefined ? { granularity: o.granularity } : {}),
        echo: o.echo ?? false,
        progress: o.progress ?? Boolean(process.stderr.isTTY),
        signal: stop.signal,
      },
      { force: o.force ?? false, setup: prepared.setup },
    );
  } finally {
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
    o.signal?.removeEventListener('abort', onCallerAbort);
  }
}
