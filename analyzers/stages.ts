/**
 * Boot stages as spans between console messages, the console-timestamp method of libguestfs boot-analysis:
 * a stage runs from the first message matching its begin pattern to the next message matching its end.
 * Times are the host stamp when the line has one (what the host saw), else the dmesg stamp.
 * Example console.log lines a stage reads:
 *   1201554.0 SeaBIOS (version 1.16.2-debian-1.16.2-1)
 *   1830112.5 [    0.000000] Linux version 6.1.0-56-cloud-amd64 ...
 *   4210337.1 BOOT_TIME:ready:2412000000
 */
import type { ConsoleMessage, ConsoleVisitor } from './console-lines.js';
import { FREEING_INITMEM, RUN_INIT } from './initcalls.js';

/**
 * A span's begin or end: a regex on the message text, or one of the console's landmarks:
 *   'kernel'   the kernel's first line (see isKernel below);
 *   'banner'   the kernel's own `Linux version` banner (not userspace's `cat /proc/version`);
 *   'firmware' the first line before the kernel's first line (SeaBIOS, SLOF, OVMF or unknown firmware).
 */
export type StagePattern = RegExp | 'kernel' | 'banner' | 'firmware';

export interface StageDef {
  name: string;
  begin: StagePattern;
  end: StagePattern;
}

export interface StageRow {
  name: string;
  start_us: number;
  duration_us: number;
  /** Share of the whole boot (0 to the last timed line), two decimals; null if that is zero. */
  percent: number | null;
  end_us: number;
}

export interface MissingStage {
  name: string;
  reason: string;
}

const POWER_OFF = /reboot: |Power down|System halted/;
/** The end of kernel init, every wording (analyzers/initcalls.ts): "Freeing unused kernel ... memory" or "Run /init". */
const KERNEL_INIT_END = new RegExp(`${FREEING_INITMEM.source}|${RUN_INIT.source}`);
/** Firmware that prints on the serial console, and how to know it. */
const FIRMWARE: [RegExp, string][] = [
  [/SeaBIOS \(version ([^)]*)\)/, 'SeaBIOS'],
  [/\bSLOF\b/, 'SLOF'],
  [/BdsDxe:|UEFI firmware|EDK II|OVMF/, 'OVMF'],
  [/OpenSBI (v\S+)/, 'OpenSBI'],
  [/U-Boot (\d{4}\.\d\d\S*)/, 'U-Boot'],
];

/**
 * The built-in table. 'kernel' means the first line the kernel printed: one with a dmesg stamp, or the
 * real-mode setup / decompressor / banner lines that come before printk has a clock.
 */
export const BUILTIN_STAGES: readonly StageDef[] = [
  { name: 'firmware', begin: 'firmware', end: 'kernel' },
  { name: 'kernel', begin: 'kernel', end: KERNEL_INIT_END },
  // Real-mode setup and decompression, up to start_kernel's banner (shown with earlyprintk or under SeaBIOS).
  { name: 'kernel:entry', begin: /Probing EDD|Decompressing Linux/, end: 'banner' },
  { name: 'kernel:initcalls-before-userspace', begin: /^(?:calling {1,2}\S|Calling initcall 0x)/, end: KERNEL_INIT_END },
  // With `quiet` the kernel's "Run /init" is hidden: the appliance's first marker says userspace runs.
  { name: 'userspace', begin: /Run \S+ as init process|^\/init\b|^BOOT_TIME:init_entry:/, end: POWER_OFF },
];

/** What a built-in or user pattern looks like in a note. */
export function describePattern(p: StagePattern): string {
  if (p === 'kernel') return 'the first kernel line';
  if (p === 'banner') return "the kernel's banner (Linux version, stamped or before userspace)";
  if (p === 'firmware') return "a firmware line before the kernel's first line (needs host stamps)";
  return `/${p.source}/`;
}

const KERNEL_BEFORE_PRINTK = /Linux version \d|Probing EDD|Decompressing Linux/;
const BANNER = /Linux version \d/;
/** Userspace has started once one of these is seen: the kernel's own lines can no longer be unstamped. */
const USERSPACE_STARTED = /^Run \S+ as init process|^\/init\b|BOOT_TIME:/;
/** The host's own tools writing into the same log (QEMU's warnings before the guest starts): not firmware. */
const HOST_TOOL = /^qemu-(?:system-)?\S+: /;
/** A kernel stamp this far (us) behind the latest one is a replay (userspace ran `dmesg`), not the kernel speaking. */
const REPLAY_US = 1_000_000;
const BOOT_TIME = /BOOT_TIME:([^:\s]+)/g;

