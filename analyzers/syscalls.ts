/**
 * System calls in a single-step trace.
 * A call starts at a line in a syscall entry point (entry_SYSCALL_64 and the compat entries) that follows
 * a line outside it, at the entry's first byte (offset 0) or straight from a user address; its name is the first later handler named __x64_sys_X, __ia32_sys_X, __se_sys_X,
 * __do_sys_X or sys_X; it ends at the next bare user address or the next entry.
 * exit and exit_group do not return (kernel/exit.c: do_exit ends in do_task_dead, which schedules away for
 * good), so what follows them belongs to other tasks: they end at the first do_task_dead after their entry,
 * and when none shows before the next user address or entry their duration is null (not known), left out
 * of the summary's total, mean and max. docs/trace-format.md "How the analyzers read it".
 */
import { USER, type FunctionTable } from '../src/trace/functions.js';
import { EventRecorder, type EventBatch } from '../src/trace/events.js';
import type { MergingVisitor, RangeVisitor } from '../src/trace/range-part.js';
import { roundUs } from '../src/output/write.js';

export const SYSCALL_ENTRIES = ['entry_SYSCALL_64', 'entry_SYSCALL_compat', 'entry_INT80_compat', 'entry_SYSENTER_compat'];
const HANDLER = /^(?:__x64_sys_|__ia32_sys_|__se_sys_|__do_sys_|sys_)(.+)$/;
/** System calls that never return to their caller (kernel/exit.c): the task is gone at do_task_dead. */
export const NON_RETURNING = new Set(['exit', 'exit_group']);
/** The kernel function where an exiting task schedules away for the last time (kernel/sched/core.c). */
export const TASK_DEAD = 'do_task_dead';
/** The name given to a call whose handler never showed up (the trace ended, or an unusual kernel). */
export const UNKNOWN_SYSCALL = '[unknown]';

export interface SyscallRow {
  time_us: number;
  syscall: string;
  /**
   * Entry to return; for a call that does not return (exit, exit_group: `returns` false), entry to
   * do_task_dead, or null when that never showed.
   */
  duration_us: number | null;
  /** False for exit and exit_group, which never return to their caller. */
  returns: boolean;
  /** The last bare user address before the entry, hex; '' if none was seen. */
  user_address: string;
  /** False when the trace ended inside the call: the duration is then a lower bound. */
  complete: boolean;
}

export interface SyscallSummaryRow {
  syscall: string;
  count: number;
  /** Over the calls with a duration (all but non-returning calls whose do_task_dead never showed). */
  total_us: number;
  /** total_us / (count - untimed); null when no call has a duration. */
  mean_us: number | null;
  max_us: number | null;
  /** Calls with no duration (duration_us null): counted in `count`, not in the times. */
  untimed: number;
}

/** Per function id: 1 = an entry point, 2 = a handler (name in handlerName), 0 = neither. */
const OTHER = 0, ENTRY = 1, HANDLER_FN = 2, TASK_DEAD_FN = 3;

/**
 * What a parse worker sends for one range (SyscallsRange). The machine's state at a range's start depends
 * on the ranges before it, but a bare user address resets it (any call ends there; the next one starts
 * at an entry after it). So the worker sends the range's events up to and including its first user
 * address as they are (`head`, for the main thread's machine, whose state is right), runs its own machine
 * from there, and sends the calls that machine ended, in columns, and the machine's state at the range's
 * end. A range with no user address is all head.
 */
export interface SyscallsPart {
  head: EventBatch;
  /** Whether the range had a user address; without one, the rest is empty. */
  synced: boolean;
  calls: {
    count: number;
    /** Per call: its SyscallRow fields (duration NaN: null; flags: 1 returns, 2 complete; user -1: none). */
    time: Float64Array;
    duration: Float64Array;
    flags: Uint8Array;
    user: Float64Array;
    /** Index into `names`. */
    name: Int32Array;
    names: string[];
  };
  /** The machine at the range's end (prevFn: a worker id). */
  tail: { open: SyscallRow | null; openStart: number; prevFn: number; lastT: number; lastUserAddr: number };
}

export class Syscalls implements MergingVisitor {
  readonly rangeKind = 'syscalls';
  /** Every call, when no onCall callback takes them as they end. */
  readonly calls: SyscallRow[] = [];
  private readonly totals = new Map<string, SyscallSummaryRow>();
  private kind = new Uint8Array(0);
  /** How many function ids have been classified so far. */
  private classified = 0;
  private handlerName: string[] = [];
  private prevFn = -1;
  private lastT = 0;
  private lastUserAddr = -1;
  private open: SyscallRow | null = null;
  private openStart = 0;

