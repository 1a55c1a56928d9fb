/**
 * The whole-boot recording: one owner of its bytes (docs/whole-boot.md has the same layout in prose).
 * The QEMU plugin (capture/engines/qemu-trace/plugin/boot-trace-plugin.c) writes the record frames and
 * its end frame; boot-trace writes the file header, the header and symbol frames before QEMU starts,
 * and the module-symbol and capture-end frames after it ends. Little-endian throughout.
 *
 *   file header (16 bytes)  0: magic 89 42 54 52 0d 0a 1a 0a ("\x89BTR\r\n\x1a\n")
 *                           8: u32 format version (1)   12: u32 reserved (0)
 *   frame (24-byte header + payload), repeated to the end of the file:
 *                           0: u8 type ('H','S','R','E','M','C')   1: u8 encoding (0 raw, 1 zstd, 2 deflate, 3 zlib)
 *                           2: u16 reserved   4: u32 stored length   8: u32 raw length (after decoding)
 *                          12: u32 record count (R frames)   16: u32 CRC-32 (IEEE) of the stored bytes
 *                          20: u32 reserved
 *   'H' JSON RecordingHeader; 'S' the kernel's symbols as System.map text; 'R' records;
 *   'E' JSON PluginEnd (the plugin saw QEMU exit or the stop condition); 'M' module symbols as
 *   /proc/kallsyms lines; 'C' JSON CaptureEnd (boot-trace saw QEMU end and why); 'Y' (QEMU 10 only,
 *   written at QEMU's exit) system call entries read from the registers:
 *     u8 kind (0 entry_SYSCALL_64, 1 kernel_execve), varint dt_ns, varint d_instructions, varint number
 *     (rax; 0 for kernel_execve), varint CR3, varint n, n bytes: the file name (execve, kernel_execve; else n = 0)
 *
 * Records in an 'R' frame (unsigned LEB128 varints; zigzag for signed; every frame starts its deltas
 * from zero so it decodes on its own):
 *   function and instruction granularity: dt_ns, d_instructions, zigzag(d_address)
 *   block granularity: varint(id << 1) dt_ns        an executed block (instructions: the previous
 *                                                    executed block's count, summed from the start)
 *                      varint(id << 1 | 1) zigzag(address) n size[0..n-1] (bytes)   a translation
 * Addresses are canonical x86-64 addresses read as signed 64-bit numbers (kernel ones are negative),
 * which JavaScript numbers hold exactly (|a| < 2^47 without 5-level paging).
 */

export const MAGIC = Buffer.from([0x89, 0x42, 0x54, 0x52, 0x0d, 0x0a, 0x1a, 0x0a]);
export const FORMAT_VERSION = 1;
export const FILE_HEADER_BYTES = 16;
export const FRAME_HEADER_BYTES = 24;
/** No frame is bigger than this: a larger length is corruption, not a frame. */
export const MAX_FRAME_BYTES = 1 << 30;

export const FRAME = { header: 0x48, symbols: 0x53, records: 0x52, pluginEnd: 0x45, modules: 0x4d, captureEnd: 0x43, syscalls: 0x59 } as const;
/** deflate: raw RFC 1951 (boot-trace's own text frames); zlib: RFC 1950 (the plugin's default for records). */
export const ENCODING = { raw: 0, zstd: 1, deflate: 2, zlib: 3 } as const;
export const COMPRESSIONS = ['zlib', 'zstd', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const GRANULARITIES = ['function', 'block', 'instruction'] as const;
export type Granularity = (typeof GRANULARITIES)[number];
export const CLOCKS = ['host', 'instructions'] as const;
export type RecordingClock = (typeof CLOCKS)[number];

/** The 'H' frame. */
export interface RecordingHeader {
  format: 'boot-trace recording';
  version: number;
  granularity: Granularity;
  kernel: { path: string; sha256: string; release: string | null };
  qemu: { version: string; args: string[] };
  kernel_cmdline: string;
  /** boot-trace's own argv, for the record. */
  command: string[];
  created: string;
  clocks: {
    host: { unit: 'ns'; origin: string };
    instructions: { unit: 'instructions'; origin: string };
  };
  /** Where recording starts: an address (hex) and its name, or 'firmware' (from QEMU's first instruction). */
  start: { address: string; symbol: string } | 'firmware';
  until: { address: string; symbol: string } | null;
  max_steps: number | null;
  /** Symbols whose records are folded into the caller (the record before them): a regular expression. */
  folded: string;
  /** Where the 'S' frame's symbols came from. */
  symbols: { source: string; count: number };
}

/** The 'E' frame, written by the plugin at QEMU's exit or when its stop condition is met. */
export interface PluginEnd {
  reason: 'exit' | 'until' | 'max-steps';
  started: boolean;
  records: number;
  instructions: number;
  host_ns: number;
  /** ns the vCPU thread waited for the writer thread, already subtracted from host timestamps. */
  excluded_ns: number;
  translations: number;
  frames: number;
  write_ns: number;
  compression: Compression;
  write_errors: number;
}

/** One entry of the 'Y' frame. */
export interface SyscallEntry {
  /** 0: a system call entered entry_SYSCALL_64; 1: the kernel started a program (kernel_execve). */
  kind: 0 | 1;
  tNs: number;
  /** The instruction clock at the entry block: equal to the entry_SYSCALL_64 record's. */
  instructions: number;
  /** rax at entry: the x86-64 system call number. */
  nr: number;
  /** CR3 at entry: the address space (page-table root) of the calling process. */
  cr3: number;
  /** execve's (rdi) or kernel_execve's file name; '' otherwise. */
  path: string;
}

/** The 'C' frame, appended by boot-trace once QEMU has ended. */
export interface CaptureEnd {
  /** capture/exits.ts StopReason: shutdown, reset, timeout, interrupted, internal-error. */
  reason: string;
  detail: string;
}

/**
 * Thunks folded into their caller: retpolines and return thunks (arch/x86/lib/retpoline.S) are jumped
 * to instead of `ret` / indirect calls; they are not functions anyone asked about and they break call
 * stacks. A record in one of them is dropped, so its time stays with the function before it.
 */
export const FOLDED_SYMBOLS = /^(?:__x86_return_thunk|__x86_indirect_(?:\w+_)?thunk_\w+|(?:srso_alias|srso|retbleed|its)_return_thunk|srso(?:_alias)?_safe_ret)$/;

/** The 24-byte header of a frame. */
export function frameHeader(type: number, encoding: number, stored: Uint8Array, rawLength: number, count: number, crc: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h[0] = type;
  h[1] = encoding;
  h.writeUInt32LE(stored.length, 4);
  h.writeUInt32LE(rawLength, 8);
  h.writeUInt32LE(count, 12);
  h.writeUInt32LE(crc >>> 0, 16);
  return h;
}

export function fileHeader(): Buffer {
  const h = Buffer.alloc(FILE_HEADER_BYTES);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(FORMAT_VERSION, 8);
  return h;
}

/** Whether the bytes start like a recording (what the trace reader checks before parsing text). */
export function isRecording(first: Uint8Array): boolean {
  if (first.length < MAGIC.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (first[i] !== MAGIC[i]) return false;
  return true;
}