/**
 * Parses `NAME:BEGIN_REGEX:END_REGEX`. A colon inside the name or a regex is written `\:`
 * (in a regex `\:` already means ':', so the regexes are used as written).
 */
export function parseStageSpec(spec: string): StageDef {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i]!;
    if (ch === '\\' && spec[i + 1] === ':') {
      cur += '\\:';
      i++;
    } else if (ch === ':') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  if (parts.length !== 3 || !parts[0]) {
    throw new Error(`--stage ${JSON.stringify(spec)}: expected NAME:BEGIN_REGEX:END_REGEX (write a colon inside one as \\:)`);
  }
  const regex = (src: string, what: string): RegExp => {
    if (!src) throw new Error(`--stage ${JSON.stringify(spec)}: empty ${what} pattern`);
    try {
      return new RegExp(src);
    } catch (err) {
      throw new Error(`--stage ${JSON.stringify(spec)}: bad ${what} regex: ${(err as Error).message}`);
    }
  };
  return { name: parts[0].replaceAll('\\:', ':'), begin: regex(parts[1]!, 'begin'), end: regex(parts[2]!, 'end') };
}

interface Tracker {
  def: StageDef;
  state: 'waiting' | 'open' | 'done';
  start: number;
  end: number;
  startLine: number;
  endLine: number;
  /** The kernel stamp of the begin / end line when it is a kernel line with one (see kernelZero), else null. */
  startK: number | null;
  endK: number | null;
}

export class Stages implements ConsoleVisitor {
  private readonly trackers: Tracker[];
  private readonly bootTime: { name: string; start: number; end: number | null }[] = [];
  private bootTimeOpen: { name: string; start: number; end: number | null } | null = null;
  private readonly bootTimeSeen = new Set<string>();
  /** The latest time seen: the boot span ends there (not at the last line: host stamps may go backwards). */
  private lastTime: number | null = null;
  private hostClock = false;
  private kernelSeen = false;
  private userspaceStarted = false;
  private maxKernelUs = -Infinity;
  private kernelLines = 0;
  private firmware: string | null = null;
  private firstUntimedFirmware: string | null = null;
  /**
   * Host time of kernel time 0, estimated as min over the kernel's lines of (host stamp - kernel stamp): a
   * line reaches the host no earlier than it is printed, so each difference is an upper bound, and lines
   * printed live make it tight. Printk buffers what comes before the console registers and writes it later
   * in one burst (the banner can reach the port hundreds of ms after start_kernel): such a line's host stamp
   * says when it was flushed, this estimate plus its kernel stamp says (at latest) when it was printed.
   * docs/console-analyzers.md "Kernel lines written late".
   */
  private kernelZero = Infinity;

  /** @param extra user stages; one with a built-in's name replaces it. */
  constructor(extra: readonly StageDef[] = []) {
    const names = new Set(extra.map((d) => d.name));
    const defs = [...BUILTIN_STAGES.filter((d) => !names.has(d.name)), ...extra];
    this.trackers = defs.map((def) => ({ def, state: 'waiting', start: 0, end: 0, startLine: 0, endLine: 0, startK: null, endK: null }));
  }

