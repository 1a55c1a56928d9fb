/**
 * What every importer writes into: the trace reader's own events (src/trace/parser.ts TraceVisitor), so the
 * analyzers cannot tell an imported trace from a native one. Times are microseconds (or the importer's
 * documented unit); names are interned in the reader's FunctionTable; bare addresses go to [user] /
 * [unresolved] as the native reader does (docs/trace-format.md).
 */
import type { FunctionTable } from '../trace/functions.js';
import { UNRESOLVED, USER } from '../trace/functions.js';
import type { ParseCounts, TraceVisitor } from '../trace/parser.js';
import type { SymbolTable } from '../symbols/symbol-table.js';

/** Bare addresses at or above this are kernel-half (x86-64 canonical split), as in the native reader. */
const USER_LIMIT = 0x800000000000;
/** The largest time taken: beyond 2^53 a double no longer holds single units. */
const MAX_TIME = Number.MAX_SAFE_INTEGER;

/** One importer: lines in (without newline or CR), events out through its ImportSink. */
export interface LineImporter {
  line(text: string, lineNo: number): void;
  end(): void;
}

/** An importer's entry function: one per format file. */
export type ImporterEntry = (sink: ImportSink) => LineImporter;

export class ImportSink {
  private readonly ids = new Map<string, number>();
  private lastT = -Infinity;
  /** Lines an importer read but that carry no instruction (other perf events, ftrace markers): neither events nor malformed. */
  skipped = 0;
  /** Addresses looked up in `symbols` (QEMU logs, perf without symbols), and how many found none. */
  symbolised = 0;
  unsymbolised = 0;

  constructor(
    readonly functions: FunctionTable,
    private readonly visitor: TraceVisitor,
    readonly counts: ParseCounts,
    /** Symbols for bare addresses (--system-map), or null. */
    readonly symbols: SymbolTable | null,
    private readonly onMalformed: (line: number, text: string) => void,
  ) {}

  /** An instruction `offset` bytes into `name` at time `t`. */
  event(t: number, name: string, offset: number, lineNo: number): void {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.functions.idOf(name);
      this.ids.set(name, id);
    }
    this.emit(t, id, offset, 0, lineNo);
  }

  /** An instruction at a bare address: symbolised through --system-map when given, else [user]/[unresolved]. */
  address(t: number, addr: bigint, lineNo: number): void {
    if (this.symbols) {
      const hit = this.symbols.lookup(addr);
      if (hit) {
        this.symbolised++;
        this.event(t, hit.name, hit.offset, lineNo);
        return;
      }
      this.unsymbolised++;
    }
    const a = Number(addr);
    this.emit(t, a < USER_LIMIT ? USER : UNRESOLVED, -1, a, lineNo);
  }

  malformed(lineNo: number, text: string): void {
    this.counts.malformed++;
    this.onMalformed(lineNo, text.slice(0, 120));
  }

  /** A time the reader can use: finite, not negative, below 2^53; else the line is malformed. */
  usableTime(t: number, lineNo: number, text: string): boolean {
    if (Number.isFinite(t) && t >= 0 && t <= MAX_TIME) return true;
    this.malformed(lineNo, text);
    return false;
  }

  private emit(t: number, fn: number, offset: number, addr: number, lineNo: number): void {
    const c = this.counts;
    if (t < this.lastT && c.backwards++ === 0) c.firstBackwardsLine = lineNo;
    this.lastT = t;
    if (c.events++ === 0) c.firstEventLine = lineNo;
    this.visitor.event(t, fn, offset, addr);
  }
}

/** `sec.frac` seconds (perf, ftrace) to microseconds from the digits, without float rounding of the seconds. */
export function secondsToUs(sec: string, frac: string): number {
  const us = Number((frac + '000000').slice(0, 6));
  const sub = frac.length > 6 ? Number('0.' + frac.slice(6)) : 0;
  return Number(sec) * 1_000_000 + us + sub;
}

/** `name+0xOFF` or `name+0xOFF/0xSIZE` (kernel %pS, perf symoff) into name and byte offset; plain names unchanged. */
export function splitSymOffset(token: string): { name: string; offset: number } {
  const m = /^(.+?)\+0x([0-9a-fA-F]+)(?:\/0x[0-9a-fA-F]+)?$/.exec(token);
  return m ? { name: m[1]!, offset: parseInt(m[2]!, 16) } : { name: token, offset: 0 };
}
