/**
 * The QEMU engine, step mode: single-steps a guest through QEMU's gdbstub and writes trace.log in the
 * format of the KVM engine's step mode (one `<t> <symbol> [+ off] in section <s>` line per instruction),
 * with console.log and profile.json beside it.
 *
 *   const r = await stepWithQemu({ kernel, initrd, cmdline: 'console=ttyS0 nokaslr', memoryMiB: 512,
 *                                  outDir, timeoutS: 120, traceFrom: 'start_kernel', maxSteps: 20000,
 *                                  clock: 'steps' });
 *   r.profile.step.steps       // 20000
 *   r.profile.exit.reason      // 'max-steps'
 *
 * Parts: the handshake and breakpoint (startSession), the step loop over a Stepper (step-loop.ts,
 * stepper.ts), ending the session (endSession), the stop decision (stop-decision.ts, pure), and the
 * symbol table and trace header shared with the KVM engine (../step-trace.ts).
 *
 * How: QEMU starts paused (-S) with its gdbstub on a Unix socket in a private temporary folder (no port
 * to race for); we connect, read the target description (which also unlocks QEMU's `p` packet), set a
 * hardware breakpoint at --trace-from (software if refused), continue, then alternate `vCont;s` (one
 * instruction) and `p<rip>` (QEMU's T05 stop reply carries no registers). Line i is the instruction at
 * rip before step i executes it, as in the KVM engine: N lines = N instructions, the first being the
 * breakpoint's. A step that leaves rip where it was, at an instruction that cannot repeat in place, is
 * one QEMU answered without executing anything (RepeatFilter): no line. Afterwards QEMU is killed (`k`),
 * or with `after: 'run'` detached and left to run to its end (power-off or timeout).
 *
 * Never hangs: QEMU is killed at timeoutS by runQemu (the socket then closes and ends any wait), each
 * step has its own deadline (a HLT with interrupts masked never completes a step), and an abort signal
 * stops the loop, kills QEMU and still writes every file.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Progress } from '../../../src/progress.js';
import { messageOf, UserError } from '../../../src/errors.js';
import type { SymbolTable } from '../../../src/symbols/symbol-table.js';
import { looksLikeElf, parseElf64, type Elf64 } from '../../boot/elf.js';
import { kernelSymbolTable } from '../../kernel/symbols.js';
import { TraceWriter } from '../../trace-writer.js';
import { CONSOLE_FILE, TRACE_FILE } from '../../output/folder.js';
import { selectSymbols, traceHeaderLines, withPhysicalAliases, type SymbolChoice } from '../step-trace.js';
import { decideStepStop } from './stop-decision.js';
import { stepLoop, type StepLoopResult } from './step-loop.js';
import { GdbStepper } from './stepper.js';
import { GdbClosedError, GdbRemote } from './gdb-remote.js';
import { qemuArgs, QEMU_BINARY, type Accel } from './qemu-args.js';
import { PARTIAL_LINE_MS, QEMU_DEFAULT_CMDLINE, qemuInputs, qemuVersion, type QemuBaseOptions } from './qemu-common.js';
import type { QemuPart, StepPart, StopReason } from '../../output/profile.js';
import { markersToUs, type CaptureEngine, type EngineOutcome } from '../engine.js';
import { recordCapture, type CaptureRun } from '../record.js';
import { runQemu, type QemuRunResult } from './qemu-process.js';

export interface QemuStepOptions extends QemuBaseOptions {
  /** Seconds until QEMU is killed, counted from its start (the boot to --trace-from included). */
  timeoutS: number;
  /** Where tracing starts: a symbol of `symbols`, or a hex address (`0xffffffff81000000`). Default: QEMU's first instruction (the reset vector). */
  traceFrom?: string;
  /** Lines (instructions) to record; Infinity: until the guest ends, a step stalls, or the timeout. */
  maxSteps: number;
  /**
   * Names for the trace lines. Undefined: an ELF kernel's .symtab, else the kernel's own kallsyms
   * (kernelSymbolTable, cached), or none when it has neither (noted in the trace header); null: none,
   * every line is a bare address. For an ELF kernel the table also gets the ELF's physical aliases
   * (setPhysicalAliases), as in the KVM engine: code run at its physical address is named.
   */
  symbols?: SymbolTable | null;
  /** 'host': microseconds since QEMU was started (as console.log); 'steps': the instruction index. */
  clock: 'host' | 'steps';
  /** After the last step: kill QEMU (default), or detach and let the guest run to its end. */
  after?: 'kill' | 'run';
  /**
   * QEMU's single-step flags (Qqemu.sstep): 1 = step, 2 = no IRQs while stepping, 4 = no timers.
   * Default 7, QEMU's own default: interrupts and timers stay masked, as with the KVM engine's --block-irq;
   * 1 delivers them while stepping (handlers appear in the trace), as the KVM engine does by default.
   */
  sstepFlags?: number;
  /** Milliseconds one step may take before the guest counts as stuck (e.g. HLT with IRQs masked). Default 10000. */
  stepTimeoutMs?: number;
  /** Default 'tcg' (KVM's gdbstub works too where KVM can run the guest). */
  accel?: Accel;
  /** Called every `progressEvery` steps (default 4096) with the steps so far. */
  onProgress?: (steps: number) => void;
}

