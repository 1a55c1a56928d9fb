/**
 * `boot-trace export`: one streaming pass over the trace that rebuilds call stacks and writes them in a
 * viewer's format as frames close. Only the stack (bounded by maxDepth), the stack trie (one entry per
 * distinct stack) and, for Chrome, the system calls are held.
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../errors.js';
import { CallStacks, type StackListener } from '../../analyzers/call-stacks.js';
import { tee } from '../../analyzers/inclusive.js';
import { Syscalls } from '../../analyzers/syscalls.js';
import { readTrace, type ReadOptions } from '../trace/reader.js';
import { clockByKind, traceClock, type Clock } from '../output/clock.js';
import type { TraceVisitor } from '../trace/parser.js';
import { findCaptureFiles as captureFiles } from '../../capture/output/folder.js';
import { readProfile } from '../../capture/output/profile.js';
import { hostPhases } from './capture-files.js';
import { ChromeTraceWriter, GUEST, HOST, TRACKS } from './chrome.js';
import { writeCollapsed } from './collapsed.js';
import { readConsoleEvents } from './console-events.js';
import { TextSink } from './sink.js';
import { exportText } from './text.js';
import { SpeedscopeWriter } from './speedscope.js';
import { writeSampledSpeedscope } from './speedscope-sampled.js';
import { onGrid } from './ticks.js';
import { recordingPath } from '../trace/recording/read.js';

export type ExportFormat = 'chrome' | 'collapsed' | 'speedscope' | 'text';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['chrome', 'collapsed', 'speedscope', 'text'];

export interface ExportOptions extends ReadOptions {
  /** Output file; null or '-' for stdout. */
  output: string | null;
  /** Add console/profile tracks to a Chrome export when they sit beside the trace (default true). */
  sideTracks?: boolean;
  warn?: (line: string) => void;
  /** Chrome: leave out calls shorter than this (us). Default: 0 for a text trace, chosen for a recording. */
  minDurUs?: number;
  /** speedscope: 'evented' (every call in time order) or 'sampled' (identical stacks merged). Default: sampled for a recording. */
  speedscope?: 'evented' | 'sampled';
}

/**
 * A whole-boot Chrome export keeps at most this many calls (~100 bytes each: ~30 MB), far under the
 * ~512 M characters of a V8 string, which a browser viewer needs to read the file, and small enough for
 * speedscope to import in about a minute (docs/call-stacks.md).
 */
export const CHROME_CALL_BUDGET = 300_000;
/** The duration floors (us) a recording's Chrome export chooses from: the smallest that fits the budget. */
export const CHROME_FLOORS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000] as const;

export interface ExportResult {
  lines: number;
  events: number;
  stacks: number;
  bytes: number;
  /** Tracks added beside the call stacks (Chrome only). */
  tracks: string[];
  /** What the exported times mean. */
  clock: Clock;
}

export async function exportTrace(input: string, format: ExportFormat, o: ExportOptions): Promise<ExportResult> {
  if (format === 'text') return exportText(input, o); // a whole-boot recording as 2016 text: ./text.ts
  const trace = traceOf(input);
  const out = new TextSink(o.output);
  const name = trace === '-' ? '<stdin>' : basename(trace);
  let stacks: CallStacks | undefined;
  let syscalls: Syscalls | undefined;
  let chrome: ChromeTraceWriter | undefined;
  let speedscope: SpeedscopeWriter | undefined;
  const tracks: string[] = [];
  // A recording read on its instructions clock counts instructions (docs/clocks.md), whatever its folder says.
  const clock = o.clock === 'instructions' ? clockByKind('instructions') : traceClock(trace);
  if (clock.warning && format !== 'collapsed') o.warn?.(`boot-trace: ${name}: ${clock.warning}`);
  const recording = trace !== '-' && recordingPath(trace) !== null;
  const sampled = format === 'speedscope' && (o.speedscope ?? (recording ? 'sampled' : 'evented')) === 'sampled';
  const minDur = format !== 'chrome' ? 0 : (o.minDurUs ?? (recording ? await chromeFloor(trace, o) : 0));
  try {
    const result = await readTrace(trace, (functions) => {
      let listener: StackListener | undefined;
      if (format === 'chrome') listener = chrome = new ChromeTraceWriter(out, functions.names, `guest: ${name}`, clock, minDur);
      if (format === 'speedscope' && !sampled) listener = speedscope = new SpeedscopeWriter(out, functions.names, name, clock);
      stacks = new CallStacks(functions, { listener });
      let visitor: TraceVisitor = stacks;
      if (format === 'chrome') visitor = tee(stacks, (syscalls = new Syscalls(functions)));
      return visitor;
    }, o);
    stacks!.finish();
    if (format === 'collapsed') writeCollapsed(stacks!.trie, result.functions.names, out);
    if (format === 'speedscope' && !sampled) speedscope!.end(stacks!.clock);
    if (sampled) writeSampledSpeedscope(stacks!.trie, result.functions.names, out, name, clock);
    if (chrome && minDur > 0) {
      o.warn?.(`boot-trace: ${name}: chrome: ${chrome.shortCalls} calls shorter than ${minDur} us left out (their time shows in their callers; --min-dur-us sets the floor)`);
    }
    if (format === 'chrome') {
      addSyscalls(chrome!, syscalls!, tracks);
      if (o.sideTracks !== false && trace !== '-') await addCaptureTracks(chrome!, trace, clock, tracks, o.warn);
      chrome!.end();
    }
    out.close();
    return { lines: result.lines, events: result.events, stacks: stacks!.trie.size - 1, bytes: out.bytes, tracks, clock };
  } catch (err) {
    out.abort();
    throw err;
  }
}

