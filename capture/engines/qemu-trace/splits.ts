/**
 * The plugin's function boundaries (its splits= file), from the same System.map text the reader
 * symbolises with: every symbol address, sorted, with what the range up to the next address is:
 *   0 a function (a record when execution enters it from another range)
 *   1 a thunk folded into its caller (format.ts FOLDED_SYMBOLS: no record)
 *   2 no function (a data symbol, or an end marker such as _etext): each block is its own range, so
 *     kernel code no symbol covers (module code, code past _einittext) keeps every change of place.
 * Splitting at every symbol, not only text ones, makes the plugin's ranges at least as fine as the
 * reader's names, so no change of name is lost; a record the reader names like the one before it
 * costs a few bytes and changes no answer.
 * File layout (little-endian): u64 count, count x u64 address, count x u8 kind.
 */
import { FOLDED_SYMBOLS } from '../../../src/trace/recording/format.js';

const LINE = /^([0-9a-fA-F]{1,16})(?: [0-9a-fA-F]{1,16})? ([A-Za-z?-]) (\S+)/;
/** Linker-script markers that end a region (src/symbols/system-map.ts names the same kind). */
const END_MARKER = /^(?:_end|_etext|_edata|_einittext|__bss_stop|__brk_limit|__init_end|__per_cpu_end|__smp_locks_end|__nosave_end|__init_scratch_end|__indirect_thunk_end|__end_.+|__.+_text_end)$/;

export const KIND = { function: 0, fold: 1, bare: 2 } as const;

export interface Splits {
  addresses: bigint[];
  kinds: number[];
}

export function splitsFromSystemMap(text: string): Splits {
  const best = new Map<bigint, number>();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const type = m[2]!;
    if (type === 'A' || type === 'a' || type === 'U' || type === 'w' || type === 'v') continue;
    const addr = BigInt('0x' + m[1]!);
    const name = m[3]!;
    const text = /[TtWw]/.test(type) && !END_MARKER.test(name);
    const kind = !text ? KIND.bare : FOLDED_SYMBOLS.test(name) ? KIND.fold : KIND.function;
    // Several names at one address: a function among them wins, then a thunk, then nothing.
    const had = best.get(addr);
    if (had === undefined || kind < had) best.set(addr, kind);
  }
  const addresses = [...best.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { addresses, kinds: addresses.map((a) => best.get(a)!) };
}

export function encodeSplits(s: Splits): Buffer {
  const n = s.addresses.length;
  const b = Buffer.alloc(8 + 9 * n);
  b.writeBigUInt64LE(BigInt(n), 0);
  for (let i = 0; i < n; i++) b.writeBigUInt64LE(s.addresses[i]!, 8 + 8 * i);
  for (let i = 0; i < n; i++) b[8 + 8 * n + i] = s.kinds[i]!;
  return b;
}
