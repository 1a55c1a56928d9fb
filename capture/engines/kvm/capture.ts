/**
 * The KVM engine: boots a kernel on /dev/kvm with this VMM and records it (run and step mode). The VM and
 * its vCPU loop live in a worker thread (vcpu-worker.ts); this side keeps the clock and the stop requests
 * (timeout, the request's abort signal), and in step mode writes trace.log from the events the worker
 * records (trace-channel.ts). To stop the guest it stores a code in the shared control array,
 * sets kvm_run.immediate_exit (closing the race with a KVM_RUN that is about to start) and sends SIGUSR2
 * to the vCPU thread (interrupting one already running), so a capture ends even when the guest spins
 * without a single exit.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { messageOf, UserError } from '../../../src/errors.js';
import { Progress } from '../../../src/progress.js';
import { symbolsFromElf } from '../../../src/symbols/elf-symbols.js';
import { loadSymbolFile } from '../../../src/symbols/load.js';
import type { SymbolTable } from '../../../src/symbols/symbol-table.js';
import { looksLikeElf, parseElf64 } from '../../boot/elf.js';
import { demoGuestPath } from '../../guest/build.js';
import { munmap, tgkill } from '../../kvm/libc.js';
import { RUN } from '../../kvm/structs.js';
import { DEFAULT_CMDLINE, DEFAULT_MEMORY_MIB } from '../../layout.js';
import { defaultOutDir } from '../../output/folder.js';
import type { StepPart } from '../../output/profile.js';
import { toProfilePart } from './debug/step-watchdog.js';
import { needsSymbols, parseTraceSpec } from '../../trace-window.js';
import { markersToUs, type CaptureEngine, type EngineOutcome, type EngineRequest } from '../engine.js';
import { DEFAULT_TIMEOUT_S } from '../defaults.js';
import { recordCapture, type CaptureRun } from '../record.js';
import { HALT_PROBE_MS } from './debug/halt.js';
import { CTRL_PROBE, CTRL_SLOTS, CTRL_STEPS, CTRL_STOP, STOP_INTERRUPT, STOP_OUTPUT, STOP_TIMEOUT } from './run-loop.js';
import { createTraceChannel, TraceReceiver } from './trace-channel.js';
import { TRACE_FILE, type WorkerMessage, type WorkerRequest, type WorkerResult } from './worker-protocol.js';

/**
 * Phases in the order they are listed; `total` covers them all, from reading the kernel file to the
 * guest's stop. Besides the Rust VMM's phases: `devices` (UART, i8042, CMOS, output files) and, in step
 * mode only, `symbols` (loading the symbol table; in run mode it is loaded after the stop, untimed).
 */
export const PHASES = ['kernel_load', 'rootfs_load', 'kvm_open', 'vm_create', 'memory', 'boot_params', 'vcpu_setup', 'symbols', 'devices', 'boot_wait', 'total'] as const;

/** Signal used to kick the vCPU thread out of KVM_RUN (a handler is installed while capturing). */
const KICK_SIGNAL = 12; // SIGUSR2
/** How often a stop request is repeated while the worker has not answered, and when to give up. */
const KICK_EVERY_MS = 100;
const GIVE_UP_MS = 10_000;
/** How often the main thread writes the trace batches the vCPU worker has recorded (trace-channel.ts). */
const TRACE_DRAIN_MS = 10;

/** The KVM engine (this VMM on /dev/kvm): run and step mode. */
export const kvmEngine: CaptureEngine = {
  name: 'kvm',
  modes: ['run', 'step'],
  defaultCmdline: DEFAULT_CMDLINE,
  run: runKvm,
};

/** Options of `capture()`, the KVM engine called directly (benchmarks): the request with its defaults. */
export interface CaptureOptions extends Partial<Omit<EngineRequest, 'kernel' | 'signal'>> {
  /** A kernel file (bzImage or ELF), or undefined with guest: 'demo'. */
  kernel?: string;
  guest?: 'demo';
  signal?: AbortSignal;
  /** Empty a non-empty output folder first. */
  force?: boolean;
}

/** Boot under the KVM engine with the defaults of `boot-trace capture --engine kvm`, writing the capture folder. */
export async function capture(o: CaptureOptions): Promise<CaptureRun> {
  if (o.kernel && o.guest) throw new UserError('give either --kernel or --guest, not both');
  const kernel = o.kernel ? resolve(o.kernel) : o.guest === 'demo' ? demoGuestPath() : undefined;
  if (!kernel) throw new UserError('nothing to boot: give --kernel FILE or --guest demo');
  const { guest: _g, force, ...rest } = o;
  return recordCapture(kvmEngine, {
    cmdline: DEFAULT_CMDLINE,
    memoryMiB: DEFAULT_MEMORY_MIB,
    mode: 'run',
    clock: 'host',
    timeoutS: DEFAULT_TIMEOUT_S,
    outDir: defaultOutDir(),
    blockIrq: false,
    echo: false,
    progress: Boolean(process.stderr.isTTY),
    ...rest,
    kernel,
    signal: o.signal ?? new AbortController().signal,
  }, { force: force ?? false });
}

