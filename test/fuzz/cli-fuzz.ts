/**
 * Mutated traces through the built CLI, as a user runs it: plain files, .gz and stdin, through every trace
 * analyzer and export. Each run must exit 0, or 1 with one line on stderr (never a stack trace or an
 * "internal error"); no output may hold Infinity or NaN, a percent outside 0-100 or a negative duration; and
 * hot-functions and first-calls must agree with the reference model (trace-model.ts) on what was read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runCli } from './paths.js';
import { int, pick, rng } from './mutate.js';
import { addFailure, emptyFuzzCounts, mutatedTrace, traceSeeds, type FuzzCounts } from './trace-fuzz.js';
import { modelTrace } from './trace-model.js';

const COMMANDS: string[][] = [
  ['first-calls', '--format', 'json'],
  ['syscalls', '--format', 'json'],
  ['syscalls', '--summary', '--format', 'json'],
  ['summary'],
  ['export', '--to', 'chrome'],
  ['export', '--to', 'collapsed'],
];

interface Hot { function: string; time_us: number; percent: number; lines: number }
interface First { function: string; first_us: number }

/** True when stderr is what a user error looks like: warnings, then at most one `boot-trace: ...` error. */
function oneLineError(stderr: string): boolean {
  return !/internal error|\n\s+at |Error:/.test(stderr);
}

/** `n` mutated traces, each through hot-functions and `commandsEach` other commands, in a rotating input form. */
export function fuzzCli(n: number, seed: number, commandsEach = 2, hangMs = 60_000): FuzzCounts {
  const r = rng(seed);
  const seeds = traceSeeds();
  const dir = mkdtempSync(join(tmpdir(), 'bt-fuzz-cli-'));
  const c = emptyFuzzCounts();
  for (let k = 0; k < n; k++) {
    const text = mutatedTrace(r, seeds);
    const bytes = Buffer.from(text, 'latin1');
    const form = pick(r, ['plain', 'gz', 'stdin', 'parallel'] as const);
    const file = join(dir, `t${k}.log${form === 'gz' ? '.gz' : ''}`);
    writeFileSync(file, form === 'gz' ? gzipSync(bytes) : bytes);
    // The parallel reader on a small file: ranges of a few bytes cut every line somewhere.
    const env = form === 'parallel' ? { BOOT_TRACE_PARALLEL_MIN: '1', BOOT_TRACE_PARALLEL_RANGE: String(16 + int(r, 200)) } : {};
    const input = form === 'stdin' ? '-' : file;
    const outcomes = modelTrace(text, 1 << 16);
    const events = outcomes.flatMap((o) => (o.kind === 'event' ? [o] : []));
    const commands = [['hot-functions', '--format', 'json', '--top', '0'], ...Array.from({ length: commandsEach }, () => pick(r, COMMANDS))];
    for (const cmd of commands) {
      const args = [cmd[0]!, input, ...cmd.slice(1)];
      const what = `seed ${seed} input ${k} (${form}): boot-trace ${args.join(' ')}`;
      c.inputs++;
      const started = Date.now();
      const res = runCli(args, { input: form === 'stdin' ? bytes : undefined, env, timeoutMs: hangMs });
      if (res.error || res.signal) {
        addFailure(c, 'hangs', `${what}: ${res.error?.message ?? res.signal} after ${Date.now() - started} ms`);
        continue;
      }
      if ((res.status !== 0 && res.status !== 1) || !oneLineError(res.stderr) || (res.status === 1 && !/^boot-trace: .*\n$/.test(res.stderr.split('\n').slice(-2).join('\n')))) {
        addFailure(c, 'crashes', `${what}: exit ${res.status}\n${res.stderr.slice(0, 800)}`);
        continue;
      }
      if (res.status !== 0) {
        // Only a file with no event line in it (or a NUL byte in its first 4 KiB) may be refused.
        if (events.length > 0 && !text.slice(0, 4096).includes('\0')) addFailure(c, 'wrong', `${what}: refused a trace with ${events.length} events: ${res.stderr}`);
        continue;
      }
      if (/Infinity|NaN/.test(res.stdout)) {
        addFailure(c, 'wrong', `${what}: Infinity or NaN in the output`);
        continue;
      }
      if (cmd[0] === 'hot-functions') {
        const rows = JSON.parse(res.stdout) as Hot[];
        const lines = rows.reduce((s, row) => s + row.lines, 0);
        const bad = rows.find((row) => !(row.percent >= 0 && row.percent <= 100) || !(row.time_us >= 0));
        if (lines !== events.length || bad) addFailure(c, 'wrong', `${what}: ${lines} lines counted, model ${events.length}; ${JSON.stringify(bad ?? '')}`);
      }
      if (cmd[0] === 'first-calls') {
        const want = new Map<string, number>();
        // The reader files a symbol spelled "[user]" or "[unresolved]" with the bare addresses: not listed either.
        for (const e of events) if (e.offset >= 0 && e.name !== '[user]' && e.name !== '[unresolved]' && !want.has(e.name)) want.set(e.name, e.t);
        const rows = JSON.parse(res.stdout) as First[];
        const off = rows.find((row) => !want.has(row.function) || Math.abs(want.get(row.function)! - row.first_us) > 0.0011 + row.first_us * 1e-14);
        if (rows.length !== want.size || off) addFailure(c, 'wrong', `${what}: ${rows.length} functions, model ${want.size}; ${JSON.stringify(off ?? '')}`);
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return c;
}
