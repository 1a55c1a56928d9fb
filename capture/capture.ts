/**
 * `capture(options)`: boot a kernel under KVM and record it. The VM and its vCPU loop live in a worker
 * thread (vcpu-worker.ts); this side keeps the clock and the user's Ctrl-C. To stop the guest it stores
 * a code in the shared control array, sets kvm_run.immediate_exit (closing the race with a KVM_RUN that
 * is about to start) and sends SIGUSR2 to the vCPU thread (interrupting one already running), so a
 * capture ends even when the guest spins without a single exit.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { messageOf, UserError } from '../src/errors.js';
import { Progress } from '../src/progress.js';
import { symbolsFromElf } from '../src/symbols/elf-symbols.js';
import { loadSymbolFile } from '../src/symbols/load.js';
import type { SymbolTable } from '../src/symbols/symbol-table.js';
import { looksLikeElf, parseElf64 } from './boot/elf.js';
import { needsSymbols, parseTraceSpec } from './trace-window.js';
import { FAILURE_REASONS } from './exits.js';
import { demoGuestPath } from './guest/build.js';
import { tgkill } from './kvm/libc.js';
import { RUN } from './kvm/structs.js';
import { DEFAULT_CMDLINE, DEFAULT_MEMORY_MIB } from './layout.js';
import { writeProfile, type Profile } from './profile.js';
import { HALT_PROBE_MS } from './kvm-debug/halt.js';
import type { RearmMode } from './kvm-debug/step-watchdog.js';
import { CTRL_PROBE, CTRL_SLOTS, CTRL_STEPS, CTRL_STOP, STOP_INTERRUPT, STOP_TIMEOUT, type Clock, type Mode, type TraceFromTrap } from './run-loop.js';
import { CONSOLE_FILE, TRACE_FILE, type WorkerMessage, type WorkerRequest, type WorkerResult } from './worker-protocol.js';

export interface CaptureOptions {
  /** A kernel file (bzImage or ELF), or undefined with guest: 'demo'. */
  kernel?: string;
  guest?: 'demo';
  memoryMiB?: number;
  cmdline?: string;
  initrd?: string;
  systemMap?: string;
  mode?: Mode;
  clock?: Clock;
  blockIrq?: boolean;
  /** Seconds; default 60. */
  timeout?: number;
  maxSteps?: number;
  /** Output folder; default a new timestamped folder under ./captures/. */
  out?: string;
  /** Copy the guest's serial output to stderr as it arrives. */
  echo?: boolean;
  /** Show steps/s on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  /** Step mode: run freely to this symbol or address, then step (trace-window.ts). */
  traceFrom?: string;
  /** Step mode: stop at this symbol or address, or at `marker:STAGE`. */
  traceUntil?: string;
  /** How --trace-from is caught: hardware breakpoint, software trap, or both (default 'auto'; run-loop.ts). */
  traceFromTrap?: TraceFromTrap;
  /** When single-step is set again: 'auto' (after instructions that lose TF, and on detected losses) or 'always'. */
  stepRearm?: RearmMode;
  /** More fields for profile.json (the capture command records where kernel, initrd and symbols came from). */
  profileExtra?: Record<string, unknown>;
}

export interface CaptureResult {
  outDir: string;
  profile: Profile;
  profileFile: string;
  traceFile?: string;
  consoleFile: string;
  /** True when the guest ended in a way that should fail the command (internal error, failed entry). */
  failed: boolean;
}

export const DEFAULT_TIMEOUT_S = 60;
/** Signal used to kick the vCPU thread out of KVM_RUN (a handler is installed while capturing). */
const KICK_SIGNAL = 12; // SIGUSR2
/** How often a stop request is repeated while the worker has not answered, and when to give up. */
const KICK_EVERY_MS = 100;
const GIVE_UP_MS = 10_000;

/** The default output folder: captures/<UTC timestamp> under the working directory. */
export function defaultOutDir(now = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-').replace('T', '_').replace('Z', '');
  return resolve('captures', stamp);
}