/** What the QEMU step engine takes besides the common request (EngineRequest). */
export type QemuStepSettings = Pick<QemuStepOptions, 'symbols' | 'after' | 'sstepFlags' | 'stepTimeoutMs' | 'accel' | 'onProgress' | 'qemu' | 'extraArgs'> & {
  /** Console lines to a function instead of stderr (with the request's echo). */
  echo?: (text: string) => void;
};

/** The QEMU engine in step mode (single steps through QEMU's gdbstub). */
export function qemuStepEngine(settings: QemuStepSettings = {}): CaptureEngine {
  return {
    name: 'qemu',
    modes: ['step'],
    defaultCmdline: QEMU_DEFAULT_CMDLINE,
    check(r) {
      if (r.traceUntil !== undefined) throw new UserError('--trace-until works only with the KVM engine (--engine kvm)');
      if (r.blockIrq) throw new UserError('--block-irq: the QEMU engine masks interrupts while stepping by default (Qqemu.sstep=7); the option is for --engine kvm');
      // QEMU, the files and the accelerator: refused before the output folder is touched
      qemuInputs({ kernel: r.kernel, ...(r.initrd !== undefined ? { initrd: r.initrd } : {}), timeoutS: r.timeoutS, ...(settings.accel !== undefined ? { accel: settings.accel } : {}), ...(settings.qemu !== undefined ? { qemu: settings.qemu } : {}) }, 'tcg');
    },
    run: (r) => {
      // Steps/s, percent of --max-steps and ETA on a terminal (src/progress.ts); the engine reports every 4096 steps.
      const progress = new Progress('capture (QEMU step)', r.progress, 'steps', r.maxSteps ?? 0);
      return stepOutcome({
        onProgress: (steps) => progress.update(0, 0, steps),
        ...settings,
        kernel: r.kernel,
        ...(r.initrd !== undefined ? { initrd: r.initrd } : {}),
        cmdline: r.cmdline,
        memoryMiB: r.memoryMiB,
        outDir: r.outDir,
        timeoutS: r.timeoutS,
        ...(r.traceFrom !== undefined ? { traceFrom: r.traceFrom } : {}),
        maxSteps: r.maxSteps ?? Infinity,
        clock: r.clock,
        echo: r.echo ? (settings.echo ?? true) : false,
        signal: r.signal,
      }, settings.symbols === undefined ? r.systemMap : undefined).finally(() => progress.done());
    },
  };
}

export interface QemuStepRunOptions extends QemuStepOptions {
  /** Empty a non-empty output folder first. */
  force?: boolean;
}

/** What stepWithQemu returns: the capture folder and its profile, as every capture path. */
export type QemuStepResult = CaptureRun;

