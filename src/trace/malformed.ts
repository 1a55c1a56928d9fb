/**
 * Why a trace line was not read: one code per failure, as csv-parse gives each of its errors a code, so a
 * warning says what was wrong with the line and a script can tell the failures apart. The list, with an
 * example of each, is in docs/trace-format.md ("Malformed-line codes"); keep the two in step.
 * The parser passes the numeric code (no string is built on the hot path); these tables name it.
 */

export const BAD_TIMESTAMP = 0;
export const TIMESTAMP_RANGE = 1;
export const MISSING_SYMBOL = 2;
export const BAD_SYMBOL = 3;
export const BAD_OFFSET = 4;
export const OFFSET_RANGE = 5;
export const MISSING_SECTION = 6;
export const UNEXPECTED_TEXT = 7;
export const LINE_TOO_LONG = 8;

export type MalformedCode = number;

/** The codes' names, by number: what warnings and `--strict` errors print. */
export const MALFORMED_CODES = [
  'BAD_TIMESTAMP', 'TIMESTAMP_RANGE', 'MISSING_SYMBOL', 'BAD_SYMBOL', 'BAD_OFFSET', 'OFFSET_RANGE',
  'MISSING_SECTION', 'UNEXPECTED_TEXT', 'LINE_TOO_LONG',
] as const;

export type MalformedCodeName = (typeof MALFORMED_CODES)[number];

/** Largest timestamp read (2^53 - 1 us): above it a double no longer holds every whole microsecond. */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;
/** Largest offset into a function (2^31 - 1 bytes): events carry offsets as 32-bit integers (events.ts). */
export const MAX_OFFSET = 0x7fffffff;
/**
 * Longest line read, in bytes before its LF (64 KiB). A trace line is a timestamp, a symbol (at most 512
 * bytes: KSYM_NAME_LEN in include/linux/kallsyms.h since 6.1) and a section; capture's comment lines hold a
 * kernel command line (at most 2048 bytes on x86: COMMAND_LINE_SIZE). Longer is not a trace line, and
 * bounding it bounds the memory and the work a line can cost whatever the input form.
 */
export const MAX_LINE_BYTES = 1 << 16;

const REASONS: Record<MalformedCodeName, string> = {
  BAD_TIMESTAMP: 'the line does not start with a timestamp (digits, optionally a dot and more digits) and a blank',
  TIMESTAMP_RANGE: `the timestamp is above ${MAX_TIMESTAMP} us (2^53 - 1)`,
  MISSING_SYMBOL: 'nothing follows the timestamp',
  BAD_SYMBOL: 'the symbol holds a byte that is not printable ASCII',
  BAD_OFFSET: 'the "+" is not followed by a decimal offset and a blank or the end of the line',
  OFFSET_RANGE: `the offset is above ${MAX_OFFSET} (2^31 - 1)`,
  MISSING_SECTION: '"in" is not followed by "section" and a section name',
  UNEXPECTED_TEXT: 'text where "+ <offset>", "in section <name> [of <file>]" or the end of the line belongs',
  LINE_TOO_LONG: `the line is longer than ${MAX_LINE_BYTES} bytes; the rest of it was not read`,
};

/** The code's name and what it means, for a warning: `BAD_OFFSET (the "+" is not followed by ...)`. */
export function describeMalformed(code: MalformedCode): string {
  const name = MALFORMED_CODES[code]!;
  return `${name}: ${REASONS[name]}`;
}

/** How many malformed lines the reader reports on stderr before it only counts them (ReadOptions.reportLimit). */
export const DEFAULT_REPORT_LIMIT = 5;
