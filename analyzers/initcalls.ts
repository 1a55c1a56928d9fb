/**
 * initcall_debug output into one row per initcall and per device probe, with the kernel's own durations in
 * real microseconds. Every wording the kernel has used (docs/console-analyzers.md has the table and sources):
 *
 *   2.6.24-2.6.26 (init/main.c do_initcalls, `delta.tv64 >> 20` printed as "msecs"):
 *     Calling initcall 0xffffffff80ec1579: dock_init+0x0/0x78()
 *     initcall 0xffffffff80ec1579: dock_init+0x0/0x78() returned 0.
 *     initcall 0xffffffff80ec1579 ran for 15 msecs: dock_init+0x0/0x78()
 *   2.6.27-5.17 (do_one_initcall_debug / trace_initcall_finish_cb, `ktime_to_ns(delta) >> 10` printed as "usecs"),
 *   5.18 on ("init: use ktime_us_delta() to make initcall_debug log more precise", real microseconds):
 *     calling  init_hw_perf_events+0x0/0x683 @ 1
 *     initcall init_hw_perf_events+0x0/0x683 returned 0 after 4000 usecs
 *     calling  e1000_init_module+0x0/0x1000 [e1000e] @ 11258          (a module, loaded by modprobe)
 *   probes (drivers/base/dd.c really_probe_debug, ktime_to_us / ktime_us_delta: always real microseconds):
 *     probe of cpu0 returned 0 after 2996 usecs
 *     virtio_blk virtio1: probe with driver virtio_blk returned 0 after 4107 usecs
 *
 * The unit of the "usecs" figure is decided from the kernel's banner (`Linux version X.Y`, < 5.18: ns >> 10),
 * else from the printk stamps (a "usecs" kernel cannot have stamps shorter than figure x 1.024), and said in
 * the notes. Before the clocksource switch (`clocksource: Switched to clocksource`, an fs_initcall) ktime_get()
 * runs on jiffies: such figures are whole jiffies (0, 4000, 8000 at HZ=250); a row whose quantised figure
 * disagrees with the stamps carries both, and ranks by the stamps when they are below figure + one jiffy.
 *
 * A `calling` is paired with the return of the same function (not simply the next one), so two initcalls
 * running at once on different pids (async probing, modprobe) stay apart.
 */
import type { ConsoleMessage, ConsoleVisitor } from './console-lines.js';

export interface InitcallRow {
  /** Function name (without +0x../0x..), or `probe of DEV` for a device probe. */
  initcall: string;
  /** Module in brackets after the symbol, or null for built-in code. */
  module: string | null;
  /** When the initcall started (us): its `calling` line, or for a probe / an unpaired return: end minus duration. */
  start_us: number | null;
  /** The kernel's own figure in real microseconds (converted from its unit); null if it never returned (or the figure is unusable). */
  duration_us: number | null;
  /** Return code; null if it never returned. */
  ret: number | null;
  /** How many initcalls were open on the same pid when it started (probes: inside any open initcall). */
  depth: number;
  /** The pid from `@ pid`; null for probes, unpaired returns and the 2.6.24-26 wording (which prints none). */
  pid: number | null;
  /** Only on flagged rows: the duration the printk stamps give (return stamp minus calling stamp), us. */
  stamps_us?: number;
  /** Only on flagged rows: why the figure is uncertain and which figure ranks the row. */
  note?: string;
}

export interface InitcallSummary {
  /** Initcalls (not probes) that returned. */
  initcalls: number;
  probes: number;
  /** `calling` lines without a return in the log. */
  unfinished: number;
  /**
   * Sum of the kernel's durations of top-level built-in initcalls (pid 0 or 1, no module) that returned
   * before the end of kernel init (us). Module initcalls run by modprobe are userspace's.
   */
  top_level_sum_us: number;
  /** First `calling` to the end of kernel init ("Freeing unused kernel ... memory"), or null if either is missing. */
  span_us: number | null;
}

/** How the "usecs" figures were read. */
export type InitcallUnit = 'us' | 'ns>>10';

