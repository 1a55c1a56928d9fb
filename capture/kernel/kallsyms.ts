/**
 * Symbols from a kernel image itself: find and decode the kallsyms tables that scripts/kallsyms.c
 * writes into .rodata (what /proc/kallsyms reads), in a vmlinux that has no .symtab (the payload of
 * a distro bzImage is stripped). The tables have no symbols of their own, so they are found by their
 * structure:
 *
 *  - kallsyms_token_table: 256 NUL-terminated tokens. Every byte value that occurs in a symbol name
 *    is a token for itself, so tokens 0x30..0x39 are "0".."9": the bytes 30 00 31 00 .. 39 00.
 *  - kallsyms_token_index: 256 u16, token i's offset in the table; right after the table (8-aligned).
 *    It must agree with the strings exactly, which makes the pair unmistakable.
 *  - kallsyms_markers: u32 (u64 on old kernels) offsets into kallsyms_names of every 256th symbol,
 *    right before the token table, starting at 0 and increasing.
 *  - kallsyms_names: per symbol a length (one byte, or two when the first has bit 7 set: a ULEB128,
 *    since 6.1) and that many token numbers; the first expanded character is the nm type letter.
 *  - kallsyms_num_syms: u32 right before kallsyms_names.
 *  - kallsyms_offsets + kallsyms_relative_base (CONFIG_KALLSYMS_BASE_RELATIVE) or kallsyms_addresses:
 *    before num_syms up to 6.3 (order: offsets, relative_base, num_syms, names, markers, tokens),
 *    after the token index from 6.4 on. Offsets are u32 from the base, or with
 *    CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP) non-negative values are absolute and negative ones
 *    mean base - 1 - offset. Both candidate places and both offset modes are tried; the right one is the
 *    one whose addresses come out sorted (scripts/kallsyms sorts the table by address).
 *
 * Entry points: decodeKallsyms(vmlinux, file) -> [{addr, type, name}], toSystemMap(entries).
 * Example (Debian 6.1.0-56 cloud): ~87 k symbols, `ffffffff81000000 T _stext`.
 */
import { UserError } from '../../src/errors.js';

export interface KallsymsEntry {
  addr: bigint;
  /** nm type letter: T/t text, D/d data, R/r rodata, B/b bss, A/a absolute, W/w weak, V/v ... */
  type: string;
  name: string;
}

/** Where the tables were found (file offsets into the vmlinux) and how addresses are stored. */
export interface KallsymsLayout {
  numSyms: number;
  names: number;
  markers: number;
  markerSize: 4 | 8;
  tokenTable: number;
  tokenIndex: number;
  /** kallsyms_offsets or kallsyms_addresses. */
  addresses: number;
  addressMode: 'absolute' | 'relative' | 'absolute-percpu';
  /** kallsyms_relative_base (0n in absolute mode). */
  relativeBase: bigint;
}

const DIGIT_TOKENS = Buffer.from('0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00', 'latin1');
const KERNEL_HALF = 0xffff800000000000n;

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Decode every kallsyms entry of a vmlinux (ELF or raw image) held in `buf`. */
export function decodeKallsyms(buf: Buffer, file: string): KallsymsEntry[] {
  const layout = findKallsyms(buf, file);
  return readEntries(buf, layout);
}

/** Locate the kallsyms tables; throws a UserError naming the file when they are not there. */
export function findKallsyms(buf: Buffer, file: string): KallsymsLayout {
  const reasons: string[] = [];
  for (let p = buf.indexOf(DIGIT_TOKENS); p >= 0; p = buf.indexOf(DIGIT_TOKENS, p + 1)) {
    const tokens = tokensAround(buf, p);
    if (!tokens) continue;
    const found = tablesBefore(buf, tokens.table, tokens.index, reasons);
    if (found) return found;
  }
  const why = reasons.length ? ` (${reasons[reasons.length - 1]})` : ' (no kallsyms_token_table: the kernel was built without CONFIG_KALLSYMS?)';
  throw new UserError(`${file}: cannot find the kallsyms tables${why}`);
}

/**
 * Given the position of token "0" (index 0x30), find the token table's start and its token index,
 * and check that the index describes the strings exactly.
 */
function tokensAround(buf: Buffer, p: number): { table: number; index: number } | null {
  // Walk forward over tokens 0x30..0xff to the table's end.
  let e = p;
  for (let i = 0x30; i < 256; i++) {
    const nul = buf.indexOf(0, e);
    if (nul < 0 || nul === e || nul - e > 128) return null; // tokens are short and never empty
    e = nul + 1;
  }
  for (const align of [8, 4, 2]) {
    const idx = alignUp(e, align);
    if (idx + 512 > buf.length) continue;
    if (buf.readUInt16LE(idx) !== 0) continue;
    const table = p - buf.readUInt16LE(idx + 2 * 0x30);
    if (table < 0 || table > p) continue;
    let s = table;
    let ok = true;
    for (let i = 0; i < 256 && ok; i++) {
      if (buf.readUInt16LE(idx + 2 * i) !== s - table) ok = false;
      const nul = buf.indexOf(0, s);
      if (nul <= s) ok = false;
      s = nul + 1;
    }
    if (ok && s <= idx && idx - s < align) return { table, index: idx };
  }
  return null;
}

