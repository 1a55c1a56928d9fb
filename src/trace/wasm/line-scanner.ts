/**
 * The trace reader's fast path, in AssemblyScript, compiled to WebAssembly by `npm run build`
 * (dist/src/trace/wasm/line-scanner.wasm). It parses the lines that make up nearly all of a trace,
 *
 *   <digits>[.<digits>] <name> in section .text
 *   <digits>[.<digits>] <name> + <decimal offset> in section .text
 *   <digits>[.<digits>] <name> + <decimal offset>
 *   <digits>[.<digits>] <name>                          (a bare hex address, or a name alone)
 *
 * each with one blank between fields and an LF at its end, and stops at any other line: the TypeScript
 * parser (../parser.ts), which owns the grammar of docs/trace-format.md, parses that one and hands back.
 * Every value made here is the one parser.ts makes for the same line, by the same double-precision
 * operations in the same order (test/line-scanner.test.ts compares the two on every sample and on
 * mutated lines). Function ids come from the TypeScript FunctionTable: the table here only caches
 * name -> id (under a hash of its own, 8 bytes at a time: the table's FNV-1a is a multiply per byte), and
 * a name it has not seen stops the scan (STOP_NEW_NAME) so the caller can intern it and teach it (learn).
 *
 * Why WebAssembly: in JavaScript every byte of a Uint8Array costs a bounds-checked load and the reader ran
 * at the speed of a JS loop that only looks at each byte (~1 GB/s here); this code reads 8 bytes at a time
 * where it can. docs/performance.md has the figures.
 *
 * Memory: one fixed layout (below), never grown, so the host's views of it stay valid.
 */

/** Where the caller copies the lines to scan, and how many bytes fit (the padding after it is never part of a line). */
export const INPUT: u32 = 1 << 16;
export const INPUT_BYTES: u32 = 1 << 20;
/** Events written per scan call at most, in four columns: time (f64), function id (i32), offset (i32), address (f64). */
export const EVENTS: u32 = 8192;
export const OUT_TIME: u32 = INPUT + INPUT_BYTES + 64;
export const OUT_FN: u32 = OUT_TIME + EVENTS * 8;
export const OUT_OFFSET: u32 = OUT_FN + EVENTS * 4;
export const OUT_ADDR: u32 = OUT_OFFSET + EVENTS * 4;
/** After a scan: [0] where it stopped, [1] why (STOP_*), [2] the new name's hash (nameHash), [3] its start, [4] its end. */
export const STATUS: u32 = OUT_ADDR + EVENTS * 8;
/** The name cache: open addressing over SLOTS slots (entry index + 1, 0 = free) at most half full. */
const SLOTS_LOG2: u32 = 16;
const SLOTS: u32 = 1 << SLOTS_LOG2;
const SLOT_TABLE: u32 = STATUS + 64;
/** Entries: hash, name start in the arena, length, function id (4 x i32). */
const ENTRY_TABLE: u32 = SLOT_TABLE + SLOTS * 4;
const ENTRIES_MAX: u32 = SLOTS / 2;
const ARENA: u32 = ENTRY_TABLE + ENTRIES_MAX * 16;
const ARENA_BYTES: u32 = 1 << 20;
/** Bytes of memory the layout needs (the host checks the module's memory is at least this). */
export const MEMORY_BYTES: u32 = ARENA + ARENA_BYTES + 64;

export const STOP_END: i32 = 0;
export const STOP_OTHER: i32 = 1;
export const STOP_NEW_NAME: i32 = 2;
export const STOP_FULL: i32 = 3;

const LF: u32 = 10, SPACE: u32 = 32, DOT: u32 = 46, PLUS: u32 = 43;
/** 10^k for k <= 15, the same doubles as parser.ts's POW10 (10 ** k is exact there). */
const POW10: StaticArray<f64> = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
/** Bare addresses at or above this are kernel-half (x86-64 canonical split), as in parser.ts. */
const USER_LIMIT: f64 = 140737488355328.0;
/** parser.ts's limits (malformed.ts): 2^53 - 1 us, 2^31 - 1 bytes. */
const MAX_TIMESTAMP: f64 = 9007199254740991.0;
const MAX_OFFSET: u32 = 0x7fffffff;
/** Function ids of bare addresses (functions.ts USER, UNRESOLVED). */
const USER: i32 = 0, UNRESOLVED: i32 = 1;
/** " in section .text\n" as two little-endian u64 words and the u16 after them. */
let tail0: u64 = 0, tail1: u64 = 0, tail2: u32 = 0;
let entries: u32 = 0;
let arenaUsed: u32 = 0;

/** Sets " in section .text\n" (passed by the host as bytes so no constant here can disagree with parser.ts). */
export function setTail(a: u64, b: u64, c: u32): void {
  tail0 = a; tail1 = b; tail2 = c;
}

