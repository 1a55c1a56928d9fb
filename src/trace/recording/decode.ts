/**
 * Reads a whole-boot recording (format.ts): frames, then records, as (host ns, instruction count,
 * address) triples, synchronously and one frame at a time (a frame is at most a few MiB decoded), so
 * memory stays flat however long the boot was.
 *
 *   const rec = openRecording('captures/x/recording.bin');     // header, symbols, how it ended
 *   decodeRecords(rec, (tNs, instructions, address) => ...);    // address: signed (kernel < 0)
 *
 * A recording cut short (QEMU killed before the plugin wrote its end frame, or a partial last frame)
 * reads up to its last whole frame and `rec.cut` says why; a frame that fails its CRC-32, an unknown
 * frame type or encoding, a record running past its frame, or a missing header is corruption:
 * UserError naming the file and the byte offset.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32, inflateRawSync, inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { messageOf, UserError } from '../../errors.js';
import {
  ENCODING, FILE_HEADER_BYTES, FORMAT_VERSION, FRAME, FRAME_HEADER_BYTES, MAX_FRAME_BYTES, isRecording,
  type CaptureEnd, type PluginEnd, type RecordingHeader, type SyscallEntry,
} from './format.js';

export interface FrameInfo {
  type: number;
  encoding: number;
  offset: number;
  storedLength: number;
  rawLength: number;
  count: number;
  crc: number;
}

export interface Recording {
  path: string;
  size: number;
  header: RecordingHeader;
  /** System.map text: the kernel's symbols, then the modules' (kallsyms lines), if any. */
  symbols: string;
  pluginEnd: PluginEnd | null;
  captureEnd: CaptureEnd | null;
  /** The 'R' frames in file order. */
  recordFrames: FrameInfo[];
  /** Why the recording is not whole (null: it is), in words for a one-line warning. */
  cut: string | null;
  /** System call entries read from the registers (QEMU 10's plugin); null when the recording has none (QEMU 7.2). */
  syscalls: SyscallEntry[] | null;
}

const KNOWN_TYPES = new Set<number>(Object.values(FRAME));
const KNOWN_ENCODINGS = new Set<number>(Object.values(ENCODING));

