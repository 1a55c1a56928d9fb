/**
 * The QEMU engine, step mode: single-steps a guest through QEMU's gdbstub and writes trace.log in the
 * format of the KVM engine's step mode (one `<t> <symbol> [+ off] in section <s>` line per instruction),
 * with console.log and profile.json beside it.
 *
 *   const r = await stepWithQemu({ kernel, initrd, cmdline: 'console=ttyS0 nokaslr', memoryMiB: 512,
 *                                  outDir, timeoutS: 120, traceFrom: 'start_kernel', maxSteps: 20000,
 *                                  clock: 'steps' });
 *   r.profile.steps            // 20000
 *   r.profile.exit.reason      // 'max-steps'
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
import { messageOf, UserError } from '../../../src/errors.js';
import { physicalAliasesFromElf, symbolsFromElf } from '../../../src/symbols/elf-symbols.js';
import type { SymbolTable } from '../../../src/symbols/symbol-table.js';
import { looksLikeElf, parseElf64, type Elf64 } from '../../boot/elf.js';
import type { StopReason } from '../kvm/exits.js';
import { kernelSymbolTable } from '../../kernel/symbols.js';
import { HOST_CLOCK_DECIMALS, TraceWriter } from '../../trace-writer.js';
import { GdbClosedError, GdbRemote, GdbTimeoutError, hexLe } from './gdb-remote.js';
import { canRepeatInPlace, MAX_INSTRUCTION_BYTES } from './repeat-in-place.js';
import { qemuArgs, QEMU_BINARY, type Accel } from './qemu-args.js';
import { PARTIAL_LINE_MS, QEMU_DEFAULT_CMDLINE, qemuInputs, qemuVersion, type QemuBaseOptions } from './qemu-common.js';
import { loadSymbolFile } from '../../../src/symbols/load.js';
import type { QemuPart, StepPart } from '../../output/profile.js';
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
    },
    run: (r) =>
      stepOutcome({
        ...settings,
        kernel: r.kernel,
        ...(r.initrd !== undefined ? { initrd: r.initrd } : {}),
        cmdline: r.cmdline,
        memoryMiB: r.memoryMiB,
        outDir: r.outDir,
        timeoutS: r.timeoutS,
        ...(r.traceFrom !== undefined ? { traceFrom: r.traceFrom } : {}),
        maxSteps: r.maxSteps ?? Infinity,
        ...(settings.symbols === undefined && r.systemMap !== undefined ? { symbols: loadSymbolFile(r.systemMap) } : {}),
        clock: r.clock,
        echo: r.echo ? (settings.echo ?? true) : false,
        signal: r.signal,
      }),
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
const HLT = 0xf4;
/**
 * More no-progress steps in a row than this at one rip, and the instruction does repeat in a way its
 * bytes do not show (an indirect jump to itself): its lines are kept from then on, so the trace shows
 * the loop instead of running silently to the timeout. QEMU's no-progress answers come one at a time.
 */
const MAX_NO_PROGRESS_IN_A_ROW = 16;

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