export interface InitcallResult {
  rows: InitcallRow[];
  summary: InitcallSummary;
  /** One line each: unit decisions, flagged figures, rejected numbers, modprobe initcalls; empty when all is plain. */
  notes: string[];
  /** The unit the "usecs" figures were taken in, and why. */
  unit: { unit: InitcallUnit; from: 'banner' | 'stamps' | 'default'; why: string };
  /** The kernel command line, when the console shows it (for explaining an empty result). */
  commandLine: string | null;
}

const NAME = String.raw`\.?([^\s+()]+)(?:\+0x[0-9a-f]+\/0x[0-9a-f]+)?`;
const CALLING = new RegExp(String.raw`^calling {1,2}${NAME}(?: \[([^\]\s]+)\])? @ (\d+)`);
const RETURNED = new RegExp(String.raw`^initcall ${NAME}(?: \[([^\]\s]+)\])? returned (-?\d+) after (\d+) usecs`);
// 2.6.24-2.6.26.
const OLD_CALLING = /^Calling initcall (0x[0-9a-f]+)(?:: (?:\.?([^\s+()]+)(?:\+0x[0-9a-f]+\/0x[0-9a-f]+)?\(\)))?/;
const OLD_RETURNED = /^initcall (0x[0-9a-f]+)(?:: \S+)? returned (-?\d+)\./;
const OLD_RAN_FOR = /^initcall (0x[0-9a-f]+) ran for (\d+) msecs(?:: \.?([^\s+()]+))?/;
// 6.1: "probe of DEV returned N after T usecs"; later kernels: "DRV DEV: probe with driver DRV returned N after T usecs".
const PROBE = /(?:^probe of (\S+)|^\S+ (\S+): probe with driver \S+) returned (-?\d+) after (\d+) usecs/;
/**
 * The end of the kernel's own work, every wording: "Freeing unused kernel memory" (before 4.18, and other
 * architectures), "Freeing unused kernel image memory" (x86 4.18-5.9), "Freeing unused kernel image (initmem)
 * memory" (x86 5.10 on).
 */
export const FREEING_INITMEM = /Freeing unused kernel (?:image (?:\(initmem\) )?)?memory/;
/** The kernel starting init (4.x on): "Run /init as init process", "Run /sbin/init as init process". */
export const RUN_INIT = /^Run \S+ as init process/;
const BANNER = /^Linux version (\d+)\.(\d+)/;
const SWITCHED = /^clocksource: Switched to clocksource /;
const COMMAND_LINE = /^(?:Kernel )?[Cc]ommand line: (.*)$/;
/** ns >> 10 read as microseconds: 1024 / 1000. */
const NS_SHR_10 = 1.024;
/** ns >> 20 read as milliseconds, in microseconds: 2^20 / 1000. */
const NS_SHR_20_US = 1048.576;
/** Jiffy lengths (us) of the common HZ values 100, 250, 300, 1000, longest first. */
const JIFFIES_US = [10_000, 4000, 10_000 / 3, 1000];

interface Open {
  row: InitcallRow;
  key: string;
}

/** A row's working facts, kept beside it until result(). */
interface Facts {
  row: InitcallRow;
  /** The figure as printed, and its kind: 'usecs' (unit decided later), 'msecs' (ns >> 20), 'probe' (real us). */
  figure: number | null;
  kind: 'usecs' | 'msecs' | 'probe';
  startStamp: number | null;
  endStamp: number | null;
  /** Returned before the clocksource switch (ktime_get on jiffies), as far as the log shows. */
  beforeSwitch: boolean;
  /** Returned before the end of kernel init. */
  beforeUserspace: boolean;
  /** The innermost initcall open when a probe ran. */
  parent: Facts | null;
  badFigure: string | null;
  /** For probes and returns without a `calling`: the time of the return line; start = it minus the duration. */
  endT: number | null;
}

export class Initcalls implements ConsoleVisitor {
  private readonly facts: Facts[] = [];
  private readonly byRow = new Map<InitcallRow, Facts>();
  /** Open initcalls per pid, innermost last (-1: the 2.6.24-26 wording, keyed by address). */
  private readonly open = new Map<number, Open[]>();
  private firstCalling: number | null = null;
  private kernelInitEnd: number | null = null;
  private initDone = false;
  private lastOpened: Open | null = null;
  private switched = false;
  private version: [number, number] | null = null;
  private commandLine: string | null = null;
  private readonly notes: string[] = [];
  /** Returns of "usecs" initcalls, in the order they returned. */
  private readonly returns: Facts[] = [];

