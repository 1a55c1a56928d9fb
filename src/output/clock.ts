/**
 * What a trace's (or a capture's) timestamps mean, for every output that shows a time: the unit in table
 * headings, speedscope's `unit`, the report's axes and headline, and the warning that single-stepping time
 * is not boot time. One place reads it, so a new profile schema changes this file only.
 *
 * The facts come from what capture writes (docs/trace-format.md, docs/capture.md):
 *   - the trace's header comments: `# mode: step ...` and `# clock: host (...)` or `# clock: steps (...)`;
 *   - profile.json: `mode` ('run' | 'step' | 'trace') and `clock` ('host' | 'steps' | 'instructions'), and for
 *     mode trace `trace.granularity`; a recording's own header frame gives its granularity (docs/whole-boot.md).
 * A trace without a header (the 2016 QEMU traces, other tools) is in microseconds, as the format says,
 * on a clock it does not name.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { constants, gunzipSync } from 'node:zlib';
import { openRecording } from '../trace/recording/decode.js';
import { recordingPath } from '../trace/recording/read.js';
import { detectFile } from '../import/index.js';
import { peekProfile } from '../../capture/output/profile.js';

export type ClockKind = 'host-running' | 'host-stepping' | 'host-whole-boot' | 'instructions' | 'blocks' | 'unspecified';

export interface Clock {
  kind: ClockKind;
  /** What one timestamp unit is: a microsecond, or one instruction step. */
  unit: 'us' | 'steps' | 'blocks';
  /** A short phrase for headings and axes: "host us while stepping", "guest instructions", ... */
  label: string;
  /** One sentence: what the numbers mean. */
  description: string;
  /** Set when the times need a caveat: not the guest's boot time (stepping time, instruction counts), or boot time with recording overhead in it. */
  warning: string | null;
  /** Whether the times are the boot's time as the host saw it (false: stepping time or instruction counts). */
  bootTime: boolean;
}

/** Host time one plugin record costs, measured for docs/whole-boot.md (recording overhead, ~36 ns a record). */
export const RECORD_COST_NS = 36;

const CLOCKS: Record<ClockKind, Clock> = {
  'host-running': {
    kind: 'host-running', unit: 'us', label: 'host us', bootTime: true,
    description: 'host microseconds since the VM (or QEMU) started, the guest running freely', warning: null,
  },
  'host-stepping': {
    kind: 'host-stepping', unit: 'us', label: 'host us while stepping', bootTime: false,
    description: 'host microseconds while single-stepping the guest',
    warning: 'these are host microseconds while single-stepping: every instruction traps to the VMM, so the times are stepping time (tens of times slower than the guest runs), not boot time; compare them with each other, not with a boot',
  },
  'host-whole-boot': {
    kind: 'host-whole-boot', unit: 'us', label: 'host us (QEMU TCG)', bootTime: true,
    description: 'host microseconds since QEMU started, a whole boot under QEMU TCG recorded by the plugin (slower than under KVM: TCG translates every block)',
    warning: null,
  },
  instructions: {
    kind: 'instructions', unit: 'steps', label: 'guest instructions', bootTime: false,
    description: 'guest instructions (the timestamp is the exact count of guest instructions executed)',
    warning: 'these times are guest instruction counts (--clock instructions; capture calls it --clock steps), not time: nothing here is boot time',
  },
  // QEMU's -d exec log has no clock: the importer (src/import/qemu-exec.ts) numbers the blocks run, and says so on stderr.
  blocks: {
    kind: 'blocks', unit: 'blocks', label: 'blocks run', bootTime: false,
    description: 'block counts (QEMU -d exec has no clock: the timestamp is the index of the block run)', warning: null,
  },
  unspecified: {
    kind: 'unspecified', unit: 'us', label: 'us', bootTime: true,
    description: 'microseconds (the trace does not name its clock)', warning: null,
  },
};

/** The whole-boot host clock at a granularity: block and instruction recordings carry recording overhead. */
function wholeBootClock(granularity: string | undefined): Clock {
  const c = CLOCKS['host-whole-boot'];
  if (granularity !== 'block' && granularity !== 'instruction') return c;
  return {
    ...c,
    description: `${c.description}, recorded at ${granularity} granularity`,
    warning: `at ${granularity} granularity the host-clock self times include the recording's own overhead (about ${RECORD_COST_NS} ns per record, so functions with many short ${granularity === 'block' ? 'blocks' : 'instructions'} look slower); for exact costs use --clock instructions`,
  };
}