async function runKvm(o: EngineRequest): Promise<EngineOutcome> {
  const mode = o.mode;
  if (mode !== 'run' && mode !== 'step') throw new UserError(`--mode ${mode}: the KVM engine runs or steps`);
  const clock = o.clock;
  const timeout = o.timeoutS;
  if (!(timeout > 0)) throw new UserError(`--timeout ${timeout}: give a positive number of seconds`);
  const maxSteps = o.maxSteps ?? Infinity;
  if (!(maxSteps > 0)) throw new UserError(`--max-steps ${maxSteps}: give a positive number`);
  if (mode === 'run' && o.maxSteps !== undefined) throw new UserError('--max-steps needs --mode step');
  if (mode === 'run' && (o.traceFrom !== undefined || o.traceUntil !== undefined)) throw new UserError('--trace-from/--trace-until need --mode step');
  const kernelPath = resolve(o.kernel);
  if (o.systemMap !== undefined) {
    try {
      accessSync(o.systemMap, constants.R_OK);
    } catch (err) {
      throw new UserError(`${o.systemMap}: cannot read symbol file (${messageOf(err)})`);
    }
  }
  // Resolve the trace window before anything boots, so a misspelt symbol is a one-line error at once.
  let traceFrom: bigint | undefined;
  let traceUntil: bigint | undefined;
  let untilMarker: string | undefined;
  if (o.traceFrom !== undefined || o.traceUntil !== undefined) {
    const symbols = needsSymbols(o.traceFrom) || needsSymbols(o.traceUntil) ? lookupTable(kernelPath, o.systemMap) : null;
    if (o.traceFrom !== undefined) {
      const f = parseTraceSpec('--trace-from', o.traceFrom, symbols);
      if (f.kind === 'address') traceFrom = f.address;
    }
    if (o.traceUntil !== undefined) {
      const u = parseTraceSpec('--trace-until', o.traceUntil, symbols);
      if (u.kind === 'address') traceUntil = u.address;
      else untilMarker = u.stage;
    }
  }
  const outDir = o.outDir;
  try {
    accessSync(outDir, constants.W_OK);
  } catch (err) {
    throw new UserError(`${outDir}: cannot write the capture's output folder (${messageOf(err)})`);
  }

  const control = new SharedArrayBuffer(4 * CTRL_SLOTS);
  const ctrl = new Int32Array(control);
  const req: WorkerRequest = {
    kernelPath,
    memoryMiB: o.memoryMiB,
    cmdline: o.cmdline,
    ...(o.initrd !== undefined ? { initrdPath: resolve(o.initrd) } : {}),
    ...(o.systemMap !== undefined ? { systemMap: resolve(o.systemMap) } : {}),
    mode,
    clock,
    blockIrq: o.blockIrq,
    maxSteps,
    outDir,
    echo: o.echo,
    control,
    ...(mode === 'step' ? { trace: createTraceChannel() } : {}),
    ...(traceFrom !== undefined ? { traceFrom } : {}),
    ...(traceUntil !== undefined ? { traceUntil } : {}),
    ...(untilMarker !== undefined ? { untilMarker } : {}),
    ...(o.traceFromTrap !== undefined ? { traceFromTrap: o.traceFromTrap } : {}),
    ...(o.stepRearm !== undefined ? { rearm: o.stepRearm } : {}),
  };

  const result = await runWorker(req, ctrl, timeout, o.progress, o.signal);
  const phases: Record<string, number> = {};
  for (const name of [...PHASES, ...Object.keys(result.phases)]) {
    if (result.phases[name] !== undefined && phases[name] === undefined) phases[name] = Math.round(result.phases[name]!);
  }
  const bootWait = result.phases.boot_wait ?? 0;
  const step: StepPart | null = mode === 'step'
    ? {
        steps: result.steps,
        steps_per_second: bootWait > 0 ? Math.round(result.steps / (bootWait / 1e6)) : 0,
        trace_lines: result.traceLines,
        symbols_us: Math.round(result.symbolsUs),
        trace_from: o.traceFrom !== undefined
          ? {
              spec: o.traceFrom,
              address: traceFrom !== undefined ? '0x' + traceFrom.toString(16) : o.traceFrom,
              reached_us: result.windowStartUs !== undefined ? Math.round(result.windowStartUs) : null,
              by: result.traceFromBy ?? null,
              trap: o.traceFromTrap ?? 'auto',
              note: result.traceFromNote ?? null,
            }
          : null,
        trace_until: o.traceUntil ?? null,
      }
    : null;
  return {
    cmdline: result.cmdline,
    phases_us: phases,
    guest_markers_us: markersToUs(result.guest),
    exit: { reason: result.reason, rip: result.rip, symbol: result.symbol, detail: result.detail },
    console_lines: result.consoleLines,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    peak_rss_source: 'self',
    step,
    part: {
      kvm: {
        exits: result.exits,
        block_irq: o.blockIrq,
        stop_us: Math.round(result.stopUs),
        step_watchdog: result.watchdog ? toProfilePart(result.watchdog) : null,
      },
    },
  };
}

