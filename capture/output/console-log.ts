/**
 * console.log, the capture folder's console file: its line codec (writer and reader), and the patterns every
 * part of boot-trace uses to read a boot's end and its markers (one definition each).
 *
 * The guest's serial console as a timestamped log: bytes from the UART become lines
 *   `<t_us> <text>\n`      e.g. `12634512.3 [    0.000000] Linux version 6.1.0-50-cloud-amd64 ...`
 * where t_us is host microseconds since VM creation at the moment the line's '\n' arrived, written with
 * exactly one decimal (0.1 us): one port-I/O exit costs ~7 us here, so finer digits would be noise and
 * a fixed precision keeps the file diff-able and parseable with one regex.
 * Carriage returns are dropped (the kernel's serial console sends "\r\n"). Lines are decoded as UTF-8.
 *
 * Lines containing `BOOT_TIME:<stage>:<ns>` (printed by the demo guest or an init script) fill
 * `markers[stage] = ns` and `markerTimes[stage] = t_us`; the first occurrence of a stage wins.
 */

import { fstatSync, ftruncateSync, writeSync } from 'node:fs';
import { UserError } from '../../src/errors.js';

/**
 * Appends `text` (whole console lines) to an open console.log. A failed write (ENOSPC on a full disk, EIO)
 * throws a UserError naming `file`; bytes of a partial write are cut off again, so the file keeps only
 * whole lines and reads to its last one.
 */
export function appendConsoleText(fd: number, file: string, text: string): void {
  const bytes = Buffer.from(text);
  let off = 0;
  try {
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  } catch (err) {
    if (off > 0) {
      try {
        ftruncateSync(fd, fstatSync(fd).size - off);
      } catch {
        /* best effort: the file then ends in part of this line */
      }
    }
    throw new UserError(`${file}: cannot write the console (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export interface ConsoleRecorderOptions {
  /** Sink for finished lines, e.g. a synchronous append to console.log. */
  write(text: string): void;
  /** Host microseconds since VM creation. */
  now(): number;
  /** Optional live echo of each finished line (text and '\n', without the timestamp). */
  echo?: (text: string) => void;
}

/** Digits after the decimal point of t_us. */
export const TIMESTAMP_DECIMALS = 1;
/** A line longer than this many bytes without a newline is cut there, so a runaway guest cannot grow memory. */
export const MAX_LINE_BYTES = 64 * 1024;

const NL = 0x0a;
const CR = 0x0d;
/**
 * `BOOT_TIME:<stage>:<ns>`: a stage time the guest reports on its console, in nanoseconds of its own clock
 * (the demo guest, samples/guest; the appliance's /init, capture/appliance/init-script.ts). Global: use with matchAll.
 */
export const BOOT_TIME_MARKER = /BOOT_TIME:([^:\s]+):(\d+)/g;
/**
 * The kernel's own last words (kernel/reboot.c, kernel/panic.c): power-off and halt, restart, panic.
 * With `panic=-1` a panic is followed by a restart, so a panic line decides the end over a reset.
 */
export const KERNEL_POWER_OFF = /reboot: Power down|reboot: System halted/;
export const KERNEL_RESTART = /reboot: Restarting system/;
export const KERNEL_PANIC = /Kernel panic - not syncing/;

/** One console.log line: `<t_us> <text>\n`, t_us with TIMESTAMP_DECIMALS digits. */
export function formatConsoleLine(tUs: number, text: string): string {
  return `${tUs.toFixed(TIMESTAMP_DECIMALS)} ${text}\n`;
}

export class ConsoleRecorder {
  /** Guest-reported stage times in nanoseconds, from BOOT_TIME markers. */
  readonly markers: Record<string, number> = {};
  /** Host time (t_us) of the line that carried each marker. */
  readonly markerTimes: Record<string, number> = {};
  /** Lines written. */
  lines = 0;
  /** Characters of line text written (timestamps, CRs and newlines not counted). */
  chars = 0;
  private buf = Buffer.alloc(256);
  private len = 0;

  constructor(private readonly o: ConsoleRecorderOptions) {}

  byte(b: number): void {
    if (b === NL) {
      this.emit();
      return;
    }
    if (b === CR) return;
    if (this.len === this.buf.length) {
      if (this.len >= MAX_LINE_BYTES) this.emit();
      else {
        const bigger = Buffer.alloc(this.buf.length * 2);
        this.buf.copy(bigger);
        this.buf = bigger;
      }
    }
    this.buf[this.len++] = b;
  }

  /** Feed several bytes (e.g. a `rep outsb` exit's data). */
  bytes(data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.byte(data[i]!);
  }

  /** Write out a partial line (the guest stopped mid-line); it is closed with a newline in the log. */
  flush(): void {
    if (this.len > 0) this.emit();
  }

  /** Bytes of the unfinished line waiting for its newline. */
  get pending(): number {
    return this.len;
  }

  private emit(): void {
    const t = this.o.now();
    const text = this.buf.toString('utf8', 0, this.len);
    this.len = 0;
    this.lines++;
    this.chars += text.length;
    this.o.write(formatConsoleLine(t, text));
    this.o.echo?.(text + '\n');
    if (text.includes('BOOT_TIME:')) {
      for (const m of text.matchAll(BOOT_TIME_MARKER)) {
        const stage = m[1]!;
        if (!(stage in this.markers)) {
          this.markers[stage] = Number(m[2]);
          this.markerTimes[stage] = t;
        }
      }
    }
  }
}

/**
 * Parse one console.log line back into its time and text (null if it is not in that form). For single
 * lines only (tests, tools): whole files go through readCaptureConsole, the one console reader.
 */
export function parseConsoleLine(line: string): { tUs: number; text: string } | null {
  const sp = line.indexOf(' ');
  if (sp <= 0) return null;
  const tUs = Number(line.slice(0, sp));
  if (!Number.isFinite(tUs)) return null;
  return { tUs, text: line.slice(sp + 1) };
}
