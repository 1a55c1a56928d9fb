/**
 * The QEMU trace engine (`boot-trace capture --engine qemu --mode trace`): boots a kernel under QEMU's
 * TCG with boot-trace's plugin loaded (plugin/boot-trace-plugin.c) and records the boot from kernel
 * entry (or the firmware, or --trace-from) to power-off, reset or --trace-until into
 * OUT/recording.btr (format: src/trace/recording/format.ts), beside console.log and profile.json.
 *
 *   const r = await traceWithQemu({ kernel: 'vmlinuz', initrd, cmdline, memoryMiB: 512, outDir,
 *                                   timeoutS: 300, granularity: 'function' });
 *   r.profile.exit.reason        // 'shutdown' after the appliance powers off
 *   r.recordingFile              // what every trace analyzer reads
 *
 * QEMU is run by runQemu (../qemu-process.ts): serial through a FIFO, a timeout, abort on Ctrl-C, never
 * hangs. Facts relied on: docs/whole-boot.md (kernel entry at the bzImage's pref_address, the
 * physical alias of startup_64; plugin API v1 of QEMU 7.2).
 */
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../../../src/errors.js';
import { parseSystemMap } from '../../../src/symbols/system-map.js';
import { FOLDED_SYMBOLS, FORMAT_VERSION, type Compression, type Granularity, type PluginEnd, type RecordingHeader } from '../../../src/trace/recording/format.js';
import { finishRecording, startRecording } from '../../../src/trace/recording/write.js';
import { RECORDING_FILE } from '../../../src/trace/recording/read.js';
import { openRecording } from '../../../src/trace/recording/decode.js';
import { looksLikeBzImage, parseBzImage } from '../../boot/bzimage.js';
import { readKernelFile, sha256Hex } from '../../kernel/decompress.js';
import { kernelSystemMap } from '../../kernel/symbols.js';
import type { StopReason } from '../../exits.js';
import { qemuArgs } from '../qemu-args.js';
import { PARTIAL_LINE_MS, qemuInputs, qemuVersion, writeProfile, type QemuBaseOptions, type QemuProfileBase } from '../qemu-common.js';
import { runQemu, type QemuRunResult } from '../qemu-process.js';
import { pluginPath } from './plugin-build.js';
import { encodeSplits, splitsFromSystemMap } from './splits.js';
import { moduleSymbolsFromConsole } from './modules.js';

export interface QemuTraceOptions extends QemuBaseOptions {
  granularity: Granularity;
  /** A System.map for the kernel; default: decoded from the kernel's own kallsyms (cached). */
  systemMap?: string;
  /** Where recording starts: 'kernel' (default: kernel entry), 'firmware' (QEMU's first instruction), or a SYMBOL / hex ADDRESS. */
  from?: string;
  /** Stop recording at this SYMBOL, hex ADDRESS, or marker:STAGE (the appliance's BOOT_TIME:STAGE console line). */
  until?: string;
  /** Stop recording after this many guest instructions. */
  maxSteps?: number;
  /** Show the recording's progress on a TTY (default true; never when echoing the console). */
  progress?: boolean;
  /** How the plugin compresses record frames (default zlib level 1; see the plugin's header comment). */
  compression?: Compression;
}

export interface QemuTraceProfile extends QemuProfileBase {
  mode: 'trace';
  clock: 'host+instructions';
  granularity: Granularity;
  phases: Record<string, number>;
  exit: { reason: StopReason; rip: null; symbol: null; detail: string; qemu_status: number | null; qemu_signal: string | null };
  recording: { file: string; bytes: number; records: number; instructions: number; plugin: PluginEnd | null; cut: string | null };
  steps: number;
  trace_lines: number;
}

export interface QemuTraceResult {
  outDir: string;
  profile: QemuTraceProfile;
  profileFile: string;
  consoleFile: string;
  recordingFile: string;
  failed: boolean;
}

/** A whole-boot trace cannot be had here; the default main job boots plainly instead (src/commands/capture-trace.ts). */
export class TraceUnavailable extends UserError {}
/** QEMU refused the plugin (built without plugin support, or another plugin API version). */
export class PluginUnsupported extends TraceUnavailable {}

/** Linux's default physical load address (CONFIG_PHYSICAL_START) when the image does not say. */
const DEFAULT_LOAD = 0x1000000n;

