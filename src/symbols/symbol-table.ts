/**
 * Address -> symbol lookup for the single-step loop (called once per step, ~150 k times a second).
 * Consecutive steps are nearly always in the same function, so the range of the last hit is kept and
 * checked first; a miss costs one binary search over a BigUint64Array of start addresses.
 *
 * `describe()` gives the tail of a trace line in the style of gdb's `info symbol`:
 *   ffffffff8304ce41 -> "start_kernel in section .text"
 *   ffffffff8304ce49 -> "start_kernel + 8 in section .text"   (offset in decimal)
 *   ffffffffc0a01234 -> "ext4_fill_super + 20 in section .text of ext4"   (kallsyms module symbol)
 *   401000           -> "401000"   (unresolved: bare lowercase hex, no 0x)
 */

/** One input symbol. `type` is the nm/System.map type letter; `size` 0 or undefined means unknown. */
export interface SymbolEntry {
  addr: bigint;
  name: string;
  type?: string;
  size?: number;
  /** Section name when known (ELF); otherwise derived from `type`. */
  section?: string;
  /** Kernel module the symbol belongs to (kallsyms `[ext4]`), if any. */
  module?: string;
  /**
   * An end-of-region marker (`_etext`, `_end`): it names only its own address, so the unmapped space
   * after the kernel image does not resolve to `_end + 1073741824`, and it loses to any alias.
   */
  endMarker?: boolean;
}

/** A named address range that bounds symbols without a size (e.g. .text = [_stext, _etext)). */
export interface SectionRange {
  name: string;
  start: bigint;
  end: bigint;
}

/**
 * Physical addresses that run code linked elsewhere: Linux's startup_64 runs at its physical address
 * (0x1000000) until it jumps to its link address (0xffffffff81000000), so those first instructions
 * are symbolised through [physStart, physEnd) -> virtStart. Only executable ranges belong here.
 */
export interface PhysicalAlias {
  physStart: bigint;
  physEnd: bigint;
  virtStart: bigint;
}

export interface SymbolHit {
  name: string;
  /** Bytes from the symbol's start. */
  offset: number;
  section: string;
  module?: string;
}

/**
 * A symbol with no size, no section range around it and no symbol after it (in the same half of the
 * address space) covers this many bytes past its address.
 */
export const LAST_UNSIZED_SPAN = 0x1000n;

/** The section a nm type letter stands for (case gives local/global, not the section). */
export function sectionOfType(type: string | undefined): string {
  switch (type) {
    case 'T':
    case 't':
      return '.text';
    case 'D':
    case 'd':
      return '.data';
    case 'R':
    case 'r':
      return '.rodata';
    case 'B':
    case 'b':
      return '.bss';
    default:
      return type ?? '?';
  }
}

export class SymbolTable {
  private readonly starts: BigUint64Array;
  private readonly ends: BigUint64Array;
  private readonly names: string[];
  private readonly sections: string[];
  private readonly modules: (string | undefined)[];
  private readonly byName = new Map<string, bigint>();
  // Cache of the last hit: [lastStart, lastEnd) belongs to index lastIndex (-1: empty cache).
  private lastStart = 1n;
  private lastEnd = 0n;
  private lastIndex = -1;
  private aliases: PhysicalAlias[] = [];
  /** Highest physEnd of the aliases (0: none), so the common case costs one comparison. */
  private aliasLimit = 0n;

