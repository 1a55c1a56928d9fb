/**
 * System calls in a single-step trace.
 * A call starts at a line in a syscall entry point (entry_SYSCALL_64 and the compat entries) that follows
 * a line outside it, at the entry's first byte (offset 0) or straight from a user address; its name is the first later handler named __x64_sys_X, __ia32_sys_X, __se_sys_X,
 * __do_sys_X or sys_X; it ends at the next bare user address or the next entry.
 */
import { USER, type FunctionTable } from '../src/trace/functions.js';
import type { TraceVisitor } from '../src/trace/parser.js';
import { roundUs } from '../src/output/write.js';

export const SYSCALL_ENTRIES = ['entry_SYSCALL_64', 'entry_SYSCALL_compat', 'entry_INT80_compat', 'entry_SYSENTER_compat'];
const HANDLER = /^(?:__x64_sys_|__ia32_sys_|__se_sys_|__do_sys_|sys_)(.+)$/;
/** The name given to a call whose handler never showed up (the trace ended, or an unusual kernel). */
export const UNKNOWN_SYSCALL = '[unknown]';

export interface SyscallRow {
  time_us: number;
  syscall: string;
  duration_us: number;
  /** The last bare user address before the entry, hex; '' if none was seen. */
  user_address: string;
  /** False when the trace ended inside the call: the duration is then a lower bound. */
  complete: boolean;
}

export interface SyscallSummaryRow {
  syscall: string;
  count: number;
  total_us: number;
  mean_us: number;
  max_us: number;
}

/** Per function id: 1 = an entry point, 2 = a handler (name in handlerName), 0 = neither. */
const OTHER = 0, ENTRY = 1, HANDLER_FN = 2;

export class Syscalls implements TraceVisitor {
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
        user_address: this.lastUserAddr >= 0 ? this.lastUserAddr.toString(16) : '',
        complete: true,
      };
      this.openStart = t;
    } else if (kind === HANDLER_FN && this.open && this.open.syscall === UNKNOWN_SYSCALL) {
      this.open.syscall = this.handlerName[fn]!;
    }
    this.prevFn = fn;
    this.lastT = t;
  }

  /** Call after the last event: a call still open ends at the last timestamp. */
  finish(): SyscallRow[] {
    if (this.open) {
      this.open.complete = false;
      this.close(this.lastT);
    }
    return this.calls;
  }

  /** Per system call: count, total, mean, max (kept as calls end, whether or not they are kept). */
  summary(): SyscallSummaryRow[] {
    const rows = [...this.totals.values()].map((s) => ({ ...s, total_us: roundUs(s.total_us), mean_us: roundUs(s.total_us / s.count) }));
    return rows.sort((a, b) => b.total_us - a.total_us || (a.syscall < b.syscall ? -1 : 1));
  }

  private close(t: number): void {
    const open = this.open;
    if (!open) return;
    open.duration_us = roundUs(Math.max(0, t - this.openStart));
    this.open = null;
    let s = this.totals.get(open.syscall);
    if (!s) this.totals.set(open.syscall, (s = { syscall: open.syscall, count: 0, total_us: 0, mean_us: 0, max_us: 0 }));
    s.count++;
    s.total_us += open.duration_us;
    s.max_us = Math.max(s.max_us, open.duration_us);
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
