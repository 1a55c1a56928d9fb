/**
 * Trace fuzzing against the reference model: mutated traces go through the real reader (TraceParser, fed in
 * random chunk sizes with a random line limit) and through the model (trace-model.ts); every line must come
 * out the same: the same event, or malformed with the same code and text, and the same blank and comment
 * counts. Used by test/fuzz.test.ts (CI size) and bench/fuzz.ts (the big run).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FunctionTable } from '../../src/trace/functions.js';
import { MALFORMED_CODES } from '../../src/trace/malformed.js';
import { TraceParser } from '../../src/trace/parser.js';
import { ROOT } from './paths.js';
import { int, mutateText, pick, rng, type Rng } from './mutate.js';
import { modelTrace, type LineOutcome } from './trace-model.js';

export interface FuzzCounts {
  inputs: number;
  /** A throw (in-process) or an exit that is neither 0 nor a one-line error (CLI). */
  crashes: number;
  /** An input that took longer than the hang limit. */
  hangs: number;
  /** A result that differs from the model or breaks an invariant. */
  wrong: number;
  /** The first few failures, for the test's message. */
  failures: string[];
}

export const emptyFuzzCounts = (): FuzzCounts => ({ inputs: 0, crashes: 0, hangs: 0, wrong: 0, failures: [] });

export function addFailure(c: FuzzCounts, kind: 'crashes' | 'hangs' | 'wrong', what: string): void {
  c[kind]++;
  if (c.failures.length < 5) c.failures.push(`${kind}: ${what}`);
}

/** Every trace sample in the repository: the seeds the mutations start from. */
export function traceSeeds(): string[] {
  const dirs = [join(ROOT, 'samples'), join(ROOT, 'samples', 'stacks'), join(ROOT, 'samples', 'robustness')];
  const texts: string[] = [];
  for (const dir of dirs) {
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.log') || f.startsWith('console')) continue;
      texts.push(readFileSync(join(dir, f), 'latin1'));
    }
  }
  return texts;
}

/** A few lines in every form the grammar allows, with random blanks: valid before mutation. */
export function generatedTrace(r: Rng, lines = 5 + int(r, 20)): string {
  const blank = (): string => pick(r, [' ', '  ', '\t', ' \t']);
  let t = int(r, 1_000_000);
  let out = '';
  for (let k = 0; k < lines; k++) {
    t += r() * 10;
    const stamp = r() < 0.3 ? String(Math.floor(t)) : t.toFixed(1 + int(r, 9));
    const name = pick(r, ['start_kernel', 'entry_SYSCALL_64', '__x64_sys_write', 'do_one_initcall', 'x', 'a.b$c']);
    const form = int(r, 6);
    const body = form === 0 ? `${name}${blank()}in${blank()}section${blank()}.text`
      : form === 1 ? `${name}${blank()}+${r() < 0.5 ? '' : blank()}${int(r, 5000)}${blank()}in${blank()}section${blank()}.init.text`
      : form === 2 ? Math.floor(r() * 2 ** 48).toString(16)
      : form === 3 ? `ffffffff8${Math.floor(r() * 2 ** 28).toString(16).padStart(7, '0')}`
      : form === 4 ? `${name}${blank()}+${blank()}${int(r, 99)}`
      : name;
    out += `${r() < 0.1 ? blank() : ''}${stamp}${blank()}${body}${r() < 0.1 ? blank() : ''}${r() < 0.2 ? '\r' : ''}\n`;
    if (r() < 0.05) out += '# a comment\n';
    if (r() < 0.05) out += '\n';
  }
  return r() < 0.2 ? out.slice(0, -1) : out;
}

/** One input for the fuzzer: a sample or a generated trace, mutated. */
export function mutatedTrace(r: Rng, seeds: readonly string[]): string {
  const base = r() < 0.5 ? pick(r, seeds) : generatedTrace(r);
  return mutateText(r, base);
}

type Got = Map<number, LineOutcome>;

/** Runs the real parser over `text` in chunks of random sizes; returns what it made of each line. */
export function parseWithReader(text: string, r: Rng, maxLineBytes: number): { got: Got; counts: TraceParser['counts'] } {
  const functions = new FunctionTable();
  const got: Got = new Map();
  const parser: TraceParser = new TraceParser(
    functions,
    { event: (t, fn, offset, addr) => void got.set(parser.counts.lines, { kind: 'event', t, name: functions.names[fn]!, offset, addr }) },
    (line, text, code) => void got.set(line, { kind: 'malformed', code: MALFORMED_CODES[code]!, text }),
    maxLineBytes,
  );
  const buf = Buffer.from(text, 'latin1');
  const chunk = pick(r, [1, 2, 3, 7, 64, 4096, buf.length + 1]);
  for (let i = 0; i < buf.length; i += chunk) parser.push(buf.subarray(i, i + chunk));
  parser.end();
  return { got, counts: parser.counts };
}

const close = (a: number, b: number): boolean => a === b || Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b));

/** The first difference between the model's outcomes and the reader's, or null. */
export function compare(want: LineOutcome[], got: Got, counts: TraceParser['counts']): string | null {
  let blank = 0, comments = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w.kind === 'blank') blank++;
    if (w.kind === 'comment') comments++;
    const g = got.get(i + 1);
    if (w.kind === 'blank' || w.kind === 'comment') {
      if (g) return `line ${i + 1}: model ${w.kind}, reader ${JSON.stringify(g)}`;
      continue;
    }
    if (!g || g.kind !== w.kind) return `line ${i + 1}: model ${JSON.stringify(w)}, reader ${JSON.stringify(g ?? 'blank or comment')}`;
    if (w.kind === 'malformed' && g.kind === 'malformed' && (w.code !== g.code || w.text !== g.text)) {
      return `line ${i + 1}: model ${JSON.stringify(w)}, reader ${JSON.stringify(g)}`;
    }
    if (w.kind === 'event' && g.kind === 'event' && (w.name !== g.name || w.offset !== g.offset || !close(w.t, g.t) || !close(w.addr, g.addr))) {
      return `line ${i + 1}: model ${JSON.stringify(w)}, reader ${JSON.stringify(g)}`;
    }
  }
  if (counts.lines !== want.length || counts.blank !== blank || counts.comments !== comments) {
    return `counts: model ${want.length} lines, ${blank} blank, ${comments} comments; reader ${JSON.stringify(counts)}`;
  }
  return null;
}

/** Fuzzes the reader with `n` mutated traces from `seed`; `hangMs` is the time one input may take. */
export function fuzzTraceReader(n: number, seed: number, hangMs = 2000): FuzzCounts {
  const r = rng(seed);
  const seeds = traceSeeds();
  const c = emptyFuzzCounts();
  for (let k = 0; k < n; k++) {
    const text = mutatedTrace(r, seeds);
    const maxLineBytes = pick(r, [200, 1000, 1 << 16]);
    c.inputs++;
    const started = performance.now();
    try {
      const { got, counts } = parseWithReader(text, r, maxLineBytes);
      const diff = compare(modelTrace(text, maxLineBytes), got, counts);
      if (diff) addFailure(c, 'wrong', `seed ${seed} input ${k} (max ${maxLineBytes}): ${diff}\n${JSON.stringify(text.slice(0, 400))}`);
    } catch (err) {
      addFailure(c, 'crashes', `seed ${seed} input ${k}: ${String(err)}\n${JSON.stringify(text.slice(0, 400))}`);
    }
    if (performance.now() - started > hangMs) addFailure(c, 'hangs', `seed ${seed} input ${k}: ${(performance.now() - started).toFixed(0)} ms`);
  }
  return c;
}
