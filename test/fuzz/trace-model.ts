/**
 * The reference model of the trace format: what each line should parse to, written straight from the
 * grammar in docs/trace-format.md with regular expressions on one line's text at a time. It is slow and
 * plain on purpose, so it can be checked by reading; the fuzz suite compares the real, byte-scanning,
 * chunked reader (src/trace/parser.ts) with it. It shares no code with the reader.
 */

export type LineOutcome =
  | { kind: 'blank' }
  | { kind: 'comment' }
  | { kind: 'malformed'; code: string; text: string }
  | { kind: 'event'; t: number; name: string; offset: number; addr: number };

const MAX_T = 2 ** 53 - 1;
const MAX_OFFSET = 2 ** 31 - 1;
const BLANKS = /^[ \t]+/;
const trimBlanks = (s: string): string => s.replace(BLANKS, '');

/** What one line (its text without the LF, as latin1) parses to. */
export function modelLine(line: string, maxLineBytes: number): LineOutcome {
  const shown = (line.endsWith('\r') ? line.slice(0, -1) : line).slice(0, 120);
  const bad = (code: string): LineOutcome => ({ kind: 'malformed', code, text: shown });
  if (line.length > maxLineBytes) return { kind: 'malformed', code: 'LINE_TOO_LONG', text: line.slice(0, 120) };
  // One CR before the LF is not part of the line.
  const body = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (/^[ \t]*$/.test(body)) return { kind: 'blank' };
  if (/^[ \t]*#/.test(body)) return { kind: 'comment' };

  const time = /^[ \t]*(\d+(?:\.\d+)?)(?=[ \t]|$)/.exec(body);
  if (!time) return bad('BAD_TIMESTAMP');
  const t = Number(time[1]);
  if (!(t <= MAX_T)) return bad('TIMESTAMP_RANGE');
  let rest = trimBlanks(body.slice(time[0].length));
  if (rest === '') return bad('MISSING_SYMBOL');

  const symbol = /^[!-~]*/.exec(rest)![0];
  const after = rest.slice(symbol.length);
  if (symbol === '' || (after !== '' && !/^[ \t]/.test(after))) return bad('BAD_SYMBOL');
  rest = trimBlanks(after);
  if (rest === '') {
    if (symbol.length <= 16 && /^[0-9a-fA-F]+$/.test(symbol)) {
      const addr = parseInt(symbol, 16);
      return { kind: 'event', t, name: addr < 0x800000000000 ? '[user]' : '[unresolved]', offset: -1, addr };
    }
    return { kind: 'event', t, name: symbol, offset: 0, addr: 0 };
  }

  let offset = 0;
  if (rest.startsWith('+')) {
    const off = /^\+[ \t]*(\d+)(?=[ \t]|$)/.exec(rest);
    if (!off) return bad('BAD_OFFSET');
    offset = Number(off[1]);
    if (offset > MAX_OFFSET) return bad('OFFSET_RANGE');
    rest = trimBlanks(rest.slice(off[0].length));
    if (rest === '') return { kind: 'event', t, name: symbol, offset, addr: 0 };
  }
  if (!/^in(?=[ \t]|$)/.test(rest)) return bad('UNEXPECTED_TEXT');
  const section = /^in[ \t]+section[ \t]+[!-~]+(?:[ \t]+of[ \t]+[!-~]+)?/.exec(rest);
  if (!section) return bad('MISSING_SECTION');
  if (trimBlanks(rest.slice(section[0].length)) !== '') return bad('UNEXPECTED_TEXT');
  return { kind: 'event', t, name: symbol, offset, addr: 0 };
}

/** A whole input: lines split at LF; a last line without one is still a line. */
export function modelTrace(text: string, maxLineBytes: number): LineOutcome[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => modelLine(l, maxLineBytes));
}