  message(m: ConsoleMessage): void {
    const text = m.text;
    // One clock per file: host stamps once any line has one (never mixed with kernel stamps), else printk's.
    if (m.hostUs !== null) this.hostClock = true;
    const t = this.hostClock ? m.hostUs : m.kernelUs;
    // The kernel's own line: stamped and not a replay, or (before printk has a clock, or with printk time
    // off) a setup/decompressor/banner line before userspace started.
    let isKernel: boolean;
    if (m.kernelUs !== null) {
      isKernel = m.kernelUs > this.maxKernelUs - REPLAY_US;
      if (isKernel) this.maxKernelUs = Math.max(this.maxKernelUs, m.kernelUs);
    } else isKernel = !this.userspaceStarted && KERNEL_BEFORE_PRINTK.test(text);
    if (USERSPACE_STARTED.test(text)) this.userspaceStarted = true;
    // Where the kernel starts: its lines before userspace. After it (a `quiet` boot shows only late warnings and
    // the power-off) a kernel line says nothing about when the kernel began.
    const kernelStart = isKernel && !this.userspaceStarted;
    if (kernelStart) this.kernelLines++;
    const stampK = isKernel && m.kernelUs !== null && m.hostUs !== null ? m.kernelUs : null;
    if (stampK !== null) this.kernelZero = Math.min(this.kernelZero, m.hostUs! - stampK);
    const isFirmware = !this.kernelSeen && !isKernel && !this.userspaceStarted && text.trim() !== '' && !HOST_TOOL.test(text);
    if (isFirmware && this.firmware === null) {
      for (const [re, name] of FIRMWARE) {
        const f = re.exec(text);
        if (f) this.firmware ??= f[1] ? `${name} ${f[1]}` : name;
      }
    }
    if (kernelStart) this.kernelSeen = true;
    if (t === null) {
      // A line without the file's clock cannot place a span.
      if (isFirmware && this.firstUntimedFirmware === null) this.firstUntimedFirmware = text.trim().slice(0, 40);
      return;
    }
    if (this.lastTime === null && !this.hostClock && kernelStart) {
      // printk's clock starts with the kernel: on the kernel clock the kernel stage begins at 0.
      for (const tr of this.trackers) if (tr.def.begin === 'kernel' && tr.state === 'waiting') Object.assign(tr, { state: 'open', start: 0, startLine: m.lineNo });
    }
    this.lastTime = Math.max(this.lastTime ?? 0, t);
    const matches = (p: StagePattern): boolean =>
      p === 'kernel' ? kernelStart : p === 'banner' ? kernelStart && BANNER.test(text) : p === 'firmware' ? isFirmware : p.test(text);
    for (const tr of this.trackers) {
      if (tr.state === 'open' && matches(tr.def.end)) {
        tr.state = 'done';
        tr.end = t;
        tr.endLine = m.lineNo;
        tr.endK = stampK;
      } else if (tr.state === 'waiting' && matches(tr.def.begin)) {
        tr.state = 'open';
        tr.start = t;
        tr.startLine = m.lineNo;
        tr.startK = stampK;
      }
    }
    if (text.includes('BOOT_TIME:')) {
      for (const mk of text.matchAll(BOOT_TIME)) {
        if (this.bootTimeOpen) this.bootTimeOpen.end = t;
        this.bootTimeOpen = null;
        const name = `BOOT_TIME:${mk[1]}`;
        if (this.bootTimeSeen.has(name)) continue;
        this.bootTimeSeen.add(name);
        this.bootTimeOpen = { name, start: t, end: null };
        this.bootTime.push(this.bootTimeOpen);
      }
    } else if (this.bootTimeOpen && POWER_OFF.test(text)) {
      this.bootTimeOpen.end = t;
      this.bootTimeOpen = null;
    }
  }