/** Whether a file starts with the recording magic (false for anything unreadable). */
export function fileIsRecording(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.alloc(8);
    return readSync(fd, b, 0, 8, 0) === 8 && isRecording(b);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Reads the frame index and the header, symbol and end frames. Throws UserError. */
export function openRecording(path: string): Recording {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new UserError(`${path}: cannot open the recording (${messageOf(err)})`);
  }
  try {
    const size = fstatSync(fd).size;
    const fh = Buffer.alloc(FILE_HEADER_BYTES);
    if (readSync(fd, fh, 0, FILE_HEADER_BYTES, 0) < FILE_HEADER_BYTES || !isRecording(fh)) {
      throw new UserError(`${path}: not a boot-trace recording (no file header)`);
    }
    const version = fh.readUInt32LE(8);
    if (version !== FORMAT_VERSION) throw new UserError(`${path}: recording format version ${version}; this boot-trace reads version ${FORMAT_VERSION}`);

    const frames: FrameInfo[] = [];
    let cut: string | null = null;
    let offset = FILE_HEADER_BYTES;
    const h = Buffer.alloc(FRAME_HEADER_BYTES);
    while (offset < size) {
      if (size - offset < FRAME_HEADER_BYTES) {
        cut = `a partial frame header at byte ${offset}`;
        break;
      }
      readSync(fd, h, 0, FRAME_HEADER_BYTES, offset);
      const f: FrameInfo = {
        type: h[0]!, encoding: h[1]!, offset, storedLength: h.readUInt32LE(4), rawLength: h.readUInt32LE(8),
        count: h.readUInt32LE(12), crc: h.readUInt32LE(16),
      };
      if (!KNOWN_TYPES.has(f.type) || !KNOWN_ENCODINGS.has(f.encoding) || f.storedLength > MAX_FRAME_BYTES || f.rawLength > MAX_FRAME_BYTES) {
        throw new UserError(`${path}: corrupt recording: no valid frame header at byte ${offset}`);
      }
      if (offset + FRAME_HEADER_BYTES + f.storedLength > size) {
        cut = `a partial frame at byte ${offset} (${size - offset - FRAME_HEADER_BYTES} of ${f.storedLength} bytes)`;
        break;
      }
      frames.push(f);
      offset += FRAME_HEADER_BYTES + f.storedLength;
    }

    const text = (f: FrameInfo | undefined, what: string): string | null => {
      if (!f) return null;
      const raw = framePayload(fd, f, path);
      try {
        return raw.toString(what === 'json' ? 'utf8' : 'latin1');
      } catch {
        throw new UserError(`${path}: corrupt recording: frame at byte ${f.offset}`);
      }
    };
    const json = <T>(f: FrameInfo | undefined): T | null => {
      const s = text(f, 'json');
      if (s === null) return null;
      try {
        return JSON.parse(s) as T;
      } catch {
        throw new UserError(`${path}: corrupt recording: frame at byte ${f!.offset} is not JSON`);
      }
    };
    const first = (type: number): FrameInfo | undefined => frames.find((f) => f.type === type);
    // A file cut before a frame it must have is truncated (copied or written only in part), not corrupt.
    const missing = (what: string): UserError => new UserError(cut
      ? `${path}: recording cut short before its ${what} (${cut}; ${size.toLocaleString('en-US')} bytes): nothing can be read from it`
      : `${path}: corrupt recording: no ${what}`);
    const header = json<RecordingHeader>(first(FRAME.header));
    if (!header) throw missing('header frame');
    const kernelSymbols = text(first(FRAME.symbols), 'text');
    if (kernelSymbols === null) throw missing('symbol frame');
    const modules = frames.filter((f) => f.type === FRAME.modules).map((f) => text(f, 'text')!).join('');
    const pluginEnd = json<PluginEnd>(first(FRAME.pluginEnd));
    const sysFrame = first(FRAME.syscalls);
    const syscalls = sysFrame ? syscallEntries(framePayload(fd, sysFrame, path), sysFrame, path) : null;
    const captureEnd = json<CaptureEnd>(first(FRAME.captureEnd));
    if (!cut && !pluginEnd) cut = 'no end frame from the plugin (QEMU was killed before it could write one)';
    if (!cut && captureEnd && captureEnd.reason !== 'shutdown' && captureEnd.reason !== 'reset' && pluginEnd?.reason === 'exit') {
      cut = `the capture ended (${captureEnd.reason}: ${captureEnd.detail}) before the guest powered off`;
    }
    return {
      path, size, header, symbols: kernelSymbols + (modules && !kernelSymbols.endsWith('\n') ? '\n' : '') + modules,
      pluginEnd, captureEnd, recordFrames: frames.filter((f) => f.type === FRAME.records), cut, syscalls,
    };
  } finally {
    closeSync(fd);
  }
}

/** The entries of a 'Y' frame (format.ts). */
function syscallEntries(buf: Buffer, f: FrameInfo, path: string): SyscallEntry[] {
  const out: SyscallEntry[] = [];
  let p = 0;
  const uv = (): number => {
    let v = 0;
    let s = 1;
    let b: number;
    do {
      if (p >= buf.length) throw new UserError(`${path}: corrupt recording: a system call entry runs past the frame at byte ${f.offset}`);
      b = buf[p++]!;
      v += (b & 0x7f) * s;
      s *= 128;
    } while (b >= 0x80);
    return v;
  };
  let t = 0;
  let ic = 0;
  while (p < buf.length) {
    const kind = buf[p++]!;
    if (kind > 1) throw new UserError(`${path}: corrupt recording: unknown system call entry kind ${kind} in the frame at byte ${f.offset}`);
    t += uv();
    ic += uv();
    const nr = uv();
    const cr3 = uv();
    const n = uv();
    if (p + n > buf.length) throw new UserError(`${path}: corrupt recording: a system call entry runs past the frame at byte ${f.offset}`);
    out.push({ kind: kind as 0 | 1, tNs: t, instructions: ic, nr, cr3, path: buf.toString('latin1', p, p + n) });
    p += n;
  }
  if (out.length !== f.count) throw new UserError(`${path}: corrupt recording: the frame at byte ${f.offset} holds ${out.length} system call entries, not ${f.count}`);
  return out;
}

/** A frame's decoded payload, its CRC checked. */
function framePayload(fd: number, f: FrameInfo, path: string): Buffer {
  const stored = Buffer.allocUnsafe(f.storedLength);
  readSync(fd, stored, 0, f.storedLength, f.offset + FRAME_HEADER_BYTES);
  if ((crc32(stored) >>> 0) !== f.crc) throw new UserError(`${path}: corrupt recording: the frame at byte ${f.offset} fails its CRC-32 check`);
  let raw: Buffer;
  try {
    if (f.encoding === ENCODING.raw) raw = stored;
    else if (f.encoding === ENCODING.deflate) raw = inflateRawSync(stored);
    else if (f.encoding === ENCODING.zlib) raw = inflateSync(stored);
    else {
      const out = zstdDecompress(stored, new Uint8Array(f.rawLength));
      raw = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    }
  } catch (err) {
    throw new UserError(`${path}: corrupt recording: the frame at byte ${f.offset} does not decompress (${messageOf(err)})`);
  }
  if (raw.length !== f.rawLength) throw new UserError(`${path}: corrupt recording: the frame at byte ${f.offset} decodes to ${raw.length} bytes, not ${f.rawLength}`);
  return raw;
}