const BLANK_OR_BELOW = i8x16.splat(32);
const DEL_OR_ABOVE = i8x16.splat(<i8>127);

/** Bit k set: the byte at p + k cannot be in a name (a blank or control byte, or 127 and above). */
@inline function outsideName(p: u32): i32 {
  const v = v128.load(p);
  return i8x16.bitmask(v128.or(i8x16.le_u(v, BLANK_OR_BELOW), i8x16.ge_u(v, DEL_OR_ABOVE)));
}

/** The cache's hash of the bytes [p, end): 8 at a time (the last word masked), multiply-xor, folded to 32 bits. */
@inline function nameHash(p: u32, end: u32): u32 {
  let h: u64 = <u64>(end - p) * 0x9e3779b97f4a7c15;
  for (; p + 8 <= end; p += 8) h = (h ^ load<u64>(p)) * 0xff51afd7ed558ccd;
  if (p < end) h = (h ^ (load<u64>(p) & ((<u64>1 << (<u64>(end - p) << 3)) - 1))) * 0xff51afd7ed558ccd;
  return <u32>(h ^ (h >> 29) ^ (h >> 47));
}

@inline function isDigit(c: u32): bool { return c - 48 < 10; }

const ZEROS = i8x16.splat(48);
const NINES = i8x16.splat(9);
const ASCII_ZEROS: u64 = 0x3030303030303030;

/** Bit k set: the byte at p + k is not a decimal digit. */
@inline function nonDigits(p: u32): i32 {
  return i8x16.bitmask(i8x16.gt_u(i8x16.sub(v128.load(p), ZEROS), NINES));
}

/**
 * The value of the n (1..15) decimal digits at p. A u64 holds 8 digits, the first in its lowest byte:
 * minus ASCII '0' per byte (bytes past the digits may borrow, but only upwards, and are shifted out),
 * shifted so that missing leading digits are zeros, then combined in pairs, quads and the whole.
 */
@inline function digitsValue(p: u32, n: u32): u64 {
  if (n <= 8) return eightDigits((load<u64>(p) - ASCII_ZEROS) << (<u64>(8 - n) << 3));
  return eightDigits((load<u64>(p) - ASCII_ZEROS) << (<u64>(16 - n) << 3)) * 100000000 + eightDigits(load<u64>(p + n - 8) - ASCII_ZEROS);
}

/** Eight digit values, the most significant in the lowest byte, as one number. */
@inline function eightDigits(d: u64): u64 {
  d = (d * 10 + (d >> 8)) & 0x00ff00ff00ff00ff;    // 16-bit lanes: 10 * first + second
  d = (d * 100 + (d >> 16)) & 0x0000ffff0000ffff;  // 32-bit lanes: 100 * first pair + second pair
  return (d * 10000 + (d >> 32)) & 0xffffffff;    // 10000 * first quad + second quad
}
@inline function hexValue(c: u32): u32 { return c <= 57 ? c - 48 : (c | 32) - 87; }
@inline function isHex(c: u32): bool { return c - 48 < 10 || (c | 32) - 97 < 6; }

/**
 * Scans the lines in [s, end) of memory (end just past an LF) and writes one event per line to the
 * OUT_* columns. Returns how many; STATUS says where it stopped and why. Lines longer than maxLineBytes
 * (before their LF) are left to the host.
 */