  /** @param onCall receives each call as it ends (so a long trace's calls need not be kept); else they collect in `calls`. */
  constructor(private readonly functions: FunctionTable, private readonly onCall?: (call: SyscallRow) => void) {}

  event(t: number, fn: number, offset: number, addr: number): void {
    if (fn >= this.classified) this.classify();
    const kind = this.kind[fn]!;
    if (fn === USER) {
      this.close(t);
      this.lastUserAddr = addr;
    } else if (kind === ENTRY && this.prevFn !== fn && (offset === 0 || this.prevFn === USER)) {
      // The `syscall` instruction lands at the entry's first byte; the handler's return path comes back
      // to a later offset of the same entry function, which is not a new call.
      this.close(t);
      this.open = {
        time_us: roundUs(t),
        syscall: UNKNOWN_SYSCALL,
        duration_us: 0,
        returns: true,
        user_address: this.lastUserAddr >= 0 ? this.lastUserAddr.toString(16) : '',
        complete: true,
      };
      this.openStart = t;
    } else if (kind === HANDLER_FN && this.open && this.open.syscall === UNKNOWN_SYSCALL) {
      this.open.syscall = this.handlerName[fn]!;
      if (NON_RETURNING.has(this.open.syscall)) this.open.returns = false;
    } else if (kind === TASK_DEAD_FN && this.open && !this.open.returns) {
      this.close(t, true);
    }
    this.prevFn = fn;
    this.lastT = t;
  }

  /** Call after the last event: a call still open ends at the last timestamp. */
  finish(): SyscallRow[] {
    if (this.open) {
      this.open.complete = false;
      // A non-returning call the trace ends in before its do_task_dead: a lower bound is still a duration.
      this.close(this.lastT, true);
    }
    return this.calls;
  }

  /** Per system call: count, total, mean, max (kept as calls end, whether or not they are kept). */
  summary(): SyscallSummaryRow[] {
    const rows = [...this.totals.values()].map((s) => {
      const timed = s.count - s.untimed;
      return { ...s, total_us: roundUs(s.total_us), mean_us: timed > 0 ? roundUs(s.total_us / timed) : null };
    });
    return rows.sort((a, b) => b.total_us - a.total_us || (a.syscall < b.syscall ? -1 : 1));
  }

  /** A worker's range (SyscallsRange), next in file order. */
  mergePart(part: unknown, ids: (local: number) => number): void {
    const p = part as SyscallsPart;
    const h = p.head;
    for (let i = 0; i < h.count; i++) this.event(h.t[i]!, ids(h.fn[i]!), h.offset[i]!, h.addr[i]!);
    if (!p.synced) return;
    const c = p.calls;
    for (let i = 0; i < c.count; i++) {
      const d = c.duration[i]!, u = c.user[i]!;
      this.account({
        time_us: c.time[i]!, syscall: c.names[c.name[i]!]!, duration_us: Number.isNaN(d) ? null : d,
        returns: (c.flags[i]! & 1) !== 0, user_address: u >= 0 ? u.toString(16) : '', complete: (c.flags[i]! & 2) !== 0,
      });
    }
    const tail = p.tail;
    this.open = tail.open;
    this.openStart = tail.openStart;
    this.prevFn = ids(tail.prevFn);
    this.lastT = tail.lastT;
    this.lastUserAddr = tail.lastUserAddr;
  }

  /** The machine's state at the range's end, for SyscallsRange (prevFn: this table's id). */
  tailState(): SyscallsPart['tail'] {
    return { open: this.open, openStart: this.openStart, prevFn: this.prevFn, lastT: this.lastT, lastUserAddr: this.lastUserAddr };
  }

  /** Forgets the call in progress and the last event (SyscallsRange, at a range's start). */
  restart(): void {
    this.open = null;
    this.prevFn = -1;
    this.lastT = 0;
    this.lastUserAddr = -1;
  }

  /** Ends the open call at `t`; `atEnd`: `t` is its end even if it does not return (do_task_dead, trace end). */
  private close(t: number, atEnd = false): void {
    const open = this.open;
    if (!open) return;
    // A call that does not return, closed by another task's user address or entry: its end is unknown.
    open.duration_us = open.returns || atEnd ? roundUs(Math.max(0, t - this.openStart)) : null;
    this.open = null;
    this.account(open);
  }

  /** Counts an ended call in the totals and hands it on (onCall) or keeps it. */
  private account(open: SyscallRow): void {
    let s = this.totals.get(open.syscall);
    if (!s) this.totals.set(open.syscall, (s = { syscall: open.syscall, count: 0, total_us: 0, mean_us: 0, max_us: null, untimed: 0 }));
    s.count++;
    if (open.duration_us === null) s.untimed++;
    else {
      s.total_us += open.duration_us;
      s.max_us = Math.max(s.max_us ?? 0, open.duration_us);
    }
    if (this.onCall) this.onCall(open);
    else this.calls.push(open);
  }