/** From the token table back to the markers, names and num_syms; then the addresses. */
function tablesBefore(buf: Buffer, tokenTable: number, tokenIndex: number, reasons: string[]): KallsymsLayout | null {
  for (const markerSize of [4, 8] as const) {
    for (const pad of markerSize === 4 ? [0, 4] : [0]) {
      const markers = markersEndingAt(buf, tokenTable - pad, markerSize);
      if (!markers) continue;
      const names = namesBefore(buf, markers.start, markers.values);
      if (!names) {
        reasons.push(`markers at 0x${markers.start.toString(16)} but no kallsyms_names/num_syms before them`);
        continue;
      }
      const layout = addressesFor(buf, names.numSymsAt, names.numSyms, tokenIndex + 512);
      if (!layout) {
        reasons.push(`names at 0x${names.start.toString(16)} (${names.numSyms} symbols) but no sorted kallsyms_offsets/addresses`);
        continue;
      }
      return { numSyms: names.numSyms, names: names.start, markers: markers.start, markerSize, tokenTable, tokenIndex, ...layout };
    }
  }
  return withSeqsOfNames(buf, tokenTable, tokenIndex, reasons);
}

/**
 * 6.2 and 6.3 (and distro kernels that took the backport, such as Debian's 6.1.0-56) put
 * kallsyms_seqs_of_names (3 bytes per symbol, big-endian) between the markers and the token table:
 * markers (u32, 8-aligned), seqs (8-aligned), token table (8-aligned). Its size depends on num_syms,
 * so try every count whose markers would start with 0 there and let the names walk confirm it.
 */
function withSeqsOfNames(buf: Buffer, tokenTable: number, tokenIndex: number, reasons: string[]): KallsymsLayout | null {
  for (let n = 257; n < 1 << 22; n++) {
    const m = Math.ceil(n / 256);
    const seqs = tokenTable - alignUp(3 * n, 8);
    const markersStart = seqs - alignUp(4 * m, 8);
    if (markersStart < 8) break;
    if (buf.readUInt32LE(markersStart) !== 0 || buf.readUInt32LE(markersStart + 4) === 0) continue;
    const values: number[] = [];
    for (let i = 0; i < m; i++) values.push(buf.readUInt32LE(markersStart + 4 * i));
    if (!values.every((v, i) => i === 0 || (v > values[i - 1]! && v - values[i - 1]! <= 256 * 600))) continue;
    const names = namesBefore(buf, markersStart, values);
    if (!names || names.numSyms !== n) continue;
    const layout = addressesFor(buf, names.numSymsAt, n, tokenIndex + 512);
    if (!layout) {
      reasons.push(`names at 0x${names.start.toString(16)} (${n} symbols) but no sorted kallsyms_offsets/addresses`);
      continue;
    }
    return { numSyms: n, names: names.start, markers: markersStart, markerSize: 4, tokenTable, tokenIndex, ...layout };
  }
  return null;
}

/** Read markers backwards from `end`: increasing values down to a first marker of 0. */
function markersEndingAt(buf: Buffer, end: number, size: 4 | 8): { start: number; values: number[] } | null {
  const read = (o: number): number => (size === 4 ? buf.readUInt32LE(o) : Number(buf.readBigUInt64LE(o)));
  const values: number[] = [];
  let o = end - size;
  let next = Infinity;
  while (o >= 0) {
    const v = read(o);
    // 256 names take well under 256 * 600 bytes; a bigger step means these are not markers.
    if (v >= next || (next !== Infinity && next - v > 256 * 600)) return null;
    values.push(v);
    if (v === 0) break;
    next = v;
    o -= size;
  }
  if (o < 0 || values.length < 2) return null;
  return { start: o, values: values.reverse() };
}

/** Length of the name entry at `o`: one byte, or a two-byte ULEB128 when bit 7 of the first is set. */
function entryLen(buf: Buffer, o: number): { len: number; header: number } {
  const b0 = buf[o]!;
  if (b0 & 0x80) return { len: (b0 & 0x7f) | (buf[o + 1]! << 7), header: 2 };
  return { len: b0, header: 1 };
}

/**
 * Find kallsyms_names ending just before the markers (within alignment padding) and starting right
 * after a u32 num_syms that fits the number of markers; walking the names must hit every marker.
 */
