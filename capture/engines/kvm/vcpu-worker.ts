/**
 * The capture's vCPU thread (a worker_thread): builds the VM, runs the loop, writes console.log, records
 * trace.log's events, and reports back. Running here leaves the main thread free to keep time, to catch
 * Ctrl-C, to kick this thread out of KVM_RUN when the guest spins without exits, and to format and write
 * trace.log (capture.ts, trace-channel.ts).
 *
 * Messages to the main thread: {type: 'ready', tid, runAddr, runSize} once KVM_RUN can be kicked, then
 * {type: 'done', result} or {type: 'error', message, user}; trace.log's events go through shared memory
 * (trace-channel.ts).
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../../../src/errors.js';
import type { SymbolTable } from '../../../src/symbols/symbol-table.js';
import { appendConsoleText, ConsoleRecorder } from '../../output/console-log.js';
import { PortBus } from '../../devices/bus.js';
import { Cmos } from '../../devices/cmos.js';
import { I8042 } from '../../devices/i8042.js';
import { Serial8250 } from '../../devices/serial.js';
import { KvmError } from '../../kvm/kvm.js';
import { gettid } from '../../kvm/libc.js';
import {
  CMOS_INDEX_PORT,
  CMOS_PORT_COUNT,
  I8042_DATA_PORT,
  I8042_PORT_COUNT,
  SERIAL_COM1_IRQ,
  SERIAL_COM1_PORT,
  SERIAL_PORT_COUNT,
} from '../../layout.js';
import { addressFlags, runLoop } from './run-loop.js';
import { TraceWriter } from '../../trace-writer.js';
import { ringSink } from './trace-channel.js';
import { buildVm } from './vm.js';
import { selectSymbols, traceHeaderLines, type SymbolChoice } from '../step-trace.js';
import { CONSOLE_FILE, type WorkerMessage, type WorkerRequest, type WorkerResult } from './worker-protocol.js';

function post(m: WorkerMessage): void {
  parentPort!.postMessage(m);
}

function main(req: WorkerRequest): WorkerResult {
  const control = new Int32Array(req.control);
  const startMs = performance.now();
  const built = buildVm({
    kernelPath: req.kernelPath,
    memoryMiB: req.memoryMiB,
    cmdline: req.cmdline,
    ...(req.initrdPath !== undefined ? { initrdPath: req.initrdPath } : {}),
  });
  try {
    const { vm, vcpu, t0Ms } = built;
    post({ type: 'ready', tid: gettid(), runAddr: vcpu.runAddr, runSize: vcpu.runSize });

    // Symbols: needed from the first step in step mode; in run mode only for the exit line, so they are
    // loaded after the guest stops and stay out of the boot timing.
    let symbolsUs = 0;
    let symbols: SymbolChoice | undefined;
    const loadSymbols = (): SymbolTable | null => {
      if (symbols === undefined) {
        const start = performance.now();
        // --system-map (setup gives the kernel's kallsyms as one), else the ELF's .symtab; physical aliases for an ELF.
        symbols = selectSymbols({ ...(req.systemMap !== undefined ? { systemMap: req.systemMap } : {}), elf: built.image.elf ?? null });
        symbolsUs = (performance.now() - start) * 1000;
      }
      return symbols.table;
    };
    const describe = (a: bigint): string => loadSymbols()?.describe(a) ?? a.toString(16);
    if (req.mode === 'step') loadSymbols();
    const devicesStart = performance.now();

    const consoleFile = join(req.outDir, CONSOLE_FILE);
    const consoleFd = openSync(consoleFile, 'w');
    const recorder = new ConsoleRecorder({
      write: (text) => appendConsoleText(consoleFd, consoleFile, text),
      now: () => (performance.now() - t0Ms) * 1000,
      ...(req.echo ? { echo: (text: string) => void process.stderr.write(text) } : {}),
    });
    let resetRequested = false;
    const bus = new PortBus();
    bus.register(SERIAL_COM1_PORT, SERIAL_PORT_COUNT, new Serial8250({
      onByte: (b) => recorder.byte(b),
      setIrq: (level) => vm.irqLine(SERIAL_COM1_IRQ, level),
    }), 'serial COM1');
    bus.register(I8042_DATA_PORT, I8042_PORT_COUNT, new I8042({ onReset: () => (resetRequested = true) }), 'i8042');
    bus.register(CMOS_INDEX_PORT, CMOS_PORT_COUNT, new Cmos(), 'cmos');

    let trace: TraceWriter | undefined;
    if (req.mode === 'step') {
      // The main thread formats and writes trace.log (trace-channel.ts): this thread only records.
      trace = new TraceWriter(ringSink(req.trace!), describe, (addr) => addressFlags(vcpu, built.mem, addr));
      const entry = BigInt(built.image.entry);
      trace.comment(
        traceHeaderLines({
          engine: 'kvm',
          kernel: req.kernelPath,
          cmdline: built.cmdline,
          ...(req.blockIrq ? { modeDetail: 'block-irq' } : {}),
          symbols: symbols!.note,
          traceFrom: req.traceFrom !== undefined
            ? `0x${req.traceFrom.toString(16)} (${describe(req.traceFrom)})`
            : `the entry, 0x${entry.toString(16)} (${describe(entry)})`,
          traceUntil: [
            ...(req.traceUntil !== undefined ? [`0x${req.traceUntil.toString(16)} (${describe(req.traceUntil)})`] : []),
            ...(req.untilMarker !== undefined ? [`marker:${req.untilMarker}`] : []),
          ],
          clock: req.clock,
          clockZero: 'the VM was created',
        }).join('\n'),
      );
    }

    const loopStart = performance.now();
    built.phases.devices = (loopStart - devicesStart) * 1000;
    let result;
    try {
      result = runLoop({
        vcpu,
        mem: built.mem,
        exits: { bus, resetRequested: () => resetRequested },
        mode: req.mode,
        blockIrq: req.blockIrq,
        clock: req.clock,
        maxSteps: req.maxSteps,
        t0Ms,
        entryRip: BigInt(built.image.entry),
        ...(trace ? { trace } : {}),
        control,
        ...(req.traceFrom !== undefined ? { traceFrom: req.traceFrom } : {}),
        ...(req.traceUntil !== undefined ? { traceUntil: req.traceUntil } : {}),
        ...(req.untilMarker !== undefined
          ? { untilMarker: () => (req.untilMarker! in recorder.markers ? `marker:${req.untilMarker}` : null) }
          : {}),
        ...(req.traceFromTrap !== undefined ? { traceFromTrap: req.traceFromTrap } : {}),
        ...(req.rearm !== undefined ? { rearm: req.rearm } : {}),
        // An ELF's code is in guest memory before the first instruction; a bzImage's only after it decompresses itself.
        codeInPlace: built.image.kind === 'elf',
      });
    } finally {
      // Whatever happened, what was captured so far reaches the files; each is closed even when another
      // one failed (a full disk), and the first error is the one reported.
      closeAll([() => recorder.flush(), () => closeSync(consoleFd), () => trace?.close()]);
    }
    const end = performance.now();
    const stopUs = (end - t0Ms) * 1000;
    const phases: Record<string, number> = { ...built.phases };
    if (req.mode === 'step') phases.symbols = symbolsUs;
    phases.boot_wait = (end - loopStart) * 1000;
    phases.total = (end - startMs) * 1000;
    let symbol: string;
    try {
      symbol = describe(result.rip);
    } catch (err) {
      // Run mode loads the symbols only now; a bad symbol file must not lose the capture's results.
      symbol = `${result.rip.toString(16)} (symbols unavailable: ${err instanceof Error ? err.message : String(err)})`;
    }
    return {
      phases,
      symbolsUs,
      guest: { ...recorder.markers },
      reason: result.reason,
      detail: result.detail,
      rip: '0x' + result.rip.toString(16),
      symbol,
      steps: req.mode === 'step' ? result.steps : 0,
      exits: result.exits,
      consoleLines: recorder.lines,
      traceLines: trace?.lines ?? 0,
      cmdline: built.cmdline,
      stopUs,
      ...(result.traceFromBy !== undefined ? { traceFromBy: result.traceFromBy } : {}),
      ...(result.traceFromNote !== undefined ? { traceFromNote: result.traceFromNote } : {}),
      ...(result.watchdog !== undefined ? { watchdog: result.watchdog } : {}),
      ...(result.windowStartUs !== undefined ? { windowStartUs: result.windowStartUs } : {}),
    };
  } finally {
    built.close();
  }
}

/** Runs every step, then throws the first error any of them threw. */
function closeAll(steps: (() => void)[]): void {
  let first: unknown;
  for (const step of steps) {
    try {
      step();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

if (parentPort) {
  try {
    post({ type: 'done', result: main(workerData as WorkerRequest) });
  } catch (err) {
    const user = err instanceof UserError || err instanceof KvmError;
    post({ type: 'error', message: user ? (err as Error).message : err instanceof Error ? (err.stack ?? err.message) : String(err), user });
  }
}