async function stepOutcome(o: QemuStepOptions): Promise<EngineOutcome> {
  const { qemu, kernel, initrd, accel } = qemuInputs(o, 'tcg');
  if (o.maxSteps !== Infinity && (!Number.isInteger(o.maxSteps) || o.maxSteps <= 0)) {
    throw new UserError(`--max-steps ${o.maxSteps}: give a positive whole number`);
  }
  const sstepFlags = o.sstepFlags ?? DEFAULT_SSTEP;
  if (!Number.isInteger(sstepFlags) || sstepFlags < 1 || sstepFlags > 7 || !(sstepFlags & 1)) {
    throw new UserError(`single-step flags ${sstepFlags}: give 1..7 with bit 0 (step) set`);
  }

  const symbolsStart = performance.now();
  const elf = o.symbols === null ? null : kernelElf(kernel);
  let symbolsNote = o.symbols === null ? 'none (bare addresses)' : o.symbols ? 'given' : 'kallsyms of the kernel';
  let symbols: SymbolTable | null = o.symbols ?? null;
  try {
    if (o.symbols === undefined) {
      // As the KVM engine: an ELF's own .symtab when it has one (the demo guest, an unstripped vmlinux).
      symbols = elf ? symbolsFromElf(elf) : null;
      if (symbols) symbolsNote = 'ELF .symtab of the kernel';
      else symbols = await kernelSymbolTable(kernel);
    }
  } catch (err) {
    // A kernel without kallsyms (a small test guest) still traces, with bare addresses.
    symbols = null;
    symbolsNote = `none: ${messageOf(err)}`;
  }
  // An ELF kernel is entered at its physical address (the demo guest's _start at 0x1000000, through PVH)
  // and runs there until it jumps to its link address: name those instructions as the KVM engine does.
  if (symbols && elf) symbols.setPhysicalAliases(physicalAliasesFromElf(elf));
  const symbolsUs = (performance.now() - symbolsStart) * 1000;
  const traceFromAddr = o.traceFrom === undefined ? null : parseTraceFrom(o.traceFrom, symbols);
  const cmdline = symbols ? withNokaslr(o.cmdline) : o.cmdline;
  const describe = (a: bigint): string => (symbols ? symbols.describe(a) : a.toString(16));

  const outDir = resolve(o.outDir);
  const consoleFile = join(outDir, 'console.log');
  const traceFile = join(outDir, 'trace.log');
  const work = mkdtempSync(join(tmpdir(), 'boot-trace-gdb-'));
  const sock = join(work, 'gdb.sock');

  // Our own abort: the user's signal, or a step loop that has to end QEMU itself.
  const stopQemu = new AbortController();
  const onUserAbort = (): void => stopQemu.abort();
  o.signal?.addEventListener('abort', onUserAbort, { once: true });
  if (o.signal?.aborted) stopQemu.abort();

  const trace = new TraceWriter(traceFile, describe);
  trace.comment(
    [
      'boot-trace capture (engine qemu, gdbstub)',
      `kernel: ${kernel}`,
      `cmdline: ${cmdline}`,
      `mode: step (Qqemu.sstep=${sstepFlags}${sstepFlags & 2 ? ', interrupts masked while stepping' : ''})`,
      `symbols: ${symbolsNote}`,
      `trace-from: ${o.traceFrom === undefined ? 'first instruction' : `${o.traceFrom} (${traceFromAddr!.toString(16)})`}`,
      o.clock === 'host' ? 'clock: host (microseconds since QEMU was started)' : 'clock: steps (the timestamp is the instruction index)',
    ].join('\n'),
  );

  const t0 = performance.now();
  const since = (): number => (performance.now() - t0) * 1000;
  let runPromise: Promise<QemuRunResult>;
  try {
    runPromise = startQemu();
  } catch (err) {
    // runQemu throws before QEMU starts (no FIFO): leave nothing open behind.
    trace.close();
    o.signal?.removeEventListener('abort', onUserAbort);
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  function startQemu(): Promise<QemuRunResult> {
    return runQemu({
      qemu,
      args: (serial) => [
        ...qemuArgs({ kernel, initrd, cmdline, memoryMiB: o.memoryMiB, accel, serial, extraArgs: o.extraArgs }),
        // Paused at the first instruction until we say continue; gdbstub on our private socket.
        '-S',
        '-gdb', `unix:${sock.replaceAll(',', ',,')},server=on,wait=off`,
      ],
      consoleFile,
      timeoutS: o.timeoutS,
      echo: o.echo,
      partialLineMs: PARTIAL_LINE_MS,
      signal: stopQemu.signal,
    });
  }
  let runDone: QemuRunResult | null = null;
  const runEnded = runPromise.then((r) => (runDone = r), () => null);

  const phases: Record<string, number> = {};
  let steps = 0;
  let lastRip: bigint | null = null;
  let stopReason: StopReason | null = null;
  let stopDetail = '';
  let traceFrom: { spec: string; address: string; breakpoint: 'hw' | 'sw'; reached_us: number } | null = null;
  let stepPacket = 'vCont;s';
  let gdb: GdbRemote | null = null;
  let stepStart = 0;
  let inlineRips = 0;
  let noProgress = 0;
  let failure: unknown = null;

  try {
    gdb = await connectOrFail(sock, stopQemu.signal, () => runDone);
    phases.connect = Math.round(since());
    await gdb.supported();
    await gdb.startNoAck(); // QEMU 7.2 says no; newer ones yes
    const rip = await gdb.registerNumber('rip', 'pc', 'eip');
    if (rip === null) throw new Error('the gdbstub\'s target description has no rip/pc register');
    const sstep = await gdb.request(`Qqemu.sstep=${sstepFlags.toString(16)}`);
    if (sstep !== 'OK' && sstepFlags !== DEFAULT_SSTEP) throw new UserError(`this QEMU does not take Qqemu.sstep (answered "${sstep}"); leave the single-step flags at ${DEFAULT_SSTEP}`);
    const vcont = await gdb.request('vCont?');
    if (!/;s(;|$)/.test(vcont)) stepPacket = 's';

    if (traceFromAddr !== null) {
      const kind = await gdb.insertBreakpoint(traceFromAddr);
      const remaining = o.timeoutS * 1000 - (performance.now() - t0);
      const stop = await gdb.resume('c', Math.max(1, remaining) + 5000);
      if (stop.kind === 'W' || stop.kind === 'X') throw new GdbClosedError(`the guest ended before ${o.traceFrom}`);
      await gdb.removeBreakpoint(traceFromAddr, kind);
      traceFrom = { spec: o.traceFrom!, address: traceFromAddr.toString(16), breakpoint: kind, reached_us: Math.round(since()) };
    }
    phases.trace_from = Math.round(since());

    const hostClock = o.clock === 'host';
    const decimals = hostClock ? HOST_CLOCK_DECIMALS : 0;
    const stepTimeout = o.stepTimeoutMs ?? 10_000;
    const progressEvery = 4096;
    const repeats = new RepeatFilter(gdb);
    stepStart = performance.now();
    let pc = await gdb.readRegister(rip);
    let record = true;
    for (;;) {
      if (record) {
        lastRip = pc;
        trace.event(hostClock ? since() : steps, decimals, Number(pc >> 32n), Number(pc & 0xffffffffn));
        steps++;
        if (steps >= o.maxSteps) {
          stopReason = 'max-steps';
          stopDetail = `--max-steps ${o.maxSteps} reached`;
          break;
        }
        if ((steps & (progressEvery - 1)) === 0) o.onProgress?.(steps);
      }
      if (stopQemu.signal.aborted) break;
      let stop;
      try {
        stop = await gdb.resume(stepPacket, stepTimeout);
      } catch (err) {
        if (!(err instanceof GdbTimeoutError)) throw err;
        // The instruction never finished: interrupt, and name what it was waiting in.
        gdb.interrupt();
        await gdb.nextPacket(2000).catch(() => '');
        const at = await gdb.readRegister(rip).catch(() => pc);
        const byte = await gdb.readMemory(at, 1).then((b) => b[0], () => -1);
        lastRip = at;
        stopReason = byte === HLT ? 'halt' : 'timeout';
        stopDetail = byte === HLT
          ? `HLT at step ${steps} did not complete within ${stepTimeout} ms (interrupts masked while stepping: Qqemu.sstep=${sstepFlags})`
          : `step ${steps} did not complete within ${stepTimeout} ms`;
        break;
      }
      if (stop.kind === 'W' || stop.kind === 'X') throw new GdbClosedError(`the guest ended (${stop.raw})`);
      const inline = stop.registers.get(rip);
      if (inline !== undefined) {
        inlineRips++;
        pc = hexLe(inline);
      } else pc = await gdb.readRegister(rip);
      record = await repeats.keep(pc, lastRip!);
      if (!record) noProgress++;
    }
  } catch (err) {
    failure = err;
  }
  const steppingUs = stepStart > 0 ? (performance.now() - stepStart) * 1000 : 0;
  phases.stepping = Math.round(steppingUs);

  // End QEMU (or let it run on), then collect what runQemu saw.
  trace.flush();
  if (gdb && !gdb.isClosed && stopReason !== null && o.after === 'run' && !stopQemu.signal.aborted) {
    const answer = await gdb.detach().catch((err: unknown) => `(${messageOf(err)})`);
    if (answer !== 'OK') {
      // Left attached, the guest would sit paused until the timeout: end it now and say why.
      stopReason = 'internal-error';
      stopDetail = `${stopDetail}; gdbstub refused to detach: "${answer}"`;
      await gdb.kill();
    }
    gdb.close();
  } else if (gdb && !gdb.isClosed && !stopQemu.signal.aborted) {
    await gdb.kill();
    gdb.close();
    await settle(runEnded, () => runDone, stopQemu); // 'k' ends QEMU; make sure
  } else {
    // QEMU went away by itself (power-off, timeout) or never offered a stub: let it be reaped as what it
    // was before forcing it, so a guest's own power-off is not reported as 'interrupted'.
    gdb?.close();
    await settle(runEnded, () => runDone, stopQemu);
  }
  const run = await runPromise.catch((err: unknown) => {
    throw err instanceof UserError ? err : new UserError(`${QEMU_BINARY}: ${messageOf(err)}`);
  }).finally(() => {
    trace.close();
    o.signal?.removeEventListener('abort', onUserAbort);
    rmSync(work, { recursive: true, force: true });
  });
  await runEnded;

  let reason: StopReason;
  let detail: string;
  if (o.signal?.aborted) {
    reason = 'interrupted';
    detail = `interrupted after ${steps} steps`;
  } else if (o.after === 'run' && stopReason === 'max-steps') {
    reason = run.reason;
    detail = `${stopDetail}; then the guest ran on: ${run.reason}`;
  } else if (stopReason !== null) {
    reason = stopReason;
    detail = stopDetail;
  } else if (run.reason === 'timeout') {
    reason = 'timeout';
    detail = `timeout (${o.timeoutS} s) after ${steps} steps${traceFrom === null && traceFromAddr !== null ? `, before ${o.traceFrom} was reached` : ''}`;
  } else if (failure instanceof GdbClosedError || failure === null) {
    reason = run.reason === 'internal-error' && steps === 0 && run.consoleLines === 0 ? 'internal-error' : run.reason;
    detail = `QEMU ended after ${steps} steps${traceFrom === null && traceFromAddr !== null ? `, before ${o.traceFrom} was reached` : ''} (${run.signal ? `killed by ${run.signal}` : `status ${run.status}`})`;
  } else {
    reason = 'internal-error';
    detail = `gdbstub: ${messageOf(failure)}`;
  }
  if (reason === 'internal-error' && run.consoleLines === 0 && steps === 0) {
    const first = run.messages.split('\n').find((l) => l.trim() && !/Terminated via GDBstub/.test(l));
    if (failure instanceof UserError) throw failure;
    throw new UserError(`${QEMU_BINARY} failed before the guest ran: ${first?.trim() ?? detail}`);
  }
  if (failure instanceof UserError) throw failure;

  phases.qemu_start = run.phases.qemu_start ?? 0;
  if (run.phases.first_output !== undefined) phases.first_output = run.phases.first_output;
  phases.boot_wait = run.phases.boot_wait ?? 0;
  phases.total = Math.round(since());
  const step: StepPart = {
    steps,
    steps_per_second: steppingUs > 0 ? Math.round((steps / steppingUs) * 1e6) : 0,
    trace_lines: trace.lines,
    symbols_us: Math.round(symbolsUs),
    trace_from: traceFrom ? { spec: traceFrom.spec, address: '0x' + traceFrom.address, reached_us: traceFrom.reached_us } : o.traceFrom !== undefined ? { spec: o.traceFrom, address: '0x' + traceFromAddr!.toString(16), reached_us: null } : null,
    trace_until: null,
  };
  const part: QemuPart = {
    accel,
    version: qemuVersion(qemu),
    args: run.args,
    status: run.status,
    signal: run.signal,
    gdbstub: {
      sstep_flags: sstepFlags, step_packet: stepPacket, packets_sent: gdb?.packetsSent ?? 0, bad_packets: gdb?.badPackets ?? 0,
      stop_replies_with_rip: inlineRips, no_progress_steps: noProgress, breakpoint: traceFrom?.breakpoint ?? null,
    },
  };
  return {
    cmdline,
    phases_us: phases,
    guest_markers_us: markersToUs(run.markers),
    exit: {
      reason,
      rip: lastRip === null ? null : '0x' + lastRip.toString(16),
      symbol: lastRip === null ? null : describe(lastRip),
      detail,
    },
    console_lines: run.consoleLines,
    peak_rss_mib: run.peakRss === null ? null : run.peakRss / (1024 * 1024),
    peak_rss_source: run.peakRssSource,
    step,
    part: { qemu: part },
  };
}

/**
 * Tells a real step from one QEMU 7.2's gdbstub answered without executing anything (it does so a few
 * times per 50 000 steps, at any instruction). A step that leaves rip where it was is real only when the
 * instruction there can repeat in place (canRepeatInPlace: a rep-prefixed string instruction, a jump to
 * itself). The bytes are read with `m` once per distinct address (code is assumed not to change under
 * the same rip during a capture) and only for repeats, so ordinary steps cost nothing.
 */
class RepeatFilter {
  private readonly verdicts = new Map<bigint, boolean>();
  private inARow = 0;

  constructor(private readonly gdb: GdbRemote) {}

  /** Whether the step that brought rip to `pc` (from `previous`) gets a trace line. */
  async keep(pc: bigint, previous: bigint): Promise<boolean> {
    if (pc !== previous) {
      this.inARow = 0;
      return true;
    }
    let verdict = this.verdicts.get(pc);
    if (verdict === undefined) {
      const code = await this.gdb.readMemoryUpTo(pc, MAX_INSTRUCTION_BYTES);
      // Unreadable code: keep the line rather than guess.
      verdict = code.length === 0 || canRepeatInPlace(code);
      this.verdicts.set(pc, verdict);
    }
    if (verdict) return true;
    return ++this.inARow > MAX_NO_PROGRESS_IN_A_ROW;
  }
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