/** Step a guest under QEMU and write the capture folder (recordCapture: the same profile as `capture`). */
export function stepWithQemu(o: QemuStepRunOptions): Promise<CaptureRun> {
  const { kernel, initrd, cmdline, memoryMiB, outDir, timeoutS, traceFrom, maxSteps, clock, signal, echo, force, ...settings } = o;
  return recordCapture(
    qemuStepEngine({ ...settings, ...(typeof echo === 'function' ? { echo } : {}) }),
    {
      kernel: resolve(kernel),
      ...(initrd !== undefined ? { initrd: resolve(initrd) } : {}),
      cmdline,
      memoryMiB,
      mode: 'step',
      clock,
      timeoutS,
      outDir,
      ...(maxSteps !== Infinity ? { maxSteps } : {}),
      ...(traceFrom !== undefined ? { traceFrom } : {}),
      blockIrq: false,
      echo: echo !== undefined && echo !== false,
      progress: false,
      signal: signal ?? new AbortController().signal,
    },
    { force: force ?? false },
  );
}

const CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_SSTEP = 0x7;

/** `0x...` or bare hex of at least 8 digits is an address; anything else is a symbol name. */
export function parseTraceFrom(spec: string, symbols: SymbolTable | null): bigint {
  const hex = /^(?:0x([0-9a-fA-F]{1,16})|([0-9a-fA-F]{8,16}))$/.exec(spec);
  if (hex) return BigInt(`0x${hex[1] ?? hex[2]}`);
  if (!symbols) throw new UserError(`--trace-from ${spec}: no symbol table to look it up in (give an address like 0xffffffff81000000)`);
  const a = symbols.resolve(spec);
  if (a === undefined) throw new UserError(`--trace-from ${spec}: no such symbol in the kernel's symbol table`);
  return a;
}

/** The command line with `nokaslr` added: without it the kernel runs away from its kallsyms addresses. */
export function withNokaslr(cmdline: string): string {
  return /(^|\s)nokaslr(\s|$)/.test(cmdline) ? cmdline : `${cmdline} nokaslr`.trim();
}