  constructor(entries: readonly SymbolEntry[], sectionRanges: readonly SectionRange[] = []) {
    for (const e of entries) if (!this.byName.has(e.name)) this.byName.set(e.name, e.addr);

    // One primary symbol per address: aliases (_text/_stext/startup_64) share a start, and the trace
    // line should name the most specific one. System.map and kallsyms come sorted; sort only if not.
    let order: number[] = entries.map((_, i) => i);
    let sorted = true;
    for (let i = 1; i < entries.length && sorted; i++) sorted = entries[i - 1]!.addr <= entries[i]!.addr;
    if (!sorted) {
      order = order.sort((x, y) => {
        const a = entries[x]!.addr;
        const b = entries[y]!.addr;
        return a < b ? -1 : a > b ? 1 : x - y;
      });
    }
    const primary: SymbolEntry[] = [];
    for (let k = 0; k < order.length; k++) {
      const e = entries[order[k]!]!;
      const last = primary.length - 1;
      if (last < 0 || primary[last]!.addr !== e.addr) primary.push(e);
      else if (rank(e) < rank(primary[last]!)) primary[last] = e; // ties keep the earlier input line
    }

    const n = primary.length;
    this.starts = new BigUint64Array(n);
    this.ends = new BigUint64Array(n);
    this.names = new Array<string>(n);
    this.sections = new Array<string>(n);
    this.modules = new Array<string | undefined>(n);
    const ranges = [...sectionRanges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (let i = 0; i < n; i++) {
      const e = primary[i]!;
      const range = ranges.find((r) => e.addr >= r.start && e.addr < r.end);
      let end: bigint;
      if (e.endMarker) end = e.addr + 1n;
      else if (e.size && e.size > 0) end = e.addr + BigInt(e.size);
      else if (i + 1 < n && !crossesHalves(e.addr, primary[i + 1]!.addr)) end = primary[i + 1]!.addr;
      else end = range ? range.end : e.addr + LAST_UNSIZED_SPAN;
      if (range && end > range.end) end = range.end;
      this.starts[i] = e.addr;
      this.ends[i] = end;
      this.names[i] = e.name;
      this.sections[i] = e.section ?? range?.name ?? sectionOfType(e.type);
      this.modules[i] = e.module;
    }
  }

  /** Number of distinct symbol addresses (aliases counted once). */
  get size(): number {
    return this.starts.length;
  }

  /** Symbolise addresses in these physical ranges as their virtual aliases (replaces earlier ones). */
  setPhysicalAliases(aliases: readonly PhysicalAlias[]): void {
    this.aliases = aliases.filter((a) => a.physEnd > a.physStart);
    this.aliasLimit = this.aliases.reduce((m, a) => (a.physEnd > m ? a.physEnd : m), 0n);
  }

  /** The symbol containing `addr`, or null below the first symbol, in a gap, or past the last one's end. */
  lookup(addr: bigint): SymbolHit | null {
    const a = this.symbolAddress(addr);
    const i = this.indexOf(a);
    if (i < 0) return null;
    const hit: SymbolHit = { name: this.names[i]!, offset: Number(a - this.starts[i]!), section: this.sections[i]! };
    const m = this.modules[i];
    if (m !== undefined) hit.module = m;
    return hit;
  }

  /** The trace-line tail for `addr` (see the file comment). */
  describe(addr: bigint): string {
    const a = this.symbolAddress(addr);
    const i = this.indexOf(a);
    if (i < 0) return addr.toString(16);
    const off = a - this.starts[i]!;
    const m = this.modules[i];
    const where = m === undefined ? this.sections[i]! : `${this.sections[i]!} of ${m}`;
    return off === 0n ? `${this.names[i]!} in section ${where}` : `${this.names[i]!} + ${off} in section ${where}`;
  }

  /** The address of the first symbol called `name` in the input, or undefined. */
  resolve(name: string): bigint | undefined {
    return this.byName.get(name);
  }

  /** `addr`, or its virtual alias when it lies in a physical alias range. */
  private symbolAddress(addr: bigint): bigint {
    if (addr < this.aliasLimit) {
      for (const a of this.aliases) if (addr >= a.physStart && addr < a.physEnd) return addr - a.physStart + a.virtStart;
    }
    return addr;
  }

  private indexOf(addr: bigint): number {
    if (addr >= this.lastStart && addr < this.lastEnd) return this.lastIndex;
    const starts = this.starts;
    // Greatest i with starts[i] <= addr.
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= addr) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0 || addr >= this.ends[found]!) return -1;
    this.lastStart = starts[found]!;
    this.lastEnd = this.ends[found]!;
    this.lastIndex = found;
    return found;
  }
}

/** Start of the upper canonical half of x86-64 virtual addresses (kernel space). */
const UPPER_HALF = 0xffff800000000000n;

/**
 * True when `a` is a low (user/physical/per-cpu offset) address and `b` a kernel one: an unsized symbol
 * at `a` does not stretch across the non-canonical hole to the next symbol (per-cpu symbols at 0.. would
 * otherwise swallow every physical-address RIP of the decompressor).
 */
function crossesHalves(a: bigint, b: bigint): boolean {
  return a < UPPER_HALF && b >= UPPER_HALF;
}

/** Lower is preferred among symbols at one address: sized first, then fewer leading '_', then global; end markers last. */
function rank(e: SymbolEntry): number {
  if (e.endMarker) return 1000;
  let r = e.size && e.size > 0 ? 0 : 100;
  let u = 0;
  while (u < e.name.length && e.name.charCodeAt(u) === 0x5f) u++;
  r += Math.min(u, 9) * 10;
  if (e.type && e.type === e.type.toLowerCase()) r += 1;
  return r;
}