export function scan(s: u32, end: u32, maxLineBytes: u32): u32 {
  let n: u32 = 0;
  let why = STOP_END;
  while (s < end) {
    if (n == EVENTS) { why = STOP_FULL; break; }
    let i = s;
    let c = <u32>load<u8>(i);
    // Timestamp: 1 to 15 integer digits [. 1 to 15 fraction digits], counted 16 bytes at a time and
    // converted 8 at a time; below 10^15 every value is an exact integer, in a u64 as in a double.
    const digits = ctz(nonDigits(s));
    if (digits == 0 || digits > 15) { why = STOP_OTHER; break; }
    let t: f64 = <f64>digitsValue(s, digits);
    i = s + digits;
    c = load<u8>(i);
    if (c == DOT) {
      const fd = ctz(nonDigits(i + 1));
      if (fd == 0 || fd > 15) { why = STOP_OTHER; break; }
      t = t + <f64>digitsValue(i + 1, fd) / unchecked(POW10[fd]);
      i += 1 + fd;
      c = load<u8>(i);
    }
    if (c != SPACE || !(t <= MAX_TIMESTAMP)) { why = STOP_OTHER; break; }
    c = load<u8>(++i);
    // The name: 16 bytes at a time to its first byte outside 33..126 (a blank, the LF, or a byte that
    // makes the line malformed), then hashed 8 bytes at a time (the cache's own hash, not the FunctionTable's).
    const nameStart = i;
    let bits = outsideName(i);
    while (bits == 0) {
      i += 16;
      bits = outsideName(i);
    }
    i += ctz(bits);
    c = load<u8>(i);
    const nameEnd = i;
    if (nameEnd == nameStart) { why = STOP_OTHER; break; }
    let offset: i32 = 0;
    let alone = false;
    if (c == LF) {
      alone = true;
    } else if (c != SPACE) {
      why = STOP_OTHER; break;
    } else {
      if (load<u8>(i + 1) == PLUS && load<u8>(i + 2) == SPACE) {
        i += 3;
        c = load<u8>(i);
        const offStart = i;
        let off: u64 = 0;
        while (isDigit(c)) { off = off * 10 + <u64>(c - 48); c = load<u8>(++i); }
        if (i == offStart || i - offStart > 10 || off > <u64>MAX_OFFSET) { why = STOP_OTHER; break; }
        offset = <i32>off;
      }
      if (c == SPACE) {
        if (load<u64>(i) != tail0 || load<u64>(i + 8) != tail1 || <u32>load<u16>(i + 16) != tail2) { why = STOP_OTHER; break; }
        i += 17;
      } else if (c != LF) {
        why = STOP_OTHER; break;
      }
    }
    // i is at the LF.
    if (i - s > maxLineBytes) { why = STOP_OTHER; break; }
    let fn: i32;
    let addr: f64 = 0;
    if (alone && nameEnd - nameStart <= 16 && allHex(nameStart, nameEnd)) {
      for (let k = nameStart; k < nameEnd; k++) addr = addr * 16 + <f64>hexValue(load<u8>(k));
      fn = addr < USER_LIMIT ? USER : UNRESOLVED;
      offset = -1;
    } else {
      const h = nameHash(nameStart, nameEnd);
      fn = find(nameStart, nameEnd - nameStart, h);
      if (fn < 0) {
        why = STOP_NEW_NAME;
        store<u32>(STATUS + 8, h);
        store<u32>(STATUS + 12, nameStart);
        store<u32>(STATUS + 16, nameEnd);
        break;
      }
    }
    store<f64>(OUT_TIME + (n << 3), t);
    store<i32>(OUT_FN + (n << 2), fn);
    store<i32>(OUT_OFFSET + (n << 2), offset);
    store<f64>(OUT_ADDR + (n << 3), addr);
    n++;
    s = i + 1;
  }
  store<u32>(STATUS, s);
  store<i32>(STATUS + 4, why);
  return n;
}

function allHex(start: u32, end: u32): bool {
  for (let k = start; k < end; k++) if (!isHex(load<u8>(k))) return false;
  return true;
}

/** The function id cached for the len bytes at p with hash h (nameHash), or -1. */
@inline function find(p: u32, len: u32, h: u32): i32 {
  let slot = h & (SLOTS - 1);
  let e = load<u32>(SLOT_TABLE + (slot << 2));
  while (e != 0) {
    const entry = ENTRY_TABLE + ((e - 1) << 4);
    if (load<u32>(entry) == h && load<u32>(entry + 8) == len && same(load<u32>(entry + 4), p, len)) return load<i32>(entry + 12);
    slot = (slot + 1) & (SLOTS - 1);
    e = load<u32>(SLOT_TABLE + (slot << 2));
  }
  return -1;
}

@inline function same(a: u32, b: u32, len: u32): bool {
  let k: u32 = 0;
  for (; k + 8 <= len; k += 8) if (load<u64>(a + k) != load<u64>(b + k)) return false;
  for (; k < len; k++) if (load<u8>(a + k) != load<u8>(b + k)) return false;
  return true;
}

/**
 * Caches name -> id for the bytes [start, end) of memory (hash h, nameHash's, as scan reported it). Returns false,
 * caching nothing, when the cache is full (a trace with tens of thousands of distinct names: the host then
 * parses lines with new names itself).
 */
export function learn(start: u32, end: u32, h: u32, id: i32): bool {
  const len = end - start;
  if (entries == ENTRIES_MAX || arenaUsed + len > ARENA_BYTES) return false;
  memory.copy(ARENA + arenaUsed, start, len);
  const entry = ENTRY_TABLE + (entries << 4);
  store<u32>(entry, h);
  store<u32>(entry + 4, ARENA + arenaUsed);
  store<u32>(entry + 8, len);
  store<i32>(entry + 12, id);
  entries++;
  arenaUsed += len;
  let slot = h & (SLOTS - 1);
  while (load<u32>(SLOT_TABLE + (slot << 2)) != 0) slot = (slot + 1) & (SLOTS - 1);
  store<u32>(SLOT_TABLE + (slot << 2), entries);
  return true;
}
