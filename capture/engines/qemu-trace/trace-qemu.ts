/**
 * The QEMU trace engine (`boot-trace capture --engine qemu --mode trace`): boots a kernel under QEMU's
 * TCG with boot-trace's plugin loaded (plugin/boot-trace-plugin.c) and records the boot from kernel
 * entry (or the firmware, or --trace-from) to power-off, reset or --trace-until into
 * OUT/recording.btr (format: src/trace/recording/format.ts), beside console.log and profile.json.
 *
 * As an engine (capture/engines/engine.ts) it is qemuTraceEngine(), registered for --engine qemu --mode
 * trace; runCapture runs it and writes profile.json with its `trace` part.
 *
 * QEMU is run by runQemu (../qemu-process.ts): serial through a FIFO, a timeout, abort on Ctrl-C, never
 * hangs. Facts relied on: docs/whole-boot.md (kernel entry at the bzImage's pref_address, the
 * physical alias of startup_64; plugin API v1 of QEMU 7.2).
 */
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { messageOf, UserError } from '../../../src/errors.js';
import { parseSystemMap } from '../../../src/symbols/system-map.js';
import { FOLDED_SYMBOLS, FORMAT_VERSION, GRANULARITIES, type Compression, type Granularity, type RecordingHeader } from '../../../src/trace/recording/format.js';
import { finishRecording, startRecording } from '../../../src/trace/recording/write.js';
import { openRecording } from '../../../src/trace/recording/decode.js';
import { looksLikeBzImage, parseBzImage } from '../../boot/bzimage.js';
import { readKernelFile, sha256Hex } from '../../kernel/decompress.js';
import { kernelSystemMap } from '../../kernel/symbols.js';
import { CONSOLE_FILE, RECORDING_FILE } from '../../output/folder.js';
import type { StopReason, TracePart } from '../../output/profile.js';
import { markersToUs, type CaptureEngine, type EngineOutcome, type EngineRequest } from '../engine.js';
import { qemuArgs } from '../qemu/qemu-args.js';
import { PARTIAL_LINE_MS, QEMU_DEFAULT_CMDLINE, qemuInputs, qemuVersion } from '../qemu/qemu-common.js';
import { runQemu, type QemuRunResult } from '../qemu/qemu-process.js';
import { chooseTraceQemu } from './qemu-choice.js';
import { pluginApiFor, pluginPath } from './plugin-build.js';
import { encodeSplits, splitsFromSystemMap } from './splits.js';
import { moduleSymbolsFromConsole } from './modules.js';

/** What the trace engine takes besides the common request (tests and benchmarks). */
export interface QemuTraceSettings {
  /** The QEMU binary (a name looked up on PATH, or a path); default $BOOT_TRACE_QEMU, else the cached QEMU 10, else qemu-system-x86_64 (qemu-choice.ts). */
  qemu?: string;
  /** More QEMU arguments, appended as given. */
  extraArgs?: readonly string[];
  /** How the plugin compresses record frames (default zlib level 1; see the plugin's header comment). */
  compression?: Compression;
}

/** The profile's `trace` part (capture/output/profile.ts TracePart). */
export type { TracePart } from '../../output/profile.js';

/** A whole-boot trace cannot be had here; the default main job boots plainly instead (src/commands/capture.ts). */
export class TraceUnavailable extends UserError {}
/** QEMU refused the plugin (built without plugin support, or another plugin API version). */
export class PluginUnsupported extends TraceUnavailable {}

/** Linux's default physical load address (CONFIG_PHYSICAL_START) when the image does not say. */
const DEFAULT_LOAD = 0x1000000n;