  /**
   * The spans, and what could not be placed with why. `notes` name the firmware and anything uncertain.
   * A span never has a negative duration (host stamps going backwards put it in `missing`), no percent is
   * above 100 (the boot span runs to the latest time seen).
   */
  result(): { rows: StageRow[]; missing: MissingStage[]; notes: string[] } {
    const spans: { name: string; start: number; end: number }[] = [];
    const missing: MissingStage[] = [];
    const notes: string[] = [];
    const hint = this.kernelLines === 0 ? ' (no kernel line before userspace on this console: booted with `quiet`?)' : '';
    if (this.lastTime !== null) spans.push({ name: 'boot', start: 0, end: this.lastTime });
    // On host stamps, a kernel stage (kernel, kernel:*) that begins at a kernel line, or a span that ends at
    // the kernel's first line or its banner,
    // is placed where that line was printed (at latest), not where the buffered console flushed it. Other
    // ends keep their host stamps: the kernel's clock may drift from the host's (docs/console-analyzers.md).
    let moved = 0;
    // A negative estimate (a kernel stamp beyond its host stamp) means the two clocks are not related as
    // assumed (host stamps reset or going backwards, a pasted log): the host stamps stand.
    if (this.hostClock && Number.isFinite(this.kernelZero) && this.kernelZero >= 0) {
      for (const tr of this.trackers) {
        if (tr.state === 'waiting') continue;
        const kernelStage = tr.def.name === 'kernel' || tr.def.name.startsWith('kernel:');
        if (kernelStage && tr.startK !== null && this.kernelZero + tr.startK < tr.start) {
          tr.start = this.kernelZero + tr.startK;
          moved++;
        }
        if (tr.state === 'done' && tr.endK !== null && (tr.def.end === 'kernel' || tr.def.end === 'banner') && this.kernelZero + tr.endK < tr.end) {
          tr.end = this.kernelZero + tr.endK;
          moved++;
        }
      }
      if (moved > 0) notes.push(`kernel time 0 at host ${(this.kernelZero / 1000).toFixed(3)} ms (min of host - kernel stamp over the kernel's lines): ${moved} span boundaries on kernel lines placed by it, not by when the console flushed them`);
    }
    for (const tr of this.trackers) {
      if (tr.state === 'done' && tr.end < tr.start) {
        missing.push({ name: tr.def.name, reason: `ends before it begins (line ${tr.endLine} is stamped earlier than line ${tr.startLine}: host stamps go backwards)` });
      } else if (tr.state === 'done') spans.push({ name: tr.def.name, start: tr.start, end: tr.end });
      else if (tr.state === 'waiting') {
        const untimed = tr.def.begin === 'firmware' && this.firstUntimedFirmware !== null ? ` with a time (firmware lines such as ${JSON.stringify(this.firstUntimedFirmware)} have no host stamp)` : '';
        missing.push({ name: tr.def.name, reason: `no line matches ${describePattern(tr.def.begin)}${untimed}${hint}` });
      } else missing.push({ name: tr.def.name, reason: `no line after its begin matches ${describePattern(tr.def.end)}${hint}` });
      if (tr.def.begin === 'firmware' && (tr.state !== 'waiting' || this.firmware !== null || this.firstUntimedFirmware !== null)) notes.push(`firmware: ${this.firmware ?? 'unknown firmware'}`);
    }
    for (const b of this.bootTime) {
      if (b.end !== null && b.end >= b.start) spans.push({ name: b.name, start: b.start, end: b.end });
      else if (b.end !== null) missing.push({ name: b.name, reason: 'ends before it begins (host stamps go backwards)' });
      else missing.push({ name: b.name, reason: 'no later BOOT_TIME marker or power-off line' });
    }
    const total = this.lastTime ?? 0;
    const rows = spans
      .map((s): StageRow => ({
        name: s.name,
        start_us: round(s.start),
        duration_us: round(s.end - s.start),
        percent: total > 0 ? Math.round(((s.end - s.start) / total) * 10000) / 100 : null,
        end_us: round(s.end),
      }))
      .sort((a, b) => a.start_us - b.start_us || b.duration_us - a.duration_us || a.name.localeCompare(b.name));
    return { rows, missing, notes };
  }
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

/**
 * A text timeline, one row per span boundary and one column per open span (a column is reused once its
 * span has ended), like the timeline of libguestfs boot-analysis:
 *        0.000 ms  ┬        boot
 *      631.112 ms  │ ┬      firmware
 */
export function renderTimeline(rows: readonly StageRow[]): string {
  type Ev = { t: number; kind: 'begin' | 'end'; row: StageRow; order: number };
  const events: Ev[] = [];
  rows.forEach((row, order) => {
    events.push({ t: row.start_us, kind: 'begin', row, order });
    events.push({ t: row.end_us, kind: 'end', row, order });
  });
  // At the same instant: ends before begins, so a finished span frees its column; longer spans open first.
  events.sort((a, b) => a.t - b.t || (a.kind === b.kind ? (a.kind === 'begin' ? a.order - b.order : b.order - a.order) : a.kind === 'end' ? -1 : 1));
  const lanes: (StageRow | null)[] = [];
  const laneOf = new Map<StageRow, number>();
  const lines: { t: number; cols: string; label: string }[] = [];
  const width = Math.max(0, ...rows.map((r) => (r.end_us / 1000).toFixed(3).length));
  // A span of zero length (two markers with one stamp) has its end sorted before its begin: hold such an end
  // back and print it right after its begin, so its column opens and closes on two adjacent rows.
  const ordered: Ev[] = [];
  const held = new Map<StageRow, Ev>();
  const begun = new Set<StageRow>();
  for (const ev of events) {
    if (ev.kind === 'end' && !begun.has(ev.row)) {
      held.set(ev.row, ev);
      continue;
    }
    ordered.push(ev);
    if (ev.kind === 'begin') {
      begun.add(ev.row);
      const end = held.get(ev.row);
      if (end) ordered.push(end);
    }
  }
  for (const ev of ordered) {
    let lane: number;
    if (ev.kind === 'begin') {
      lane = lanes.indexOf(null);
      if (lane < 0) lane = lanes.push(null) - 1;
      lanes[lane] = ev.row;
      laneOf.set(ev.row, lane);
    } else lane = laneOf.get(ev.row)!;
    const cols = lanes.map((r, i) => (i === lane ? (ev.kind === 'begin' ? '┬' : '┴') : r ? '│' : ' ')).join(' ');
    const label = ev.kind === 'begin' ? ev.row.name : `${ev.row.name} end (${(ev.row.duration_us / 1000).toFixed(3)} ms)`;
    lines.push({ t: ev.t, cols, label });
    if (ev.kind === 'end') lanes[lane] = null;
    while (lanes.length > 0 && lanes[lanes.length - 1] === null) lanes.pop();
  }
  const maxCols = Math.max(0, ...lines.map((l) => l.cols.length));
  return lines
    .map((l) => `${(l.t / 1000).toFixed(3).padStart(width)} ms  ${l.cols.padEnd(maxCols)}  ${l.label}`.trimEnd() + '\n')
    .join('');
}