  message(m: ConsoleMessage): void {
    const text = m.text;
    const t = m.kernelUs ?? m.hostUs;
    if (text.startsWith('calling ')) {
      const c = CALLING.exec(text);
      if (c) this.opened(c[1]!, c[2] ?? null, Number(c[3]), m.kernelUs, t);
      return;
    }
    if (text.startsWith('initcall ')) {
      const r = RETURNED.exec(text);
      if (r) {
        this.returned(key(r[1]!, r[2]), r[1]!, r[2] ?? null, Number(r[3]), r[4]!, 'usecs', m, t);
        return;
      }
      const old = OLD_RAN_FOR.exec(text);
      if (old) {
        this.returned(old[1]!, old[3] ?? old[1]!, null, null, old[2]!, 'msecs', m, t);
        return;
      }
      const oldRet = OLD_RETURNED.exec(text);
      if (oldRet) {
        const entry = this.find(oldRet[1]!);
        if (entry) entry.row.ret = Number(oldRet[2]);
      }
      return;
    }
    if (text.startsWith('Calling initcall ')) {
      const c = OLD_CALLING.exec(text);
      // No pid in this wording: do_initcalls ran them one by one in the init thread.
      if (c) this.opened(c[2] ?? c[1]!, null, -1, m.kernelUs, t, c[1]!);
      return;
    }
    if (text.includes('probe')) {
      const p = PROBE.exec(text);
      if (p) {
        this.probe(`probe of ${p[1] ?? p[2]}`, Number(p[3]), p[4]!, m, t);
        return;
      }
    }
    if (this.version === null) {
      const b = BANNER.exec(text);
      // The kernel's banner: stamped, or before anything else the kernel said; never userspace's /proc/version.
      if (b && (m.kernelUs !== null || this.facts.length === 0) && !this.initDone) this.version = [Number(b[1]), Number(b[2])];
    }
    if (!this.switched && SWITCHED.test(text)) this.switched = true;
    if (this.commandLine === null) {
      const cl = COMMAND_LINE.exec(text);
      if (cl) this.commandLine = cl[1]!.trim();
    }
    if (!this.initDone && (FREEING_INITMEM.test(text) || RUN_INIT.test(text))) {
      this.initDone = true;
      if (t !== null) this.kernelInitEnd = t;
    }
  }

  private opened(name: string, module: string | null, pid: number, kernelUs: number | null, t: number | null, k = key(name, module ?? undefined)): void {
    const stack = this.open.get(pid) ?? [];
    this.open.set(pid, stack);
    const row: InitcallRow = { initcall: name, module, start_us: t, duration_us: null, ret: null, depth: stack.length, pid: pid < 0 ? null : pid };
    const entry = { row, key: k };
    stack.push(entry);
    this.add({ row, figure: null, kind: 'usecs', startStamp: kernelUs, endStamp: null, beforeSwitch: false, beforeUserspace: false, parent: null, badFigure: null, endT: null });
    this.lastOpened = entry;
    if (this.firstCalling === null && t !== null) this.firstCalling = t;
  }

  private returned(k: string, name: string, module: string | null, ret: number | null, digits: string, kind: 'usecs' | 'msecs', m: ConsoleMessage, t: number | null): void {
    const figure = usable(digits);
    const entry = this.close(k);
    const row = entry ?? this.unpaired(name, module, t, kind);
    const f = this.byRow.get(row)!;
    if (ret !== null) row.ret = ret;
    else row.ret ??= 0;
    f.kind = kind;
    f.figure = figure;
    f.endStamp = m.kernelUs;
    f.beforeSwitch = !this.switched;
    f.beforeUserspace = !this.initDone;
    if (kind === 'usecs') this.returns.push(f);
    if (figure === null) f.badFigure = `line ${m.lineNo}: the figure ${abbreviate(digits)} ${kind} is not a usable number: no duration`;
  }