  /** Classifies function ids interned since the last call (names arrive as the reader meets them). */
  private classify(): void {
    const names = this.functions.names;
    let kind = this.kind;
    if (names.length > kind.length) {
      kind = new Uint8Array(Math.max(names.length, kind.length * 2, 64));
      kind.set(this.kind);
    }
    for (let id = this.classified; id < names.length; id++) {
      const name = names[id]!;
      if (SYSCALL_ENTRIES.includes(name)) kind[id] = ENTRY;
      else if (name === TASK_DEAD) kind[id] = TASK_DEAD_FN;
      else {
        const m = HANDLER.exec(name);
        if (m) {
          kind[id] = HANDLER_FN;
          this.handlerName[id] = m[1]!;
        } else kind[id] = OTHER;
      }
    }
    this.kind = kind;
    this.classified = names.length;
  }
}

/**
 * Syscalls' half in a parse worker (src/trace/range-part.ts, SyscallsPart): the events up to the range's
 * first user address go as they are, then a machine of its own (whose calls are not counted here) runs on.
 */
export class SyscallsRange implements RangeVisitor {
  private head = new EventRecorder(1024);
  private synced = false;
  private readonly machine: Syscalls;
  private calls = new CallColumns();

  constructor(functions: FunctionTable) {
    this.machine = new Syscalls(functions, (call) => this.calls.push(call, userAddressOf(call)));
  }

  event(t: number, fn: number, offset: number, addr: number): void {
    if (this.synced) {
      this.machine.event(t, fn, offset, addr);
      return;
    }
    this.head.event(t, fn, offset, addr);
    if (fn !== USER) return;
    this.synced = true;
    this.machine.restart();
    this.machine.event(t, fn, offset, addr);
  }

  takePart(): { part: SyscallsPart; transfer: ArrayBuffer[] } {
    const head = this.head.take();
    const calls = this.calls.take();
    const part: SyscallsPart = { head, synced: this.synced, calls, tail: this.machine.tailState() };
    this.synced = false;
    this.head = new EventRecorder(1024);
    this.calls = new CallColumns();
    return {
      part,
      transfer: [head.t.buffer, head.fn.buffer, head.offset.buffer, head.addr.buffer, calls.time.buffer, calls.duration.buffer, calls.flags.buffer, calls.user.buffer, calls.name.buffer] as ArrayBuffer[],
    };
  }
}

/** A call's user address as a number (-1: none), read back from its row's hex: exact below 2^53, as user addresses are. */
function userAddressOf(call: SyscallRow): number {
  return call.user_address === '' ? -1 : parseInt(call.user_address, 16);
}

/** Ended calls in columns (SyscallsPart.calls), growing as needed. */
class CallColumns {
  count = 0;
  private time = new Float64Array(256);
  private duration = new Float64Array(256);
  private flags = new Uint8Array(256);
  private user = new Float64Array(256);
  private name = new Int32Array(256);
  private readonly names: string[] = [];
  private readonly nameIndex = new Map<string, number>();

  push(call: SyscallRow, user: number): void {
    if (this.count === this.time.length) this.grow();
    const i = this.count++;
    this.time[i] = call.time_us;
    this.duration[i] = call.duration_us ?? NaN;
    this.flags[i] = (call.returns ? 1 : 0) | (call.complete ? 2 : 0);
    this.user[i] = user;
    let n = this.nameIndex.get(call.syscall);
    if (n === undefined) {
      n = this.names.length;
      this.names.push(call.syscall);
      this.nameIndex.set(call.syscall, n);
    }
    this.name[i] = n;
  }

  take(): SyscallsPart['calls'] {
    const n = this.count;
    return {
      count: n, time: this.time.slice(0, n), duration: this.duration.slice(0, n), flags: this.flags.slice(0, n),
      user: this.user.slice(0, n), name: this.name.slice(0, n), names: this.names,
    };
  }

  private grow(): void {
    const size = this.time.length * 2;
    const f64 = (a: Float64Array): Float64Array<ArrayBuffer> => { const b = new Float64Array(size); b.set(a); return b; };
    this.time = f64(this.time);
    this.duration = f64(this.duration);
    this.user = f64(this.user);
    const flags = new Uint8Array(size); flags.set(this.flags); this.flags = flags;
    const name = new Int32Array(size); name.set(this.name); this.name = name;
  }
}