/** The QEMU engine in trace mode (registered in ../registry.ts). */
export function qemuTraceEngine(s: QemuTraceSettings = {}): CaptureEngine {
  return {
    name: 'qemu',
    modes: ['trace'],
    defaultCmdline: QEMU_DEFAULT_CMDLINE,
    check(r) {
      if (r.blockIrq) throw new UserError('--block-irq applies to step mode');
      if (r.granularity !== undefined && !(GRANULARITIES as readonly string[]).includes(r.granularity)) {
        throw new UserError(`--granularity ${r.granularity}: unknown; give ${GRANULARITIES.join(', ')}`);
      }
      if (r.maxSteps !== undefined && !(Number.isInteger(r.maxSteps) && r.maxSteps > 0)) throw new UserError(`--max-steps ${r.maxSteps}: give a positive whole number`);
      const { qemu } = qemuInputs({ kernel: r.kernel, ...(r.initrd !== undefined ? { initrd: r.initrd } : {}), timeoutS: r.timeoutS, accel: 'tcg', ...qemuOf(s) }, 'tcg');
      try {
        pluginPath(pluginApiFor(qemuVersion(qemu))); // no cc, or a build error: said before the output folder is touched
      } catch (err) {
        throw err instanceof UserError ? new TraceUnavailable(err.message) : err;
      }
    },
    run: (r) => runTrace(r, s),
  };
}