/** `systemMap`: --system-map (or the kernel's kallsyms as setup cached it), when no table is given. */
async function stepOutcome(o: QemuStepOptions, systemMap?: string): Promise<EngineOutcome> {
  const { qemu, kernel, initrd, accel } = qemuInputs(o, 'tcg');
  if (o.maxSteps !== Infinity && (!Number.isInteger(o.maxSteps) || o.maxSteps <= 0)) {
    throw new UserError(`--max-steps ${o.maxSteps}: give a positive whole number`);
  }
  const sstepFlags = o.sstepFlags ?? DEFAULT_SSTEP;
  if (!Number.isInteger(sstepFlags) || sstepFlags < 1 || sstepFlags > 7 || !(sstepFlags & 1)) {
    throw new UserError(`single-step flags ${sstepFlags}: give 1..7 with bit 0 (step) set`);
  }

  const symbolsStart = performance.now();
  const { table: symbols, note: symbolsNote } = await stepSymbols(o.symbols, kernel, systemMap);
  const symbolsUs = (performance.now() - symbolsStart) * 1000;
  const traceFromAddr = o.traceFrom === undefined ? null : parseTraceFrom(o.traceFrom, symbols);
  const cmdline = symbols ? withNokaslr(o.cmdline) : o.cmdline;
  const describe = (a: bigint): string => (symbols ? symbols.describe(a) : a.toString(16));

  const outDir = resolve(o.outDir);
  const work = mkdtempSync(join(tmpdir(), 'boot-trace-gdb-'));
  const sock = join(work, 'gdb.sock');

  // Our own abort: the user's signal, or a step loop that has to end QEMU itself.
  const stopQemu = new AbortController();
  const onUserAbort = (): void => stopQemu.abort();
  o.signal?.addEventListener('abort', onUserAbort, { once: true });
  if (o.signal?.aborted) stopQemu.abort();

  const trace = new TraceWriter(join(outDir, TRACE_FILE), describe);
  trace.comment(
    traceHeaderLines({
      engine: 'qemu, gdbstub',
      kernel,
      cmdline,
      modeDetail: `Qqemu.sstep=${sstepFlags}${sstepFlags & 2 ? ', interrupts masked while stepping' : ''}`,
      symbols: symbolsNote,
      traceFrom: o.traceFrom === undefined ? 'first instruction' : `${o.traceFrom} (${traceFromAddr!.toString(16)})`,
      clock: o.clock,
      clockZero: 'QEMU was started',
    }).join('\n'),
  );

  const t0 = performance.now();
  const since = (): number => (performance.now() - t0) * 1000;
  let runPromise: Promise<QemuRunResult>;
  try {
    runPromise = runQemu({
      qemu,
      args: (serial) => [
        ...qemuArgs({ kernel, initrd, cmdline, memoryMiB: o.memoryMiB, accel, serial, extraArgs: o.extraArgs }),
        // Paused at the first instruction until we say continue; gdbstub on our private socket.
        '-S',
        '-gdb', `unix:${sock.replaceAll(',', ',,')},server=on,wait=off`,
      ],
      consoleFile: join(outDir, CONSOLE_FILE),
      timeoutS: o.timeoutS,
      echo: o.echo,
      partialLineMs: PARTIAL_LINE_MS,
      signal: stopQemu.signal,
    });
  } catch (err) {
    // runQemu throws before QEMU starts (no FIFO): leave nothing open behind.
    trace.close();
    o.signal?.removeEventListener('abort', onUserAbort);
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  let runDone: QemuRunResult | null = null;
  const runEnded = runPromise.then((r) => (runDone = r), () => null);

  const phases: Record<string, number> = {};
  let gdb: GdbRemote | null = null;
  let session: Session | null = null;
  let loop: StepLoopResult | null = null;
  let stepStart = 0;
  let failure: unknown = null;
  try {
    gdb = await connectOrFail(sock, stopQemu.signal, () => runDone);
    phases.connect = Math.round(since());
    session = await startSession(gdb, sstepFlags, traceFromAddr, o.timeoutS * 1000 - (performance.now() - t0), o.traceFrom);
    if (session.traceFrom) session.traceFrom.reached_us = Math.round(since());
    phases.trace_from = Math.round(since());
    stepStart = performance.now();
    loop = await stepLoop(session.stepper, {
      maxSteps: o.maxSteps,
      clock: o.clock,
      now: since,
      trace,
      stepTimeoutMs: o.stepTimeoutMs ?? 10_000,
      aborted: () => stopQemu.signal.aborted,
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      sstepFlags,
    });
  } catch (err) {
    failure = err;
  }
  const steppingUs = stepStart > 0 ? (performance.now() - stepStart) * 1000 : 0;
  phases.stepping = Math.round(steppingUs);
  const steps = loop?.steps ?? 0;
  let loopStop: { reason: StopReason; detail: string } | null = loop?.stop ?? null;

  // End QEMU (or let it run on), then collect what runQemu saw.
  trace.flush();
  const refused = await endSession(gdb, loopStop !== null && o.after === 'run', stopQemu, runEnded, () => runDone);
  if (refused !== null && loopStop !== null) loopStop = { reason: 'internal-error', detail: `${loopStop.detail}; gdbstub refused to detach: "${refused}"` };
  const run = await runPromise.catch((err: unknown) => {
    throw err instanceof UserError ? err : new UserError(`${QEMU_BINARY}: ${messageOf(err)}`);
  }).finally(() => {
    trace.close();
    o.signal?.removeEventListener('abort', onUserAbort);
    rmSync(work, { recursive: true, force: true });
  });
  await runEnded;

  const { reason, detail } = decideStepStop({
    aborted: o.signal?.aborted ?? false,
    after: o.after ?? 'kill',
    loop: loopStop,
    steps,
    run: { reason: run.reason, status: run.status, signal: run.signal, consoleLines: run.consoleLines },
    timeoutS: o.timeoutS,
    traceFrom: o.traceFrom,
    traceFromReached: session?.traceFrom !== null && session?.traceFrom !== undefined,
    session: failure === null || loop?.ended ? { kind: 'ok' } : failure instanceof GdbClosedError ? { kind: 'closed' } : { kind: 'failed', message: messageOf(failure) },
  });
  if (reason === 'internal-error' && run.consoleLines === 0 && steps === 0) {
    const first = run.messages.split('\n').find((l) => l.trim() && !/Terminated via GDBstub/.test(l));
    if (failure instanceof UserError) throw failure;
    throw new UserError(`${QEMU_BINARY} failed before the guest ran: ${first?.trim() ?? detail}`);
  }
  if (failure instanceof UserError) throw failure;

  phases.total = Math.round(since());
  return outcomeOf({
    o, run, phases, steps, steppingUs, symbolsUs, trace, traceFromAddr, session, loop, gdb, accel, qemu, sstepFlags, cmdline, describe,
    exit: { reason, detail },
  });
}

interface OutcomeParts {
  o: QemuStepOptions;
  run: QemuRunResult;
  phases: Record<string, number>;
  steps: number;
  steppingUs: number;
  symbolsUs: number;
  trace: TraceWriter;
  traceFromAddr: bigint | null;
  session: Session | null;
  loop: StepLoopResult | null;
  gdb: GdbRemote | null;
  accel: 'kvm' | 'tcg';
  qemu: string;
  sstepFlags: number;
  cmdline: string;
  describe: (a: bigint) => string;
  exit: { reason: StopReason; detail: string };
}

/** The engine outcome: QEMU's phases with ours, the step part, and the qemu part with the gdbstub figures. */
function outcomeOf(x: OutcomeParts): EngineOutcome {
  const { o, run } = x;
  const phases: Record<string, number> = { ...x.phases, qemu_start: run.phases.qemu_start ?? 0, boot_wait: run.phases.boot_wait ?? 0 };
  if (run.phases.first_output !== undefined) phases.first_output = run.phases.first_output;
  const lastRip = x.loop?.lastRip ?? null;
  const tf = x.session?.traceFrom ?? null;
  const step: StepPart = {
    steps: x.steps,
    steps_per_second: x.steppingUs > 0 ? Math.round((x.steps / x.steppingUs) * 1e6) : 0,
    trace_lines: x.trace.lines,
    symbols_us: Math.round(x.symbolsUs),
    trace_from: o.traceFrom === undefined ? null : { spec: o.traceFrom, address: '0x' + x.traceFromAddr!.toString(16), reached_us: tf?.reached_us ?? null },
    trace_until: null,
  };
  const part: QemuPart = {
    accel: x.accel,
    version: qemuVersion(x.qemu),
    args: run.args,
    status: run.status,
    signal: run.signal,
    gdbstub: {
      sstep_flags: x.sstepFlags, step_packet: x.session?.stepPacket ?? 'vCont;s', packets_sent: x.gdb?.packetsSent ?? 0, bad_packets: x.gdb?.badPackets ?? 0,
      stop_replies_with_rip: x.session?.stepper.inlineRips ?? 0, no_progress_steps: x.loop?.noProgress ?? 0, breakpoint: tf?.breakpoint ?? null,
    },
  };
  return {
    cmdline: x.cmdline,
    phases_us: orderPhases(phases),
    guest_markers_us: markersToUs(run.markers),
    exit: { ...x.exit, rip: lastRip === null ? null : '0x' + lastRip.toString(16), symbol: lastRip === null ? null : x.describe(lastRip) },
    console_lines: run.consoleLines,
    peak_rss_mib: run.peakRss === null ? null : run.peakRss / (1024 * 1024),
    peak_rss_source: run.peakRssSource,
    step,
    part: { qemu: part },
  };
}

/**
 * After stepping: detach and let the guest run on (`runOn`), or kill QEMU (`k`), or, when QEMU already
 * went away by itself (power-off, timeout) or never offered a stub, let it be reaped as what it was before
 * forcing it, so a guest's own power-off is not reported as 'interrupted'. Returns the stub's answer when
 * it refused to detach (QEMU is then killed: left attached, the guest would sit paused until the timeout).
 */
async function endSession(gdb: GdbRemote | null, runOn: boolean, stop: AbortController, ended: Promise<unknown>, done: () => QemuRunResult | null): Promise<string | null> {
  let refused: string | null = null;
  if (gdb && !gdb.isClosed && runOn && !stop.signal.aborted) {
    const answer = await gdb.detach().catch((err: unknown) => `(${messageOf(err)})`);
    if (answer !== 'OK') {
      refused = answer;
      await gdb.kill();
    }
    gdb.close();
  } else if (gdb && !gdb.isClosed && !stop.signal.aborted) {
    await gdb.kill();
    gdb.close();
    await settle(ended, done, stop); // 'k' ends QEMU; make sure
  } else {
    gdb?.close();
    await settle(ended, done, stop);
  }
  return refused;
}

/** The phases in the order they ran (QEMU starts, we connect, run to --trace-from, step; then totals). */
function orderPhases(p: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ['qemu_start', 'first_output', 'connect', 'trace_from', 'stepping', 'boot_wait', 'total']) if (p[k] !== undefined) out[k] = p[k]!;
  return out;
}

