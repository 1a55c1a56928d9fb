/**
 * The guest's own view of its memory: the `free -m` table the appliance's /init prints, read back from the
 * console. busybox and procps print the same shape (older busybox has buffers/cached columns):
 *
 *   8753430.4               total        used        free      shared  buff/cache   available
 *   8787148.4 Mem:            218          16         192           2          11         195
 *   8787148.4 Swap:             0           0           0
 *
 * Columns are named by the header line, so either shape is read. The first complete table wins (the
 * appliance prints one, before BOOT_TIME:init_ok). A ConsoleVisitor: feed it lines (host stamps already
 * taken off by the console parser), then call result().
 */
import type { ConsoleLine, ConsoleVisitor } from './console-lines.js';

export interface GuestMemory {
  total_mib: number;
  used_mib: number;
  free_mib: number;
  shared_mib?: number;
  buff_cache_mib?: number;
  buffers_mib?: number;
  cached_mib?: number;
  available_mib?: number;
  swap_total_mib?: number;
  swap_used_mib?: number;
  swap_free_mib?: number;
  /** Console line number of the Mem: row (1-based). */
  line: number;
}

/** Header words of `free` and the field each becomes. */
const COLUMN_KEYS: Record<string, keyof GuestMemory> = {
  total: 'total_mib',
  used: 'used_mib',
  free: 'free_mib',
  shared: 'shared_mib',
  'buff/cache': 'buff_cache_mib',
  buffers: 'buffers_mib',
  cached: 'cached_mib',
  available: 'available_mib',
};

const HEADER = /^\s*total\s+used\s+free\b/;
const ROW = /^\s*(Mem|Swap):((?:\s+\d+)+)\s*$/;

export class GuestMemoryReader implements ConsoleVisitor {
  private header: (keyof GuestMemory | null)[] | null = null;
  private found: GuestMemory | null = null;

  line(l: ConsoleLine): void {
    this.text(l.text, l.lineNo);
  }

  /** One line of console text without its host stamp. */
  text(text: string, lineNo: number): void {
    if (HEADER.test(text)) {
      // A second table after a complete first one is ignored: the first is what /init saw at boot.
      if (!this.found) this.header = text.trim().split(/\s+/).map((w) => COLUMN_KEYS[w] ?? null);
      return;
    }
    const m = ROW.exec(text);
    if (!m || !this.header) return;
    const values = m[2]!.trim().split(/\s+/).map(Number);
    if (m[1] === 'Mem') {
      if (this.found) return;
      const mem: Partial<GuestMemory> = { line: lineNo };
      this.header.forEach((key, i) => {
        if (key && key !== 'line' && values[i] !== undefined) (mem as Record<string, number>)[key] = values[i]!;
      });
      if (mem.total_mib === undefined || mem.used_mib === undefined || mem.free_mib === undefined) return;
      this.found = mem as GuestMemory;
    } else if (this.found && this.found.swap_total_mib === undefined && lineNo - this.found.line <= 2) {
      // Swap has total, used, free: the first three header columns.
      [this.found.swap_total_mib, this.found.swap_used_mib, this.found.swap_free_mib] = values as [number, number, number];
      this.header = null;
    }
  }

  result(): GuestMemory | null {
    return this.found;
  }
}

/** `free -m` from plain text (lines with or without `<t_us> ` host stamps). */
export function parseFreeM(text: string): GuestMemory | null {
  const r = new GuestMemoryReader();
  text.split('\n').forEach((raw, i) => r.text(raw.replace(/\r$/, '').replace(/^\d+(?:\.\d+)? (?=\s|[A-Za-z])/, ''), i + 1));
  return r.result();
}