  private probe(name: string, ret: number, digits: string, m: ConsoleMessage, t: number | null): void {
    const figure = usable(digits);
    const inside = this.innermostOpen();
    const row: InitcallRow = { initcall: name, module: null, start_us: null, duration_us: null, ret, depth: inside ? inside.row.depth + 1 : 0, pid: null };
    this.add({
      row, figure, kind: 'probe', startStamp: null, endStamp: m.kernelUs, beforeSwitch: !this.switched, beforeUserspace: !this.initDone,
      parent: inside ? this.byRow.get(inside.row)! : null, endT: t,
      badFigure: figure === null ? `line ${m.lineNo}: the figure ${abbreviate(digits)} usecs is not a usable number: no duration` : null,
    });
  }

  private add(f: Facts): void {
    this.facts.push(f);
    this.byRow.set(f.row, f);
  }

  /** All rows, longest first (by the figure that ranks, see the module comment); unfinished initcalls last. */
  result(): InitcallResult {
    this.placeSwitch();
    const unit = this.decideUnit();
    const notes = [...this.notes];
    const usecs = this.facts.filter((f) => f.kind === 'usecs' && f.figure !== null);
    if (usecs.length > 0 && (unit.unit === 'ns>>10' || unit.from !== 'banner')) {
      let why = unit.why;
      if (unit.from === 'default') {
        const nsShaped = usecs.filter((f) => f.figure! > 0 && !wholeAny(f.figure!) && wholeAny(f.figure! * NS_SHR_10)).map((f) => f.figure!);
        if (nsShaped.length > 0) why += `; ${[...new Set(nsShaped)].slice(0, 3).join(', ')} "usecs" are whole jiffies only read as ns >> 10, which suggests a kernel before 5.18 (x 1.024)`;
      }
      notes.push(`durations: ${why}`);
    }
    if (this.facts.some((f) => f.kind === 'msecs' && f.figure !== null)) {
      notes.push('durations: the 2.6.24-2.6.26 wording prints delta.tv64 >> 20 as "msecs": figures x 1.048576 ms');
    }
    const jiffy = this.jiffyUs(unit);
    const rank = new Map<InitcallRow, number>();
    let flagged = 0;
    let rankedByStamps = 0;
    let topLevel = 0;
    const modprobe = new Set<string>();
    for (const f of this.facts) {
      const row = f.row;
      if (f.badFigure) notes.push(f.badFigure);
      if (f.figure === null) continue;
      const factor = f.kind === 'msecs' ? NS_SHR_20_US : f.kind === 'probe' || unit.unit === 'us' ? 1 : NS_SHR_10;
      const us = Math.round(f.figure * factor);
      row.duration_us = us;
      if (f.endT !== null) row.start_us = round3(f.endT - us);
      rank.set(row, us);
      const stamps = f.startStamp !== null && f.endStamp !== null ? round3(f.endStamp - f.startStamp) : null;
      if (stamps !== null && stamps >= 0 && f.kind !== 'probe' && f.beforeSwitch && this.wholeJiffyUs(f, unit) !== null && Math.abs(us - stamps) > Math.max(20, 0.1 * Math.max(us, stamps))) {
        flagged++;
        row.stamps_us = stamps;
        if (stamps < us + jiffy) {
          rankedByStamps++;
          rank.set(row, stamps);
          row.note = `jiffy-quantised figure (before the clocksource switch); ranked by the printk stamps (${stamps} us)`;
        } else {
          row.note = `jiffy-quantised figure (before the clocksource switch); ranked by the kernel's figure (the stamps include console output)`;
        }
      }
      const builtIn = row.module === null && (row.pid === null || row.pid <= 1);
      if (f.kind !== 'probe' && row.depth === 0 && f.beforeUserspace && builtIn) topLevel += us;
      // Said only where it changes the sum: a module's initcall that returned before the end of kernel init was seen.
      if (f.kind !== 'probe' && !builtIn && f.beforeUserspace) modprobe.add(String(row.pid));
    }
    if (flagged > 0) {
      notes.push(
        `${flagged} figure${flagged === 1 ? ' is' : 's are'} whole jiffies (${Math.round(jiffy)} us; ktime_get ran on jiffies before the clocksource switch) ` +
          `and disagree with the printk stamps: stamps_us has both; ${rankedByStamps} ranked by the stamps (below figure + one jiffy), ${flagged - rankedByStamps} by the figure`,
      );
    }
    if (modprobe.size > 0) {
      notes.push(`initcalls of modules or of pids other than 0/1 (pid ${[...modprobe].join(', ')}: modprobe, after userspace started) are not counted before userspace`);
    }
    const rows = [...this.facts.map((f) => f.row)].sort((a, b) => {
      const ra = rank.get(a) ?? -1;
      const rb = rank.get(b) ?? -1;
      return rb - ra || (a.start_us ?? Infinity) - (b.start_us ?? Infinity);
    });
    const probes = rows.filter((r) => r.pid === null && r.initcall.startsWith('probe of ')).length;
    const unfinished = rows.filter((r) => r.ret === null).length;
    return {
      rows,
      summary: {
        initcalls: rows.length - probes - unfinished,
        probes,
        unfinished,
        top_level_sum_us: topLevel,
        span_us: this.firstCalling !== null && this.kernelInitEnd !== null ? this.kernelInitEnd - this.firstCalling : null,
      },
      notes,
      unit,
      commandLine: this.commandLine,
    };
  }