/**
 * The table trace lines are named from: as the KVM engine (step-trace.ts selectSymbols), and for a
 * bzImage the kernel's own kallsyms. A kernel with neither still traces, with bare addresses.
 */
async function stepSymbols(given: SymbolTable | null | undefined, kernel: string, systemMap: string | undefined): Promise<SymbolChoice> {
  const elf = given === null ? null : kernelElf(kernel);
  const choice = selectSymbols({ ...(given !== undefined ? { given } : {}), ...(systemMap !== undefined ? { systemMap } : {}), elf });
  if (choice.table || given !== undefined || systemMap !== undefined) return choice;
  try {
    const table = await kernelSymbolTable(kernel);
    withPhysicalAliases(table, elf);
    return { table, note: 'kallsyms of the kernel' };
  } catch (err) {
    return { table: null, note: `none: ${messageOf(err)}` };
  }
}

interface Session {
  stepper: GdbStepper;
  stepPacket: string;
  traceFrom: { breakpoint: 'hw' | 'sw'; reached_us: number } | null;
}

/**
 * The gdbstub handshake (features, no-ack mode, the rip register, single-step flags, the step packet),
 * then, with --trace-from, a breakpoint there (hardware, else software) and a continue to it.
 */
async function startSession(gdb: GdbRemote, sstepFlags: number, traceFromAddr: bigint | null, remainingMs: number, spec: string | undefined): Promise<Session> {
  await gdb.supported();
  await gdb.startNoAck(); // QEMU 7.2 says no; newer ones yes
  const rip = await gdb.registerNumber('rip', 'pc', 'eip');
  if (rip === null) throw new Error('the gdbstub\'s target description has no rip/pc register');
  const sstep = await gdb.request(`Qqemu.sstep=${sstepFlags.toString(16)}`);
  if (sstep !== 'OK' && sstepFlags !== DEFAULT_SSTEP) throw new UserError(`this QEMU does not take Qqemu.sstep (answered "${sstep}"); leave the single-step flags at ${DEFAULT_SSTEP}`);
  const vcont = await gdb.request('vCont?');
  const stepPacket = /;s(;|$)/.test(vcont) ? 'vCont;s' : 's';
  let traceFrom: Session['traceFrom'] = null;
  if (traceFromAddr !== null) {
    const kind = await gdb.insertBreakpoint(traceFromAddr);
    const stop = await gdb.resume('c', Math.max(1, remainingMs) + 5000);
    if (stop.kind === 'W' || stop.kind === 'X') throw new GdbClosedError(`the guest ended before ${spec}`);
    await gdb.removeBreakpoint(traceFromAddr, kind);
    traceFrom = { breakpoint: kind, reached_us: 0 };
  }
  return { stepper: new GdbStepper(gdb, rip, stepPacket), stepPacket, traceFrom };
}

/** The kernel file parsed as an ELF (vmlinux, the demo guest), or null when it is not one (a bzImage). */
function kernelElf(path: string): Elf64 | null {
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (!looksLikeElf(head)) return null;
  try {
    return parseElf64(readFileSync(path), path);
  } catch {
    return null; // an ELF QEMU may still boot (32-bit multiboot) but with nothing here to name
  }
}

/** Wait up to 2 s for QEMU to end by itself, then stop it (runQemu kills its process group). */
async function settle(ended: Promise<unknown>, done: () => QemuRunResult | null, stop: AbortController): Promise<void> {
  if (!done() && !stop.signal.aborted) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
  }
  if (!done()) stop.abort();
}

/** Connect to QEMU's gdbstub, or say why QEMU never offered one. */
async function connectOrFail(sock: string, signal: AbortSignal, ended: () => QemuRunResult | null): Promise<GdbRemote> {
  const deadline = performance.now() + CONNECT_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (ended() || signal.aborted) break;
    try {
      return await GdbRemote.connect({ path: sock }, { timeoutMs: 200, signal, requestTimeoutMs: 10_000 });
    } catch {
      /* not listening yet */
    }
  }
  throw new GdbClosedError(`no gdbstub on ${sock}`);
}