/**
 * The smallest floor of CHROME_FLOORS that keeps a recording's Chrome export within CHROME_CALL_BUDGET
 * calls: a first pass over the recording (a few seconds for a boot) counts calls per floor.
 */
async function chromeFloor(trace: string, o: ExportOptions): Promise<number> {
  const counts = new Float64Array(CHROME_FLOORS.length);
  await readTrace(trace, (functions) => new CallStacks(functions, {
    listener: {
      open() {},
      close(_fn, start, end) {
        const d = onGrid(end) - onGrid(start);
        if (d <= 0) return;
        let i = CHROME_FLOORS.length - 1;
        while (CHROME_FLOORS[i]! > d) i--;
        counts[i]!++;
      },
    },
  }), { ...o, warn: () => {} });
  // counts[i] = calls in [floor i, floor i+1); calls kept by floor i = the sum from i up.
  let kept = 0;
  for (let i = CHROME_FLOORS.length - 1; i >= 0; i--) {
    if (kept + counts[i]! > CHROME_CALL_BUDGET) return CHROME_FLOORS[i + 1] ?? CHROME_FLOORS[i]!;
    kept += counts[i]!;
  }
  return 0;
}

/** A capture folder stands for its trace.log. */
export function traceOf(input: string): string {
  if (input === '-' || !statSync(input, { throwIfNoEntry: false })?.isDirectory()) return input;
  const trace = captureFiles(input).trace;
  if (!trace) throw new UserError(`${input}: no trace.log in this folder (capture with --mode step to get one)`);
  return trace;
}

function addSyscalls(chrome: ChromeTraceWriter, syscalls: Syscalls, tracks: string[]): void {
  const calls = syscalls.finish();
  if (calls.length === 0) return;
  chrome.meta(GUEST, TRACKS.syscalls, 'thread_name', 'system calls');
  for (const c of calls) {
    // A call that does not return and whose end was not seen (analyzers/syscalls.ts) is a moment, not a span.
    if (c.duration_us === null) chrome.instant(GUEST, TRACKS.syscalls, 'syscall', c.syscall, c.time_us, { from: c.user_address, returns: false });
    else chrome.span(GUEST, TRACKS.syscalls, 'syscall', c.syscall, c.time_us, c.duration_us, { from: c.user_address, complete: c.complete, ...(c.returns ? {} : { returns: false }) });
  }
  tracks.push(`syscalls (${calls.length})`);
}

/** Stages, markers and initcalls from console.log, host phases from profile.json, when beside the trace. */
async function addCaptureTracks(chrome: ChromeTraceWriter, trace: string, clock: Clock, tracks: string[], warn?: (line: string) => void): Promise<void> {
  const files = captureFiles(trace);
  const profile = files.profile ? readProfile(files.profile) : undefined;
  if (clock.unit !== 'us') {
    // The trace counts instructions; console and host phases are in microseconds: they would not line up.
    warn?.(`boot-trace: ${trace}: the trace's clock counts guest instructions, so console and host tracks are left out`);
    return;
  }
  if (files.console) {
    const c = await readConsoleEvents(files.console);
    if (c.markers.length > 0) {
      chrome.meta(GUEST, TRACKS.stages, 'thread_name', 'stages (BOOT_TIME)');
      c.markers.forEach((m, i) => {
        const start = i === 0 ? 0 : c.markers[i - 1]!.t;
        chrome.span(GUEST, TRACKS.stages, 'stage', m.name, start, m.t - start, { guest_ns: m.ns });
      });
      tracks.push(`stages (${c.markers.length})`);
    }
    if (c.markers.length + c.milestones.length > 0) {
      chrome.meta(GUEST, TRACKS.markers, 'thread_name', 'console markers');
      for (const m of [...c.markers, ...c.milestones]) chrome.instant(GUEST, TRACKS.markers, 'marker', m.name, m.t, m.ns !== undefined ? { guest_ns: m.ns } : undefined);
      tracks.push(`markers (${c.markers.length + c.milestones.length})`);
    }
    if (c.initcalls.length > 0) {
      // Asynchronous probes overlap without nesting, which a viewer cannot draw on one track: each goes on
      // the first lane (tid) where the previous initcall has ended.
      const laneEnds: number[] = [];
      const sorted = [...c.initcalls].sort((a, b) => a.start - b.start);
      for (const s of sorted) {
        let lane = laneEnds.findIndex((end) => end <= s.start);
        if (lane < 0) {
          lane = laneEnds.length;
          chrome.meta(GUEST, TRACKS.initcalls + lane, 'thread_name', lane === 0 ? 'initcalls' : `initcalls (overlapping, ${lane + 1})`);
        }
        laneEnds[lane] = Math.max(s.end, s.start);
        chrome.span(GUEST, TRACKS.initcalls + lane, 'initcall', s.name, s.start, s.end - s.start, { usecs: s.usecs });
      }
      tracks.push(`initcalls (${c.initcalls.length}${laneEnds.length > 1 ? ` on ${laneEnds.length} tracks` : ''})`);
    }
  }
  if (profile && Object.keys(profile.phases_us).length > 0) {
    const phases = hostPhases(profile);
    chrome.meta(HOST, 0, 'process_name', 'host: boot-trace VMM');
    chrome.meta(HOST, TRACKS.phases, 'thread_name', 'VMM phases');
    for (const p of phases) chrome.span(HOST, TRACKS.phases, 'phase', p.name, p.start, p.duration);
    tracks.push(`host phases (${phases.length})`);
  }
}