  /**
   * The unit of "usecs" figures: from the banner (< 5.18: ns >> 10), else from the stamps: a "usecs" figure F
   * of a ns >> 10 kernel is F x 1.024 real us, and the printk stamps around it can only be longer (they also hold
   * the `calling` line's console output). So any long, unquantised row whose stamps are under F x 1.012 proves
   * real us; rows all at or above it (or a probe, always in real us, outlasting the initcall it ran in) say ns >> 10.
   */
  private decideUnit(): InitcallResult['unit'] {
    if (this.version) {
      const [maj, min] = this.version;
      const old = maj < 5 || (maj === 5 && min < 18);
      return old
        ? { unit: 'ns>>10', from: 'banner', why: `Linux ${maj}.${min} (before 5.18) prints ktime_to_ns(delta) >> 10 as "usecs": figures x 1.024` }
        : { unit: 'us', from: 'banner', why: `Linux ${maj}.${min} (5.18 or later) prints real microseconds` };
    }
    let under = 0;
    let over = 0;
    let outlasting = 0;
    for (const f of this.facts) {
      if (f.figure === null) continue;
      if (f.kind === 'probe') {
        const p = f.parent;
        if (p && p.kind === 'usecs' && p.figure !== null && f.figure > p.figure) outlasting++;
        continue;
      }
      if (f.kind !== 'usecs' || f.figure < 10_000 || f.startStamp === null || f.endStamp === null) continue;
      if (f.beforeSwitch && (wholeAny(f.figure) || wholeAny(f.figure * NS_SHR_10))) continue;
      const stamps = f.endStamp - f.startStamp;
      if (stamps < f.figure * 1.012) under++;
      else over++;
    }
    if (under > 0) return { unit: 'us', from: 'stamps', why: `no kernel banner; the printk stamps of ${under} initcall${under === 1 ? '' : 's'} are shorter than figure x 1.012: real microseconds (5.18 or later)` };
    if (over > 0 || outlasting > 0) {
      const why = [
        over > 0 ? `the printk stamps of ${over} long initcall${over === 1 ? '' : 's'} agree with figure x 1.024` : '',
        outlasting > 0 ? `${outlasting} probe${outlasting === 1 ? '' : 's'} (real us) outlast${outlasting === 1 ? 's' : ''} the initcall it ran in` : '',
      ].filter(Boolean).join(', and ');
      return { unit: 'ns>>10', from: 'stamps', why: `no kernel banner; ${why}: "usecs" are ktime_to_ns >> 10 (before 5.18), figures x 1.024` };
    }
    return { unit: 'us', from: 'default', why: 'no kernel banner and no initcall long enough to tell by its stamps: figures taken as printed (real microseconds, as 5.18 or later print; older kernels print 2.4% less)' };
  }

  /**
   * A figure's value in us when it is a whole number of jiffies (in its unit; when the unit was not read from
   * the banner, also as ns >> 10), else null. Only figures measured before the clocksource switch qualify.
   */
  private wholeJiffyUs(f: Facts, unit: InitcallResult['unit']): number | null {
    if (f.kind !== 'usecs' || f.figure === null || !f.beforeSwitch) return null;
    const us = f.figure * (unit.unit === 'us' ? 1 : NS_SHR_10);
    if (wholeAny(us)) return us;
    if (unit.from !== 'banner' && wholeAny(f.figure * NS_SHR_10)) return f.figure * NS_SHR_10;
    return null;
  }

