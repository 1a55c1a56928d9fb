/**
 * Seeded mutations for the fuzz suite: the same seed gives the same inputs on every run, so a failure
 * found once can be found again (the failing seed is in the report).
 */
import { mulberry32 } from '../../src/random.js';

export type Rng = () => number;
export const rng = mulberry32;
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const int = (r: Rng, n: number): number => Math.floor(r() * n);

/** Pieces of the trace grammar and its edges, spliced in whole so mutations reach deep into a line. */
export const TRACE_TOKENS = [
  ' ', '  ', '\t', ' \t ', '\r', '\r\n', '\n', '+', '+ ', '+\t', ' + ', '.', '..', '#', 'in', ' in ', 'section', ' in section .text', ' of ', ' of ext4', 'of',
  'in  section', 'in\tsection', ' .text', '0', '9', '12', '0.5', '.5', '11.', '1e6', '-1', '2147483647', '2147483648',
  '9007199254740991', '9007199254740992', '99999999999999999999', '9'.repeat(400), 'ffffffffffffffff', '7fffffffffff',
  '800000000000', 'fffffffffffffffff', 'ABCDEF', '0x10', '\x00', '\x7f', '\x80', '\xff', '\x0b', '\x0c', '\xa0',
  'start_kernel', 'entry_SYSCALL_64', '__x64_sys_read', '[user]',
];

/** Mutates a text (latin1) a few times: byte flips, token splices, deletions, duplications, line swaps. */
export function mutateText(r: Rng, text: string, tokens: readonly string[] = TRACE_TOKENS, rounds = 1 + int(r, 4)): string {
  let s = text;
  for (let k = 0; k < rounds; k++) {
    const at = int(r, s.length + 1);
    switch (int(r, 7)) {
      case 0: s = s.slice(0, at) + String.fromCharCode(int(r, 256)) + s.slice(at + 1); break;
      case 1: s = s.slice(0, at) + pick(r, tokens) + s.slice(at); break;
      case 2: s = s.slice(0, at) + pick(r, tokens) + s.slice(at + 1 + int(r, 4)); break;
      case 3: s = s.slice(0, at) + s.slice(at + 1 + int(r, 8)); break;
      case 4: { const n = int(r, 40); s = s.slice(0, at) + s.slice(at, at + n).repeat(1 + int(r, 3)) + s.slice(at); break; }
      case 5: {
        const lines = s.split('\n');
        const a = int(r, lines.length), b = int(r, lines.length);
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        s = lines.join('\n');
        break;
      }
      default: s = s.slice(0, at) + pick(r, tokens).repeat(1 + int(r, 600)) + s.slice(at); break;
    }
  }
  return s;
}