/**
 * Called once per record, in order. `tNs`: host ns since QEMU started (the plugin's waits taken out);
 * `instructions`: guest instructions since recording started, before this record's instruction or
 * block; `address`: where it ran, as a signed number (kernel addresses are negative).
 */
export type RecordHandler = (tNs: number, instructions: number, address: number) => void;

export interface DecodeProgress {
  (bytesDone: number, bytesTotal: number, records: number): void;
}

/** Decodes every record frame in order. Returns the number of records handed to `onRecord`. */
export function decodeRecords(rec: Recording, onRecord: RecordHandler, progress?: DecodeProgress): number {
  const fd = openSync(rec.path, 'r');
  const block = rec.header.granularity === 'block';
  // Block granularity: the translation map, by translation id.
  let tbAddr = new Float64Array(block ? 1 << 16 : 0);
  let tbCount = new Int32Array(block ? 1 << 16 : 0);
  let records = 0;
  let ic = 0;
  try {
    for (const f of rec.recordFrames) {
      const buf = framePayload(fd, f, rec.path);
      const end = buf.length;
      let p = 0;
      let t = 0;
      let addr = 0;
      let frameIc = 0;
      const bad = (): never => {
        throw new UserError(`${rec.path}: corrupt recording: a record runs past the end of the frame at byte ${f.offset}`);
      };
      for (let k = 0; k < f.count; k++) {
        // Unsigned LEB128, inlined three times: this loop runs ~26 M times for a boot.
        if (p >= end) bad();
        let b = buf[p++]!;
        let v1 = b & 0x7f;
        for (let s = 128; b >= 0x80; s *= 128) {
          if (p >= end) bad();
          b = buf[p++]!;
          v1 += (b & 0x7f) * s;
        }
        if (p >= end) bad();
        b = buf[p++]!;
        let v2 = b & 0x7f;
        for (let s = 128; b >= 0x80; s *= 128) {
          if (p >= end) bad();
          b = buf[p++]!;
          v2 += (b & 0x7f) * s;
        }
        if (block) {
          const id = Math.floor(v1 / 2);
          if (v1 % 2 === 1) {
            // A translation: id, zigzag address (v2), count, sizes.
            if (p >= end) bad();
            b = buf[p++]!;
            let n = b & 0x7f;
            for (let s = 128; b >= 0x80; s *= 128) {
              if (p >= end) bad();
              b = buf[p++]!;
              n += (b & 0x7f) * s;
            }
            p += n;
            if (p > end) bad();
            if (id >= tbAddr.length) {
              const size = Math.max(id + 1, tbAddr.length * 2);
              const a = new Float64Array(size); a.set(tbAddr); tbAddr = a;
              const c = new Int32Array(size); c.set(tbCount); tbCount = c;
            }
            tbAddr[id] = v2 % 2 === 1 ? -(v2 + 1) / 2 : v2 / 2;
            tbCount[id] = n;
            continue;
          }
          if (id >= tbAddr.length) {
            throw new UserError(`${rec.path}: corrupt recording: block ${id} runs before its translation (frame at byte ${f.offset})`);
          }
          t += v2;
          onRecord(t, ic, tbAddr[id]!);
          ic += tbCount[id]!;
          records++;
          continue;
        }
        if (p >= end) bad();
        b = buf[p++]!;
        let v3 = b & 0x7f;
        for (let s = 128; b >= 0x80; s *= 128) {
          if (p >= end) bad();
          b = buf[p++]!;
          v3 += (b & 0x7f) * s;
        }
        t += v1;
        frameIc += v2;
        addr += v3 % 2 === 1 ? -(v3 + 1) / 2 : v3 / 2;
        onRecord(t, frameIc, addr);
        records++;
      }
      if (p !== end) throw new UserError(`${rec.path}: corrupt recording: ${end - p} bytes left over after the records of the frame at byte ${f.offset}`);
      progress?.(f.offset + FRAME_HEADER_BYTES + f.storedLength, rec.size, records);
    }
  } finally {
    closeSync(fd);
  }
  return records;
}