function namesBefore(buf: Buffer, markersStart: number, markers: number[]): { start: number; numSyms: number; numSymsAt: number } | null {
  const m = markers.length;
  const last = markers[m - 1]!;
  // The last group holds 1..256 names of at most ~512 bytes each.
  const hi = markersStart - last - 1;
  const lo = Math.max(8, hi - 256 * 520);
  const fits = (n: number): boolean => n > (m - 1) * 256 && n <= m * 256;
  for (let start = hi; start >= lo; start--) {
    if (start % 4 !== 0) continue;
    // num_syms is a u32 at an 8-aligned label; kallsyms_names follows it directly, or (when the names
    // label is aligned too, as in 6.2+) after 4 bytes of padding.
    let numSymsAt = start - 4;
    if (numSymsAt % 8 !== 0 || !fits(buf.readUInt32LE(numSymsAt))) {
      numSymsAt = start - 8;
      if (start % 8 !== 0 || buf.readUInt32LE(start - 4) !== 0 || !fits(buf.readUInt32LE(numSymsAt))) continue;
    }
    const n = buf.readUInt32LE(numSymsAt);
    let o = start;
    let ok = true;
    for (let i = 0; i < n; i++) {
      if ((i & 255) === 0 && o - start !== markers[i >> 8]) {
        ok = false;
        break;
      }
      const { len, header } = entryLen(buf, o);
      if (len === 0) {
        ok = false;
        break;
      }
      o += header + len;
      if (o > markersStart) {
        ok = false;
        break;
      }
    }
    if (ok && markersStart - o < 8) return { start, numSyms: n, numSymsAt };
  }
  return null;
}

type AddressLayout = Pick<KallsymsLayout, 'addresses' | 'addressMode' | 'relativeBase'>;

/** Try the places and encodings the addresses can have; keep the one that decodes sorted. */
function addressesFor(buf: Buffer, numSymsAt: number, n: number, tokenIndexEnd: number): AddressLayout | null {
  const candidates: AddressLayout[] = [];
  // Up to 6.3: offsets (4n, 8-aligned), relative_base (8), num_syms.
  const relBaseOld = numSymsAt - 8;
  if (relBaseOld >= 0) {
    const base = buf.readBigUInt64LE(relBaseOld);
    const offs = relBaseOld - alignUp(4 * n, 8);
    for (const mode of ['absolute-percpu', 'relative'] as const) candidates.push({ addresses: offs, addressMode: mode, relativeBase: base });
    candidates.push({ addresses: numSymsAt - alignUp(8 * n, 8), addressMode: 'absolute', relativeBase: 0n });
  }
  // 6.4 on: after the token index: offsets, relative_base.
  const offsNew = alignUp(tokenIndexEnd, 8);
  const relBaseNew = alignUp(offsNew + 4 * n, 8);
  if (relBaseNew + 8 <= buf.length) {
    const base = buf.readBigUInt64LE(relBaseNew);
    for (const mode of ['absolute-percpu', 'relative'] as const) candidates.push({ addresses: offsNew, addressMode: mode, relativeBase: base });
    candidates.push({ addresses: offsNew, addressMode: 'absolute', relativeBase: 0n });
  }
  for (const c of candidates) {
    if (c.addresses < 0 || c.addresses + (c.addressMode === 'absolute' ? 8 : 4) * n > buf.length) continue;
    if (c.addressMode !== 'absolute' && c.relativeBase < KERNEL_HALF) continue;
    const addrs = readAddresses(buf, c, n);
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) if (addrs[i]! < addrs[i - 1]!) sorted = false;
    // Most symbols are kernel text/data: the upper half of the address space.
    if (sorted && addrs[n - 1]! >= KERNEL_HALF) return c;
  }
  return null;
}

function readAddresses(buf: Buffer, l: AddressLayout, n: number): BigUint64Array {
  const out = new BigUint64Array(n);
  const mask = (1n << 64n) - 1n;
  for (let i = 0; i < n; i++) {
    if (l.addressMode === 'absolute') {
      out[i] = buf.readBigUInt64LE(l.addresses + 8 * i);
    } else if (l.addressMode === 'relative') {
      out[i] = (l.relativeBase + BigInt(buf.readUInt32LE(l.addresses + 4 * i))) & mask;
    } else {
      const off = buf.readInt32LE(l.addresses + 4 * i);
      out[i] = off >= 0 ? BigInt(off) : (l.relativeBase - 1n - BigInt(off)) & mask;
    }
  }
  return out;
}

/** Expand every name and pair it with its address. */
export function readEntries(buf: Buffer, l: KallsymsLayout): KallsymsEntry[] {
  const tokens: string[] = [];
  for (let i = 0; i < 256; i++) {
    const s = l.tokenTable + buf.readUInt16LE(l.tokenIndex + 2 * i);
    tokens.push(buf.toString('latin1', s, buf.indexOf(0, s)));
  }
  const addrs = readAddresses(buf, l, l.numSyms);
  const out: KallsymsEntry[] = new Array(l.numSyms);
  let o = l.names;
  for (let i = 0; i < l.numSyms; i++) {
    const { len, header } = entryLen(buf, o);
    o += header;
    let s = '';
    for (let k = 0; k < len; k++) s += tokens[buf[o + k]!];
    o += len;
    out[i] = { addr: addrs[i]!, type: s[0] ?? '?', name: s.slice(1) };
  }
  return out;
}

/** System.map text: one `ffffffff81000000 T _stext` line per symbol, in table (address) order. */
export function toSystemMap(entries: readonly KallsymsEntry[]): string {
  const lines = new Array<string>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    lines[i] = `${e.addr.toString(16).padStart(16, '0')} ${e.type} ${e.name}`;
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
