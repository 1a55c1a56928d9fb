/**
 * The fuzz suite at CI size (issue 15); `npm run bench -- fuzz` runs the same fuzzers longer and writes the
 * counts to docs/robustness.md. Seeds are fixed, so a failure repeats; the message names seed and input.
 */
import { describe, expect, it } from 'vitest';
import { fuzzCli } from './fuzz/cli-fuzz.js';
import { fuzzConsoleReader } from './fuzz/console-fuzz.js';
import { fuzzTraceReader, type FuzzCounts } from './fuzz/trace-fuzz.js';

const clean = (c: FuzzCounts): void => {
  expect({ crashes: c.crashes, hangs: c.hangs, wrong: c.wrong }, c.failures.join('\n\n')).toEqual({ crashes: 0, hangs: 0, wrong: 0 });
};

describe('fuzz', () => {
  it('the trace reader agrees with the reference model on 3,000 mutated traces, in random chunk sizes', () => {
    const c = fuzzTraceReader(3000, 1);
    expect(c.inputs).toBe(3000);
    clean(c);
  });

  it('the console reader keeps its contract on 2,000 mutated consoles (no throw, finite stamps, no hang)', () => {
    const c = fuzzConsoleReader(2000, 1);
    expect(c.inputs).toBe(2000);
    clean(c);
  });

  it('the CLI gives an answer or one line on mutated traces: plain, .gz, stdin, parallel, every trace command', () => {
    const c = fuzzCli(8, 1, 2);
    expect(c.inputs).toBe(24);
    clean(c);
  });
});