  /** The longest jiffy the file's nonzero whole-jiffy figures all fit; 4 ms (HZ=250) when none shows it. */
  private jiffyUs(unit: InitcallResult['unit']): number {
    const quantised = this.facts.map((f) => this.wholeJiffyUs(f, unit)).filter((us): us is number => us !== null && us > 0);
    if (quantised.length === 0) return 4000;
    return JIFFIES_US.find((j) => quantised.every((us) => isWholeJiffies(us, j))) ?? 1000;
  }

  /**
   * Which returns came before the clocksource switch. With its line in the log: those before it. Without:
   * the run of returns up to the last nonzero whole-jiffy figure, stopped by the first nonzero figure that
   * is not whole jiffies (after the switch figures are fine-grained); none when no figure shows jiffies.
   */
  private placeSwitch(): void {
    if (this.switched) return;
    let last = -1;
    for (let i = 0; i < this.returns.length; i++) {
      const fig = this.returns[i]!.figure;
      if (fig === null || fig === 0) continue;
      if (wholeAny(fig) || wholeAny(fig * NS_SHR_10)) last = i;
      else break;
    }
    this.returns.forEach((f, i) => (f.beforeSwitch = i <= last));
  }

  /** Takes the innermost open initcall with this key off its pid's stack (any pid: the return line has none). */
  private close(k: string): InitcallRow | null {
    let best: { stack: Open[]; i: number } | null = null;
    for (const stack of this.open.values()) {
      for (let i = stack.length - 1; i >= 0; i--) {
        if (stack[i]!.key === k) {
          if (!best || (stack[i]!.row.start_us ?? -Infinity) > (best.stack[best.i]!.row.start_us ?? -Infinity)) best = { stack, i };
          break;
        }
      }
    }
    if (!best) return null;
    const [entry] = best.stack.splice(best.i, 1);
    if (this.lastOpened === entry) this.lastOpened = null;
    return entry!.row;
  }

  /** The open initcall with this key, left open (the 2.6.24-26 "returned N." line comes before its duration). */
  private find(k: string): Open | null {
    for (const stack of this.open.values()) for (const e of stack) if (e.key === k) return e;
    return null;
  }

  /** A return whose `calling` is not in the log (it started before the log, or its line was lost). */
  private unpaired(name: string, module: string | null, t: number | null, kind: 'usecs' | 'msecs'): InitcallRow {
    const row: InitcallRow = { initcall: name, module, start_us: null, duration_us: null, ret: null, depth: 0, pid: null };
    this.add({ row, figure: null, kind, startStamp: null, endStamp: null, beforeSwitch: false, beforeUserspace: false, parent: null, badFigure: null, endT: t });
    return row;
  }

  /** The most recently started initcall still open (probes run inside whichever initcall registered the driver). */
  private innermostOpen(): Open | null {
    if (this.lastOpened) return this.lastOpened;
    let best: Open | null = null;
    for (const stack of this.open.values()) {
      const top = stack[stack.length - 1];
      if (top && (!best || (top.row.start_us ?? -Infinity) > (best.row.start_us ?? -Infinity))) best = top;
    }
    return best;
  }
}

function key(name: string, module: string | undefined): string {
  return module ? `${name} [${module}]` : name;
}

/** A figure as a number, or null when it is past 2^53 (a double would no longer hold it exactly). */
function usable(digits: string): number | null {
  const v = Number(digits);
  return Number.isSafeInteger(v) ? v : null;
}

const abbreviate = (digits: string): string => (digits.length > 20 ? `${digits.slice(0, 8)}...(${digits.length} digits)` : digits);
const round3 = (v: number): number => Math.round(v * 1000) / 1000;

const wholeAny = (us: number): boolean => JIFFIES_US.some((j) => isWholeJiffies(us, j));

/** A whole number of jiffies of `jiffy` us, to the 2 us that rounding of the printed figure allows. */
function isWholeJiffies(us: number, jiffy: number): boolean {
  const r = us % jiffy;
  return r <= 2 || jiffy - r <= 2;
}