export async function capture(o: CaptureOptions): Promise<CaptureResult> {
  const mode = o.mode ?? 'run';
  const clock = o.clock ?? 'host';
  const timeout = o.timeout ?? DEFAULT_TIMEOUT_S;
  if (!(timeout > 0)) throw new UserError(`--timeout ${timeout}: give a positive number of seconds`);
  const maxSteps = o.maxSteps ?? Infinity;
  if (!(maxSteps > 0)) throw new UserError(`--max-steps ${maxSteps}: give a positive number`);
  if (mode === 'run' && o.maxSteps !== undefined) throw new UserError('--max-steps needs --mode step');
  if (mode === 'run' && (o.traceFrom !== undefined || o.traceUntil !== undefined)) throw new UserError('--trace-from/--trace-until need --mode step');
  if (o.kernel && o.guest) throw new UserError('give either --kernel or --guest, not both');
  const kernelPath = o.kernel ? resolve(o.kernel) : o.guest === 'demo' ? demoGuestPath() : undefined;
  if (!kernelPath) throw new UserError('nothing to boot: give --kernel FILE or --guest demo');
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
  const outDir = o.out ? resolve(o.out) : defaultOutDir();
  try {
    makeDir(outDir);
    accessSync(outDir, constants.W_OK);
  } catch (err) {
    throw new UserError(`${outDir}: cannot write the capture's output folder (${messageOf(err)})`);
  }

  const control = new SharedArrayBuffer(4 * CTRL_SLOTS);
  const ctrl = new Int32Array(control);
  const req: WorkerRequest = {
    kernelPath,
    memoryMiB: o.memoryMiB ?? DEFAULT_MEMORY_MIB,
    cmdline: o.cmdline ?? DEFAULT_CMDLINE,
    ...(o.initrd !== undefined ? { initrdPath: resolve(o.initrd) } : {}),
    ...(o.systemMap !== undefined ? { systemMap: resolve(o.systemMap) } : {}),
    mode,
    clock,
    blockIrq: o.blockIrq ?? false,
    maxSteps,
    outDir,
    echo: o.echo ?? false,
    control,
    ...(traceFrom !== undefined ? { traceFrom } : {}),
    ...(traceUntil !== undefined ? { traceUntil } : {}),
    ...(untilMarker !== undefined ? { untilMarker } : {}),
    ...(o.traceFromTrap !== undefined ? { traceFromTrap: o.traceFromTrap } : {}),
    ...(o.stepRearm !== undefined ? { rearm: o.stepRearm } : {}),
  };

  const result = await runWorker(req, ctrl, timeout, o.progress ?? Boolean(process.stderr.isTTY));
  const profile: Profile = {
    engine: 'kvm',
    kernel: kernelPath,
    cmdline: result.cmdline,
    mode,
    clock,
    memory_mib: req.memoryMiB,
    phases: roundAll({ ...result.phases }),
    guest: result.guest,
    exit: { reason: result.reason, rip: result.rip, symbol: result.symbol, detail: result.detail, at_us: Math.round(result.stopUs) },
    steps: result.steps,
    steps_per_second: result.phases.boot_wait! > 0 ? Math.round(result.steps / (result.phases.boot_wait! / 1e6)) : 0,
    exits: result.exits,
    console_lines: result.consoleLines,
    trace_lines: result.traceLines,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    symbols_us: Math.round(result.symbolsUs),
  };
  if (o.traceFrom !== undefined || o.traceUntil !== undefined) {
    profile.trace_window = {
      from: o.traceFrom ?? null,
      from_address: traceFrom !== undefined ? '0x' + traceFrom.toString(16) : null,
      until: o.traceUntil ?? null,
      reached_us: result.windowStartUs !== undefined ? Math.round(result.windowStartUs) : null,
      by: result.traceFromBy ?? null,
      trap: o.traceFromTrap ?? 'auto',
      ...(result.traceFromNote !== undefined ? { note: result.traceFromNote } : {}),
    };
  }
  if (result.watchdog) profile.step_watchdog = result.watchdog;
  if (o.profileExtra) Object.assign(profile, o.profileExtra);
  const profileFile = join(outDir, 'profile.json');
  writeProfile(profileFile, profile);
  const res: CaptureResult = {
    outDir,
    profile,
    profileFile,
    consoleFile: join(outDir, CONSOLE_FILE),
    failed: FAILURE_REASONS.has(result.reason),
  };
  if (mode === 'step') res.traceFile = join(outDir, TRACE_FILE);
  return res;
}

/**
 * mkdir -p without Node's recursive mode for the last level: on some file systems (/proc) mkdir answers
 * ENOENT under an existing parent, and `mkdirSync(..., {recursive: true})` then retries forever.
 */
function makeDir(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || existsSync(dirname(dir))) throw err;
    makeDir(dirname(dir));
    mkdirSync(dir);
  }
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

function roundAll(r: Record<string, number>): Record<string, number> {
  for (const k of Object.keys(r)) r[k] = Math.round(r[k]!);
  return r;
}

function runWorker(req: WorkerRequest, ctrl: Int32Array, timeoutS: number, showProgress: boolean): Promise<WorkerResult> {
  return new Promise<WorkerResult>((resolvePromise, reject) => {
    const worker = new Worker(new URL('./vcpu-worker.js', import.meta.url), { workerData: req });
    const progress = new Progress('capture', showProgress && req.mode === 'step', 'steps');
    let ready: { tid: number; run: Uint8Array } | undefined;
    let stopCode = 0;
    let stopSince = 0;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const onKick = (): void => {}; // a handler must exist so the signal interrupts KVM_RUN instead of killing us
    const onSigint = (): void => requestStop(STOP_INTERRUPT);
    process.on('SIGUSR2', onKick);
    process.on('SIGINT', onSigint);

    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearInterval(t);
      progress.done();
      process.off('SIGINT', onSigint);
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

    timers.push(setTimeout(() => requestStop(STOP_TIMEOUT), timeoutS * 1000));
    // Halt probes: with the in-kernel irqchip a guest HLT never exits, so the loop is asked now and then
    // whether the vCPU sits halted with interrupts off (run-loop.ts, kvm-debug/halt.ts).
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
        ready = { tid: m.tid, run: new Uint8Array(koffi.view(m.runAddr, m.runSize) as ArrayBuffer) };
        if (stopCode !== 0) kick();
      } else if (m.type === 'done') {
        finish(() => resolvePromise(m.result));
      } else {
        finish(() => reject(m.user ? new UserError(m.message) : new Error(m.message)));
      }
    });
    worker.on('error', (err) => finish(() => reject(err)));
    worker.on('exit', (code) => finish(() => reject(new Error(`vCPU worker exited (code ${code}) without a result`))));
  });
}
