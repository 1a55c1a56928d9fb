/**
 * Progress on a terminal, silence in a pipe: the CLI runs under `script` (a pseudo-terminal) on a trace big
 * enough to take more than the 250 ms before the first progress line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { generateTrace } from '../bench/generate.js';
import { CLI, runCli } from './helpers.js';
import { describeNeeds } from './preconditions.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

describeNeeds(hasScript ? null : '`script` not found (apt-get install bsdutils)', 'progress', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bt-progress-'));
  const file = join(dir, 'trace.log');
  const fd = openSync(file, 'w');
  generateTrace(1_500_000, fd);
  closeSync(fd);

  it('shows lines/s, MB/s and percent on a terminal', () => {
    // script gives the command a terminal for stdout and stderr; its transcript is what a person would see.
    const r = spawnSync('script', ['-qec', `${process.execPath} ${CLI} hot-functions ${file} --top 1 --format csv`, '/dev/null'], {
      // Every update draws (BOOT_TRACE_PROGRESS_MS=0): a fast machine reads this file in less than the 250 ms
      // between two draws, and the test is about what is drawn and where, not when.
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, BOOT_TRACE_PARALLEL_MIN: '1e15', BOOT_TRACE_PROGRESS_MS: '0' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/trace\.log: +\d+\.\d% [\d,]+ lines, [\d,]+ lines\/s, \d+ MB\/s/);
  });

  it('stays quiet when stderr is not a terminal', () => {
    const r = runCli(['hot-functions', file, '--top', '1', '--format', 'csv']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });
});