async function runTrace(r: EngineRequest, s: QemuTraceSettings): Promise<EngineOutcome> {
  // Plugins run only under TCG: the accelerator is not a choice here.
  const { qemu, kernel, initrd } = qemuInputs({ kernel: r.kernel, ...(r.initrd !== undefined ? { initrd: r.initrd } : {}), timeoutS: r.timeoutS, accel: 'tcg', ...qemuOf(s) }, 'tcg');
  const granularity: Granularity = (r.granularity as Granularity | undefined) ?? 'function';
  const version = qemuVersion(qemu);
  const chosenBy = chooseTraceQemu(s.qemu).chosenBy;
  const api = pluginApiFor(version);
  const so = pluginPath(api);
  const mapText = r.systemMap !== undefined ? readSymbolFile(r.systemMap) : await kallsymsOf(kernel);
  const table = parseSystemMap(mapText, r.systemMap ?? `${kernel} (kallsyms)`);

  const image = readKernelFile(kernel);
  const load = looksLikeBzImage(image) ? parseBzImage(image, kernel).prefAddress || DEFAULT_LOAD : DEFAULT_LOAD;
  const text = table.resolve('_text') ?? table.resolve('startup_64');
  const etext = table.resolve('_etext');
  if (text === undefined) throw new TraceUnavailable(`--mode trace needs the kernel's symbols: ${r.systemMap ?? kernel} has no _text or startup_64 symbol`);
  const startupVirt = table.resolve('startup_64') ?? text;
  const entryPhys = load + (startupVirt - text);

  let from: RecordingHeader['start'];
  let fromArg: bigint;
  if (r.traceFrom === undefined || r.traceFrom === 'kernel') {
    from = { address: hex(entryPhys), symbol: 'startup_64 (physical alias)' };
    fromArg = entryPhys;
  } else if (r.traceFrom === 'firmware') {
    from = 'firmware';
    fromArg = 0n;
  } else {
    fromArg = addressOf(r.traceFrom, table, '--trace-from');
    from = { address: hex(fromArg), symbol: r.traceFrom };
  }
  let until: RecordingHeader['until'] = null;
  let untilArg = 0n;
  let untilMarker: string | null = null;
  if (r.traceUntil !== undefined) {
    if (r.traceUntil.startsWith('marker:')) {
      untilMarker = r.traceUntil.slice('marker:'.length);
      if (!/^\w+$/.test(untilMarker)) throw new UserError(`--trace-until ${r.traceUntil}: give marker:STAGE with a BOOT_TIME stage name, e.g. marker:ready`);
      until = { address: '', symbol: r.traceUntil };
    } else {
      untilArg = addressOf(r.traceUntil, table, '--trace-until');
      until = { address: hex(untilArg), symbol: r.traceUntil };
    }
  }

  const outDir = resolve(r.outDir);
  const consoleFile = join(outDir, CONSOLE_FILE);
  const recordingFile = join(outDir, RECORDING_FILE);
  // QEMU 10: read the registers at each system call entry and at kernel_execve (the 'Y' frame).
  const sysEntry = api >= 4 ? table.resolve('entry_SYSCALL_64') : undefined;
  const kexec = api >= 4 ? table.resolve('kernel_execve') : undefined;
  const work = mkdtempSync(join(tmpdir(), 'boot-trace-trace-'));
  try {
    const splitsFile = join(work, 'splits.bin');
    writeFileSync(splitsFile, encodeSplits(splitsFromSystemMap(mapText)));
    const pluginArgs = [
      `out=${recordingFile}`, `splits=${splitsFile}`, `gran=${granularity}`, `from=${fromArg.toString(16)}`,
      ...(fromArg !== 0n ? [`alias=${load.toString(16)}:${(load + ((etext ?? text + 0x2000000n) - text)).toString(16)}:${text.toString(16)}`] : []),
      ...(untilArg !== 0n ? [`until=${untilArg.toString(16)}`] : []),
      ...(r.maxSteps !== undefined ? [`max=${r.maxSteps}`] : []),
      `compress=${s.compression ?? 'zlib'}`,
      ...(sysEntry !== undefined ? [`sysentry=${sysEntry.toString(16)}`] : []),
      ...(kexec !== undefined ? [`kexec=${kexec.toString(16)}`] : []),
    ];
    const extra = ['-plugin', [so, ...pluginArgs].map((a) => a.replaceAll(',', ',,')).join(','), ...(s.extraArgs ?? [])];
    const args = (serial: string): string[] => qemuArgs({ kernel, ...(initrd ? { initrd } : {}), cmdline: r.cmdline, memoryMiB: r.memoryMiB, accel: 'tcg', serial, extraArgs: extra });
    const header: RecordingHeader = {
      format: 'boot-trace recording',
      version: FORMAT_VERSION,
      granularity,
      kernel: { path: kernel, sha256: sha256Hex(image), release: kernelRelease(image) },
      qemu: { version, args: args('SERIAL') },
      kernel_cmdline: r.cmdline,
      command: process.argv.slice(1),
      created: new Date().toISOString(),
      clocks: {
        host: { unit: 'ns', origin: 'the plugin\'s start (QEMU start), less the time the plugin waited for its writer thread' },
        instructions: { unit: 'instructions', origin: 'the recording\'s start; a block counts whole when it starts' },
      },
      start: from,
      until,
      max_steps: r.maxSteps ?? null,
      folded: FOLDED_SYMBOLS.source,
      symbols: { source: r.systemMap ?? 'kallsyms', count: table.size },
    };
    startRecording(recordingFile, header, mapText);

    // marker:STAGE: stop QEMU when the console shows the stage's BOOT_TIME line.
    const stop = new AbortController();
    let markerSeen = false;
    const onAbort = (): void => stop.abort(r.signal.reason);
    r.signal.addEventListener('abort', onAbort, { once: true });
    if (r.signal.aborted) onAbort();
    const userEcho = r.echo ? (t: string) => void process.stderr.write(t) : undefined;
    const echo = untilMarker === null ? userEcho : (t: string): void => {
      userEcho?.(t);
      if (!markerSeen && t.startsWith(`BOOT_TIME:${untilMarker}:`)) {
        markerSeen = true;
        stop.abort();
      }
    };
    // --trace-until ADDRESS / --max-steps: the plugin ends the recording with its end frame and QEMU
    // goes on; stop QEMU once that frame is in the file.
    let pluginStopped: 'until' | 'max-steps' | null = null;
    const poll = untilArg !== 0n || r.maxSteps !== undefined
      ? setInterval(() => {
        const end = pluginStop(recordingFile);
        if (end && !pluginStopped) {
          pluginStopped = end;
          stop.abort();
        }
      }, 200)
      : undefined;
    // On a terminal: how much has been recorded so far (the boot takes seconds to a minute).
    const started = performance.now();
    const progress = r.progress && process.stderr.isTTY && !r.echo
      ? setInterval(() => {
        let size = 0;
        try {
          size = statSync(recordingFile).size;
        } catch {
          /* not yet */
        }
        process.stderr.write(`\r\x1b[Kboot-trace: tracing the boot: ${((performance.now() - started) / 1000).toFixed(1)} s, ${(size / 1e6).toFixed(1)} MB recorded`);
      }, 250)
      : undefined;
    let run: QemuRunResult;
    try {
      run = await runQemu({
        qemu, args, consoleFile, timeoutS: r.timeoutS, ...(echo ? { echo } : {}), partialLineMs: PARTIAL_LINE_MS, signal: stop.signal,
      });
    } finally {
      r.signal.removeEventListener('abort', onAbort);
      if (poll) clearInterval(poll);
      if (progress) {
        clearInterval(progress);
        process.stderr.write('\r\x1b[K');
      }
    }
    if (run.reason === 'internal-error' && run.consoleLines === 0) {
      const first = (run.messages.split('\n').find((l: string) => l.trim()) ?? `exit status ${run.status}`).trim();
      rmSync(recordingFile, { force: true });
      if (/plugin/i.test(run.messages)) throw new PluginUnsupported(`${qemu} cannot load the tracing plugin (${first}): --mode trace needs a QEMU built with TCG plugin support (Debian 12's qemu-system-x86 has it)`);
      throw new UserError(`${qemu} failed before the guest ran: ${first}`);
    }
    let reason: StopReason = run.reason;
    let detail = describeEnd(run);
    if (markerSeen) [reason, detail] = ['trace-until', `the console showed BOOT_TIME:${untilMarker}; QEMU stopped`];
    else if (pluginStopped === 'until') [reason, detail] = ['trace-until', `${r.traceUntil} ran; QEMU stopped`];
    else if (pluginStopped === 'max-steps') [reason, detail] = ['max-steps', `${r.maxSteps} guest instructions recorded; QEMU stopped`];
    finishRecording(recordingFile, moduleSymbolsFromConsole(readFileSync(consoleFile, 'latin1')), { reason, detail });

    const rec = openRecording(recordingFile);
    const plugin = rec.pluginEnd;
    const trace: TracePart = {
      granularity,
      file: RECORDING_FILE,
      recording_mib: statSync(recordingFile).size / (1024 * 1024),
      records: plugin?.records ?? 0,
      instructions: plugin?.instructions ?? 0,
      compression: plugin?.compression ?? null,
      excluded_us: plugin ? plugin.excluded_ns / 1000 : null,
      start: typeof from === 'string' ? from : `${from.symbol} (${from.address})`,
      until: r.traceUntil ?? null,
      max_steps: r.maxSteps ?? null,
      plugin_end: plugin?.reason ?? null,
      cut: rec.cut,
      plugin_api: api,
      syscall_entries: rec.syscalls ? rec.syscalls.filter((e) => e.kind === 0).length : null,
      qemu: { binary: qemu, chosen_by: chosenBy, version },
    };
    return {
      cmdline: r.cmdline,
      phases_us: run.phases,
      guest_markers_us: markersToUs(run.markers),
      exit: { reason, rip: null, symbol: null, detail },
      console_lines: run.consoleLines,
      peak_rss_mib: run.peakRss === null ? null : run.peakRss / (1024 * 1024),
      peak_rss_source: run.peakRssSource,
      step: null,
      part: { qemu: { accel: 'tcg', version, args: run.args, status: run.status, signal: run.signal, gdbstub: null } },
      trace,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Lines for the capture command's stderr after a trace-mode capture. */
export function traceSummaryLines(t: TracePart): string[] {
  return [
    ...(t.qemu ? [`[boot-profile] qemu: ${t.qemu.version} (${t.qemu.binary}, chosen by ${t.qemu.chosen_by})`] : []),
    `[boot-profile] recording: ${t.records.toLocaleString('en-US')} records (${t.granularity} granularity), ${t.instructions.toLocaleString('en-US')} guest instructions, ${t.recording_mib.toFixed(1)} MiB${t.compression && t.compression !== 'none' ? ` (${t.compression})` : ''}`,
    ...(t.cut ? [`[boot-profile] recording cut short: ${t.cut}`] : []),
  ];
}

/** The reason in the plugin's end frame when it is the last thing in the file (the recording stopped early). */
function pluginStop(file: string): 'until' | 'max-steps' | null {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const n = Math.min(size, 1024);
    const tail = Buffer.alloc(n);
    readSync(fd, tail, 0, n, size - n);
    const text = tail.toString('latin1');
    const at = text.lastIndexOf('{"reason":"');
    if (at < 0 || !text.endsWith('}')) return null;
    const end = JSON.parse(text.slice(at)) as { reason: string };
    return end.reason === 'until' || end.reason === 'max-steps' ? end.reason : null;
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The QEMU to run (qemu-choice.ts): the setting, $BOOT_TRACE_QEMU, the cached QEMU 10, else PATH's. */
function qemuOf(s: QemuTraceSettings): { qemu?: string } {
  const c = chooseTraceQemu(s.qemu);
  return c.qemu !== undefined ? { qemu: c.qemu } : {};
}

function readSymbolFile(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch (err) {
    throw new UserError(`${path}: cannot read the symbol file (${messageOf(err)})`);
  }
}

async function kallsymsOf(kernel: string): Promise<string> {
  try {
    return (await kernelSystemMap(kernel)).text;
  } catch (err) {
    if (err instanceof UserError) throw new TraceUnavailable(`--mode trace needs the kernel's symbols: ${err.message} (give --system-map FILE)`);
    throw err;
  }
}

function addressOf(spec: string, table: ReturnType<typeof parseSystemMap>, option: string): bigint {
  if (/^(0x)?[0-9a-fA-F]{6,16}$/.test(spec)) return BigInt(spec.startsWith('0x') ? spec : '0x' + spec);
  const a = table.resolve(spec);
  if (a === undefined) throw new UserError(`${option} ${spec}: no such symbol in the kernel's symbols (give a symbol, a hex address${option === '--trace-until' ? ' or marker:STAGE' : ''})`);
  return a;
}

const hex = (a: bigint): string => a.toString(16);

/** "6.1.0-28-cloud-amd64" from the bzImage's kernel_version string, if it has one. */
function kernelRelease(image: Buffer): string | null {
  if (!looksLikeBzImage(image)) return null;
  try {
    const ptr = image.readUInt16LE(0x20e);
    const at = ptr + 0x200;
    const end = image.indexOf(0, at);
    const s = image.toString('latin1', at, end > at && end - at < 256 ? end : at + 64);
    return s.split(' ')[0] || null;
  } catch {
    return null;
  }
}

function describeEnd(r: QemuRunResult): string {
  const qemuEnd = r.signal ? `QEMU killed by ${r.signal}` : `QEMU exited with status ${r.status}`;
  switch (r.reason) {
    case 'shutdown': return `guest powered off${r.lastKernelEnd ? ` ("${r.lastKernelEnd}")` : ''}; ${qemuEnd}`;
    case 'reset': return `guest reset${r.lastKernelEnd ? ` ("${r.lastKernelEnd}")` : ''}, ended by -no-reboot; ${qemuEnd}`;
    case 'timeout': return `timeout: the guest neither powered off nor reset; ${qemuEnd}`;
    case 'interrupted': return `interrupted; ${qemuEnd}`;
    default: {
      const first = r.messages.split('\n').find((l) => l.trim());
      return `${qemuEnd}${first ? `: ${first.trim()}` : ''}`;
    }
  }
}