/** The symbols --trace-from/--trace-until are looked up in: --system-map, else the kernel ELF's .symtab. */
function lookupTable(kernelPath: string, systemMap: string | undefined): SymbolTable | null {
  if (systemMap !== undefined) return loadSymbolFile(systemMap);
  let buf: Buffer;
  try {
    buf = readFileSync(kernelPath);
  } catch (err) {
    throw new UserError(`${kernelPath}: cannot read kernel (${messageOf(err)})`);
  }
  return looksLikeElf(buf) ? symbolsFromElf(parseElf64(buf, kernelPath)) : null;
}

function runWorker(req: WorkerRequest, ctrl: Int32Array, timeoutS: number, showProgress: boolean, signal: AbortSignal): Promise<WorkerResult> {
  return new Promise<WorkerResult>((resolvePromise, reject) => {
    // Step mode: this thread writes trace.log from the worker's batches; a write error stops the vCPU and
    // is what the capture fails with.
    const trace = req.trace ? new TraceReceiver(join(req.outDir, TRACE_FILE), req.trace, () => requestStop(STOP_OUTPUT)) : undefined;
    const worker = new Worker(new URL('./vcpu-worker.js', import.meta.url), { workerData: req });
    const progress = new Progress('capture', showProgress && req.mode === 'step', 'steps');
    let ready: { tid: number; run: Uint8Array; runAddr: number; runSize: number } | undefined;
    let stopCode = 0;
    let stopSince = 0;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const onKick = (): void => {}; // a handler must exist so the signal interrupts KVM_RUN instead of killing us
    const onAbort = (): void => requestStop(STOP_INTERRUPT);
    process.on('SIGUSR2', onKick);
    signal.addEventListener('abort', onAbort, { once: true });

    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearInterval(t);
      progress.done();
      // The worker publishes its last batch before its last message: everything it recorded is written now
      // (after a give-up, what it had published; a terminated worker publishes no more).
      trace?.close();
      signal.removeEventListener('abort', onAbort);
      // Leave the SIGUSR2 handler a moment: a kick may still be in flight.
      setTimeout(() => process.off('SIGUSR2', onKick), 200).unref();
      fn();
    };

    const kick = (): void => {
      if (!ready) return;
      ready.run[RUN.immediateExit] = 1;
      tgkill(ready.tid, KICK_SIGNAL);
    };

    function requestStop(code: number): void {
      if (stopCode !== 0) return;
      stopCode = code;
      stopSince = Date.now();
      Atomics.store(ctrl, CTRL_STOP, code);
      kick();
    }

    if (signal.aborted) requestStop(STOP_INTERRUPT);
    timers.push(setTimeout(() => requestStop(STOP_TIMEOUT), timeoutS * 1000));
    // trace.log: the batches the worker has published, written every TRACE_DRAIN_MS (a batch is ~15 ms of
    // stepping here; the ring holds ~1 s).
    if (trace) timers.push(setInterval(() => trace.drain(), TRACE_DRAIN_MS));
    // Halt probes: with the in-kernel irqchip a guest HLT never exits, so the loop is asked now and then
    // whether the vCPU sits halted with interrupts off (run-loop.ts, debug/halt.ts).
    timers.push(
      setInterval(() => {
        if (stopCode !== 0 || !ready) return;
        Atomics.store(ctrl, CTRL_PROBE, 1);
        kick();
      }, HALT_PROBE_MS),
    );
    timers.push(
      setInterval(() => {
        progress.update(0, 0, Atomics.load(ctrl, CTRL_STEPS));
        if (stopCode === 0) return;
        kick(); // repeat: the first signal may have landed between two KVM_RUNs
        if (Date.now() - stopSince > GIVE_UP_MS) {
          void worker.terminate();
          finish(() => reject(new UserError(`the vCPU thread did not stop within ${GIVE_UP_MS / 1000} s of a stop request; gave up`)));
        }
      }, KICK_EVERY_MS),
    );

    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        ready = { tid: m.tid, run: new Uint8Array(koffi.view(m.runAddr, m.runSize) as ArrayBuffer), runAddr: m.runAddr, runSize: m.runSize };
        if (stopCode !== 0) kick();
      } else if (m.type === 'done') {
        finish(() => (trace?.error ? reject(trace.error) : resolvePromise(m.result)));
      } else {
        finish(() => reject(trace?.error ?? (m.user ? new UserError(m.message) : new Error(m.message))));
      }
    });
    worker.on('error', (err) => finish(() => reject(err)));
    worker.on('exit', (code) => {
      // The vCPU thread is gone and this side kicks no more (finish cleared the timers): unmap kvm_run, the
      // last reference to the vCPU, so KVM frees the VM now. Left mapped, every capture of a long-running
      // process (benchmark) kept its VM with its kvm-pit and kvm-nx-lpage-recovery threads until exit.
      if (ready) {
        const r = ready;
        ready = undefined;
        if (settled) munmap(r.runAddr, r.runSize);
      }
      finish(() => reject(new Error(`vCPU worker exited (code ${code}) without a result`)));
    });
  });
}