export async function traceWithQemu(o: QemuTraceOptions): Promise<QemuTraceResult> {
  // Plugins run only under TCG: the accelerator is not a choice here.
  const { qemu, kernel, initrd } = qemuInputs({ ...o, accel: 'tcg' }, 'tcg');
  const so = pluginPath();
  const mapText = o.systemMap !== undefined ? readFileSync(o.systemMap, 'latin1') : await kallsymsOf(kernel);
  const table = parseSystemMap(mapText, o.systemMap ?? `${kernel} (kallsyms)`);

  const image = readKernelFile(kernel);
  const load = looksLikeBzImage(image) ? parseBzImage(image, kernel).prefAddress || DEFAULT_LOAD : DEFAULT_LOAD;
  const text = table.resolve('_text') ?? table.resolve('startup_64');
  const etext = table.resolve('_etext');
  if (text === undefined) throw new UserError(`${o.systemMap ?? kernel}: no _text or startup_64 symbol: not a Linux kernel's symbols`);
  const startupVirt = table.resolve('startup_64') ?? text;
  const entryPhys = load + (startupVirt - text);

  let from: RecordingHeader['start'];
  let fromArg: bigint;
  if (o.from === undefined || o.from === 'kernel') {
    from = { address: hex(entryPhys), symbol: 'startup_64 (physical alias)' };
    fromArg = entryPhys;
  } else if (o.from === 'firmware') {
    from = 'firmware';
    fromArg = 0n;
  } else {
    fromArg = addressOf(o.from, table, '--trace-from');
    from = { address: hex(fromArg), symbol: o.from };
  }
  let until: RecordingHeader['until'] = null;
  let untilArg = 0n;
  let untilMarker: string | null = null;
  if (o.until !== undefined) {
    if (o.until.startsWith('marker:')) {
      untilMarker = o.until.slice('marker:'.length);
      if (!/^\w+$/.test(untilMarker)) throw new UserError(`--trace-until ${o.until}: give marker:STAGE with a BOOT_TIME stage name, e.g. marker:ready`);
      until = { address: '', symbol: o.until };
    } else {
      untilArg = addressOf(o.until, table, '--trace-until');
      until = { address: hex(untilArg), symbol: o.until };
    }
  }
  if (o.maxSteps !== undefined && !(Number.isInteger(o.maxSteps) && o.maxSteps > 0)) throw new UserError(`--max-steps ${o.maxSteps}: give a positive whole number`);

  const outDir = resolve(o.outDir);
  mkdirSync(outDir, { recursive: true });
  const consoleFile = join(outDir, 'console.log');
  const profileFile = join(outDir, 'profile.json');
  const recordingFile = join(outDir, RECORDING_FILE);
  const version = qemuVersion(qemu);
  const work = mkdtempSync(join(tmpdir(), 'boot-trace-trace-'));
  try {
    const splitsFile = join(work, 'splits.bin');
    writeFileSync(splitsFile, encodeSplits(splitsFromSystemMap(mapText)));
    const pluginArgs = [
      `out=${recordingFile}`, `splits=${splitsFile}`, `gran=${o.granularity}`, `from=${fromArg.toString(16)}`,
      ...(fromArg !== 0n ? [`alias=${load.toString(16)}:${(load + ((etext ?? text + 0x2000000n) - text)).toString(16)}:${text.toString(16)}`] : []),
      ...(untilArg !== 0n ? [`until=${untilArg.toString(16)}`] : []),
      ...(o.maxSteps !== undefined ? [`max=${o.maxSteps}`] : []),
      `compress=${o.compression ?? 'zlib'}`,
    ];
    const extra = ['-plugin', [so, ...pluginArgs].map((a) => a.replaceAll(',', ',,')).join(','), ...(o.extraArgs ?? [])];
    const args = (serial: string): string[] => qemuArgs({ kernel, ...(initrd ? { initrd } : {}), cmdline: o.cmdline, memoryMiB: o.memoryMiB, accel: 'tcg', serial, extraArgs: extra });
    const header: RecordingHeader = {
      format: 'boot-trace recording',
      version: FORMAT_VERSION,
      granularity: o.granularity,
      kernel: { path: kernel, sha256: sha256Hex(image), release: kernelRelease(image) },
      qemu: { version, args: args('SERIAL') },
      kernel_cmdline: o.cmdline,
      command: process.argv.slice(1),
      created: new Date().toISOString(),
      clocks: {
        host: { unit: 'ns', origin: 'the plugin\'s start (QEMU start), less the time the plugin waited for its writer thread' },
        instructions: { unit: 'instructions', origin: 'the recording\'s start; a block counts whole when it starts' },
      },
      start: from,
      until,
      max_steps: o.maxSteps ?? null,
      folded: FOLDED_SYMBOLS.source,
      symbols: { source: o.systemMap ?? 'kallsyms', count: table.size },
    };
    startRecording(recordingFile, header, mapText);

    // marker:STAGE: stop QEMU when the console shows the stage's BOOT_TIME line.
    const stop = new AbortController();
    let markerSeen = false;
    const onAbort = (): void => stop.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.signal?.aborted) stop.abort();
    const userEcho = o.echo === true ? (t: string) => void process.stderr.write(t) : o.echo || undefined;
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
    const poll = untilArg !== 0n || o.maxSteps !== undefined
      ? setInterval(() => {
        const r = pluginStop(recordingFile);
        if (r && !pluginStopped) {
          pluginStopped = r;
          stop.abort();
        }
      }, 200)
      : undefined;
    // On a terminal: how much has been recorded so far (the boot takes seconds to a minute).
    const started = performance.now();
    const progress = process.stderr.isTTY && !o.echo && o.progress !== false
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
        qemu, args, consoleFile, timeoutS: o.timeoutS, ...(echo ? { echo } : {}), partialLineMs: PARTIAL_LINE_MS, signal: stop.signal,
      });
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      if (poll) clearInterval(poll);
      if (progress) {
        clearInterval(progress);
        process.stderr.write('\r\x1b[K');
      }
    }
    if (run.reason === 'internal-error' && run.consoleLines === 0) {
      const first = (run.messages.split('\n').find((l) => l.trim()) ?? `exit status ${run.status}`).trim();
      rmSync(recordingFile, { force: true });
      if (/plugin/i.test(run.messages)) throw new PluginUnsupported(`${qemu} cannot load the tracing plugin (${first}): --mode trace needs a QEMU built with TCG plugin support (Debian 12's qemu-system-x86 has it)`);
      throw new UserError(`${qemu} failed before the guest ran: ${first}`);
    }
    let reason: StopReason = run.reason;
    let detail = describeEnd(run);
    if (markerSeen) [reason, detail] = ['trace-until', `the console showed BOOT_TIME:${untilMarker}; QEMU stopped`];
    else if (pluginStopped === 'until') [reason, detail] = ['trace-until', `${o.until} ran; QEMU stopped`];
    else if (pluginStopped === 'max-steps') [reason, detail] = ['max-steps', `${o.maxSteps} guest instructions recorded; QEMU stopped`];
    const consoleText = readFileSync(consoleFile, 'latin1');
    finishRecording(recordingFile, moduleSymbolsFromConsole(consoleText), { reason, detail });

    const rec = openRecording(recordingFile);
    const plugin = rec.pluginEnd;
    const profile: QemuTraceProfile = {
      engine: 'qemu',
      accel: 'tcg',
      qemu_version: version,
      qemu_args: run.args,
      kernel,
      initrd: initrd ?? null,
      cmdline: o.cmdline,
      memory_mib: o.memoryMiB,
      mode: 'trace',
      clock: 'host+instructions',
      granularity: o.granularity,
      phases: run.phases,
      guest: run.markers,
      exit: { reason, rip: null, symbol: null, detail, qemu_status: run.status, qemu_signal: run.signal },
      recording: {
        file: recordingFile, bytes: statSync(recordingFile).size, records: plugin?.records ?? 0, instructions: plugin?.instructions ?? 0,
        plugin, cut: rec.cut,
      },
      steps: plugin?.instructions ?? 0,
      trace_lines: plugin?.records ?? 0,
      console_lines: run.consoleLines,
      peak_rss_bytes: run.peakRss,
      peak_rss_source: run.peakRssSource,
    };
    writeProfile(profileFile, profile);
    return { outDir, profile, profileFile, consoleFile, recordingFile, failed: reason === 'internal-error' };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Summary lines for the capture command (`[boot-profile] ...`, like the other engines print). */
export function traceSummaryLines(p: QemuTraceProfile): string[] {
  const r = p.recording;
  const total = p.phases.total ?? 0;
  return [
    `[boot-profile] total: ${(total / 1e6).toFixed(2)} s (QEMU TCG with the tracing plugin, ${p.granularity} granularity)`,
    `[boot-profile] recording: ${r.records.toLocaleString('en-US')} records, ${r.instructions.toLocaleString('en-US')} guest instructions, ${(r.bytes / 1e6).toFixed(1)} MB${r.plugin && r.plugin.compression !== 'none' ? ` (${r.plugin.compression})` : ''}`,
    ...(r.cut ? [`[boot-profile] recording cut short: ${r.cut}`] : []),
    `[boot-profile] exit: ${p.exit.reason}: ${p.exit.detail}`,
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