/** The capture facts the clock depends on; `profile` is profile.json as parsed (any schema). */
export interface ClockSources {
  /** The trace's leading `#` comment lines, without the "# ". */
  header?: readonly string[];
  profile?: { mode?: unknown; clock?: unknown; trace?: unknown } | undefined;
  /** A whole-boot recording's granularity ('function' | 'block' | 'instruction'), when known from its header. */
  granularity?: string;
  /** Whether the times asked about are the trace's (default) or the console's. */
  of?: 'trace' | 'console';
}

/**
 * The clock of a trace or console from what its capture recorded. The trace header wins over the profile
 * (it travels with the trace when the file is copied alone). Never throws: an unknown value is 'unspecified'.
 */
export function clockOf(s: ClockSources): Clock {
  let clock: string | undefined;
  let mode: string | undefined;
  let headerGranularity: string | undefined;
  for (const line of s.header ?? []) {
    const c = /^clock:\s*(\w+)/.exec(line);
    if (c) clock = c[1];
    const m = /^mode:\s*(\w+)/.exec(line);
    if (m) mode = m[1];
    const g = /granularity:\s*(\w+)/.exec(line);
    if (g) headerGranularity = g[1];
  }
  const p = s.profile;
  if (clock === undefined && typeof p?.clock === 'string') clock = p.clock;
  if (mode === undefined && typeof p?.mode === 'string') mode = p.mode;
  const tr = p?.trace;
  const granularity = s.granularity ?? headerGranularity ?? (tr && typeof tr === 'object' && typeof (tr as { granularity?: unknown }).granularity === 'string' ? (tr as { granularity: string }).granularity : undefined);
  if (mode === 'trace') {
    // A whole-boot recording (docs/whole-boot.md): both clocks are in it; the console is on the host clock.
    if ((clock === 'instructions' || clock === 'steps') && s.of !== 'console') return CLOCKS.instructions;
    return s.of === 'console' ? CLOCKS['host-whole-boot'] : wholeBootClock(granularity);
  }
  if (clock === 'steps' || clock === 'instructions' || clock === 'icount') {
    // The console of a steps-clock capture is still on the host clock (capture/console.ts).
    if (s.of !== 'console') return CLOCKS.instructions;
    return mode === 'step' ? CLOCKS['host-stepping'] : CLOCKS['host-running'];
  }
  if (clock === 'host') return mode === 'run' ? CLOCKS['host-running'] : CLOCKS['host-stepping'];
  if (mode === 'step') return CLOCKS['host-stepping'];
  if (mode === 'run') return CLOCKS['host-running'];
  return CLOCKS.unspecified;
}

/** A clock by kind (for tests and callers that already know it). */
export const clockByKind = (kind: ClockKind): Clock => CLOCKS[kind];

/**
 * The leading `#` comment lines of a trace file (plain or .gz), from its first 64 KiB; [] for stdin ('-'),
 * an unreadable file or a trace without a header. Reading the header never fails a command: the trace
 * reader reports a bad file itself.
 */
export function readTraceHeader(path: string): string[] {
  if (path === '-') return [];
  let head: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
    } finally {
      closeSync(fd);
    }
    // gzip magic: inflate what the first block holds, without needing the rest of the stream.
    if (head[0] === 0x1f && head[1] === 0x8b) head = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of head.toString('utf8').split('\n')) {
    const l = line.replace(/\r$/, '');
    if (l.startsWith('#')) out.push(l.replace(/^#\s?/, ''));
    else if (l.trim() !== '') break;
  }
  return out;
}


/**
 * The clock of a trace file: its header, else the profile.json of the capture folder it sits in (only for a
 * capture's own `trace.log`, as src/export/capture-files.ts pairs them). Never throws.
 */
export function traceClock(tracePath: string): Clock {
  // A whole-boot recording (a capture folder or its recording.bin): mode trace, at its header's granularity.
  const recording = recordingPath(tracePath);
  if (recording !== null) {
    let granularity: string | undefined;
    try {
      granularity = openRecording(recording).header.granularity;
    } catch {
      granularity = undefined; // the reader reports a bad recording itself
    }
    return clockOf({ profile: { mode: 'trace', clock: 'host' }, ...(granularity ? { granularity } : {}) });
  }
  // A foreign format without a clock (QEMU -d exec): its times are block counts (src/import/qemu-exec.ts).
  if (tracePath !== '-' && !tracePath.endsWith('.gz')) {
    try {
      if (detectFile(tracePath) === 'qemu-exec') return CLOCKS.blocks;
    } catch {
      // unreadable: the reader reports it
    }
  }
  const header = readTraceHeader(tracePath);
  // No profile beside it, or not ours: the header alone decides.
  const profile = tracePath !== '-' && /(^|\/)trace\.log(\.gz)?$/.test(tracePath) ? peekProfile(dirname(tracePath)) : undefined;
  return clockOf({ header, profile });
}
