/**
 * initcall_debug output into one row per initcall and per device probe, with the kernel's own durations.
 * Reference: init/main.c do_one_initcall / trace_initcall_finish_cb and drivers/base/dd.c really_probe_debug
 * (Linux 6.1). Lines it reads:
 *   [    0.639703] calling  init_hw_perf_events+0x0/0x683 @ 1
 *   [    0.642614] initcall init_hw_perf_events+0x0/0x683 returned 0 after 4000 usecs
 *   [    1.982041] probe of cpu0 returned 0 after 2996 usecs
 * Start times are the dmesg stamp in microseconds when the line has one, else the host stamp.
 * A `calling` is paired with the `initcall ... returned` of the same function (not simply the next one),
 * so two initcalls running at once on different pids (async probing, modprobe) stay apart.
 */
import type { ConsoleMessage, ConsoleVisitor } from './console-lines.js';

export interface InitcallRow {
  /** Function name (without +0x../0x..), or `probe of DEV` for a device probe. */
  initcall: string;
  /** Module in brackets after the symbol, or null for built-in code. */
  module: string | null;
  /** When the initcall started (us): its `calling` line, or for a probe / an unpaired return: end minus duration. */
  start_us: number | null;
  /** The kernel's own `after T usecs`; null if the initcall never returned in this log. */
  duration_us: number | null;
  /** Return code; null if it never returned. */
  ret: number | null;
  /** How many initcalls were open on the same pid when it started (probes: inside any open initcall). */
  depth: number;
  /** The pid from `@ pid`; null for probes and unpaired returns. */
  pid: number | null;
}

export interface InitcallSummary {
  /** Initcalls (not probes) that returned. */
  initcalls: number;
  probes: number;
  /** `calling` lines without a return in the log. */
  unfinished: number;
  /** Sum of the kernel's durations of top-level initcalls that returned before userspace (us). */
  top_level_sum_us: number;
  /** First `calling` to "Freeing unused kernel memory" (us), or null if either is missing. */
  span_us: number | null;
}

const CALLING = /^calling {1,2}([^\s+]+)(?:\+0x[0-9a-f]+\/0x[0-9a-f]+)?(?: \[([^\]\s]+)\])? @ (\d+)/;
const RETURNED = /^initcall ([^\s+]+)(?:\+0x[0-9a-f]+\/0x[0-9a-f]+)?(?: \[([^\]\s]+)\])? returned (-?\d+) after (\d+) usecs/;
// 6.1: "probe of DEV returned N after T usecs"; later kernels: "DRV DEV: probe with driver DRV returned N after T usecs".
const PROBE = /(?:^probe of (\S+)|^\S+ (\S+): probe with driver \S+) returned (-?\d+) after (\d+) usecs/;
/** The end of the kernel's own work: 6.1 says "Freeing unused kernel image (initmem) memory", old kernels "... kernel memory". */
export const FREEING_INITMEM = /Freeing unused kernel (?:image \(initmem\) )?memory/;

interface Open {
  row: InitcallRow;
  key: string;
}

export class Initcalls implements ConsoleVisitor {
  private readonly rows: InitcallRow[] = [];
  /** Open initcalls per pid, innermost last. */
  private readonly open = new Map<number, Open[]>();
  /** Returned before userspace and top-level, for the summary. */
  private topLevelSum = 0;
  private firstCalling: number | null = null;
  private freeingAt: number | null = null;
  private lastOpened: Open | null = null;

  message(m: ConsoleMessage): void {
    const text = m.text;
    const t = m.kernelUs ?? m.hostUs;
    if (text.startsWith('calling ')) {
      const c = CALLING.exec(text);
      if (!c) return;
      const pid = Number(c[3]);
      const stack = this.open.get(pid) ?? [];
      this.open.set(pid, stack);
      const row: InitcallRow = { initcall: c[1]!, module: c[2] ?? null, start_us: t, duration_us: null, ret: null, depth: stack.length, pid };
      const entry = { row, key: key(c[1]!, c[2]) };
      stack.push(entry);
      this.rows.push(row);
      this.lastOpened = entry;
      if (this.firstCalling === null && t !== null) this.firstCalling = t;
      return;
    }
    if (text.startsWith('initcall ')) {
      const r = RETURNED.exec(text);
      if (!r) return;
      const duration = Number(r[4]);
      const entry = this.close(key(r[1]!, r[2]));
      const row = entry ?? this.unpaired(r[1]!, r[2] ?? null, t, duration);
      row.duration_us = duration;
      row.ret = Number(r[3]);
      if (row.depth === 0 && this.freeingAt === null) this.topLevelSum += duration;
      return;
    }
    if (text.includes('probe')) {
      const p = PROBE.exec(text);
      if (p) {
        const duration = Number(p[4]);
        const inside = this.innermostOpen();
        this.rows.push({
          initcall: `probe of ${p[1] ?? p[2]}`, module: null, start_us: t === null ? null : t - duration,
          duration_us: duration, ret: Number(p[3]), depth: inside ? inside.row.depth + 1 : 0, pid: null,
        });
        return;
      }
    }
    if (this.freeingAt === null && t !== null && FREEING_INITMEM.test(text)) this.freeingAt = t;
  }

  /** All rows, longest first; unfinished initcalls last (in start order). */
  result(): { rows: InitcallRow[]; summary: InitcallSummary } {
    const rows = [...this.rows].sort(
      (a, b) => (b.duration_us ?? -1) - (a.duration_us ?? -1) || (a.start_us ?? Infinity) - (b.start_us ?? Infinity),
    );
    const probes = rows.filter((r) => r.pid === null && r.initcall.startsWith('probe of ')).length;
    const unfinished = rows.filter((r) => r.ret === null).length;
    return {
      rows,
      summary: {
        initcalls: rows.length - probes - unfinished,
        probes,
        unfinished,
        top_level_sum_us: this.topLevelSum,
        span_us: this.firstCalling !== null && this.freeingAt !== null ? this.freeingAt - this.firstCalling : null,
      },
    };
  }

  /** Takes the innermost open initcall with this name off its pid's stack (any pid: the return line has none). */
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

  /** A return whose `calling` is not in the log (it started before the log, or its line was lost). */
  private unpaired(name: string, module: string | null, t: number | null, duration: number): InitcallRow {
    const row: InitcallRow = { initcall: name, module, start_us: t === null ? null : t - duration, duration_us: null, ret: null, depth: 0, pid: null };
    this.rows.push(row);
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
