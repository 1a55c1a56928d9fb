/**
 * The parallel reader (worker threads over byte ranges) must give exactly the events, counts and
 * warnings of the sequential one, wherever range boundaries fall: ranges of 5, 7 and 13 bytes cut lines,
 * names and CRLFs at every place. Runs the compiled reader, since the worker is compiled JavaScript.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT, runCli, sample } from './helpers.js';
import { onPath } from './preconditions.js';

type ReadTrace = typeof import('../src/trace/reader.js').readTrace;
const { readTrace } = (await import(`${ROOT}/dist/src/trace/reader.js`)) as { readTrace: ReadTrace };

const samples = readdirSync(sample()).filter((f) => f.endsWith('.log'));

async function read(file: string, parallelMinBytes: number, range?: string) {
  process.env.BOOT_TRACE_PARALLEL_RANGE = range ?? '';
  const events: [number, string, number, number][] = [];
  const warnings: string[] = [];
  const r = await readTrace(sample(file), (functions) => ({ event: (t, fn, off, addr) => events.push([t, functions.names[fn]!, off, addr]) }),
    { parallelMinBytes, warn: (w) => warnings.push(w) });
  const { functions: _f, ...counts } = r;
  return { events, warnings, counts };
}

describe('parallel reader', () => {
  it('gives the sequential reader\'s events, counts and warnings on every sample', async () => {
    for (const file of samples) {
      const want = await read(file, Infinity);
      for (const range of ['5', '7', '13']) {
        expect(await read(file, 1, range), `${file} in ${range}-byte ranges`).toEqual(want);
      }
    }
  });

  it('gives one thread\'s output for the analyzers whose range halves run in the workers (range-part.ts)', () => {
    for (const file of samples) {
      // --inclusive reads every event: the workers cli.ts started for hot-functions' range half are stopped and others started.
      for (const command of [['hot-functions', '--top', '0'], ['hot-functions', '--top', '0', '--inclusive'], ['first-calls'], ['syscalls'], ['syscalls', '--summary']]) {
        const args = [...command, sample(file), '--format', 'csv'];
        const want = runCli(args, { env: { BOOT_TRACE_PARALLEL_MIN: '1e18' } });
        for (const range of ['7', '64']) {
          const got = runCli(args, { env: { BOOT_TRACE_PARALLEL_MIN: '1', BOOT_TRACE_PARALLEL_RANGE: range } });
          expect([got.status, got.stdout, got.stderr], `${command.join(' ')} ${file} in ${range}-byte ranges`).toEqual([want.status, want.stdout, want.stderr]);
        }
      }
    }
  });

  it('adopts the workers cli.ts started before the command line was parsed only for the same file, analyzer and settings', async () => {
    type Early = typeof import('../src/trace/early-start.js');
    const { startEarlyParse, takeEarlyParse, earlyParseThreads, discardEarlyParse } = (await import(`${ROOT}/dist/src/trace/early-start.js`)) as Early;
    const { stopWorkerGroup } = (await import(`${ROOT}/dist/src/trace/worker-group.js`)) as typeof import('../src/trace/worker-group.js');
    const file = sample('2016-trace-excerpts.log');
    const size = statSync(file).size;
    process.env.BOOT_TRACE_PARALLEL_MIN = '1';
    process.env.BOOT_TRACE_PARALLEL_RANGE = '64';
    try {
      const spec = { path: file, size, rangeBytes: 64, threads: Math.min(availableParallelism(), 8), reportLimit: 6, kind: 'hot-functions' as const };
      startEarlyParse(['--top', '5', file], 'hot-functions');
      // The reader counts them as its own threads (else, runnable, they would look like a busy core).
      expect(earlyParseThreads(file)).toBe(spec.threads);
      expect(earlyParseThreads(sample('syscalls.log'))).toBeNull();
      const group = takeEarlyParse(spec);
      expect(group?.setup).toMatchObject({ path: file, size, rangeBytes: 64, kind: 'hot-functions' });
      stopWorkerGroup(group!);
      expect(takeEarlyParse(spec), 'taken once').toBeNull();
      for (const other of [{ ...spec, kind: 'syscalls' as const }, { ...spec, kind: undefined }, { ...spec, reportLimit: 2 }, { ...spec, path: sample('syscalls.log') }]) {
        startEarlyParse([file], 'hot-functions');
        expect(takeEarlyParse(other), JSON.stringify(other)).toBeNull();
      }
      startEarlyParse([file], 'hot-functions');
      discardEarlyParse();
      expect(earlyParseThreads(file), 'discarded').toBeNull();
      // Not the native format, not a file: nothing is started.
      startEarlyParse([sample('import', readdirSync(sample('import')).find((f) => f.startsWith('perf'))!), 'hot-functions'], 'hot-functions');
      expect(takeEarlyParse(spec)).toBeNull();
    } finally {
      process.env.BOOT_TRACE_PARALLEL_MIN = '';
      process.env.BOOT_TRACE_PARALLEL_RANGE = '';
    }
  });

  it('stays on one thread while other processes keep every core busy, whatever the load average says', async () => {
    const { workerCount } = (await import(`${ROOT}/dist/src/trace/parallel.js`)) as typeof import('../src/trace/parallel.js');
    const cores = availableParallelism();
    // One CPU-bound process per core, each started and spinning before the count is taken.
    const spinners = Array.from({ length: cores }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(workerCount(1 << 30, 8 << 20)).toBe(1);
      expect(workerCount(1 << 30, 8 << 20, true), 'forced').toBe(Math.min(cores, 8));
    } finally {
      for (const s of spinners) s.kill('SIGKILL');
    }
  });

  it('says in one line that a trace cannot be opened, when the early start met it first (as a user who cannot read it)', (ctx) => {
    const hasRunuser = onPath('runuser');
    if (process.getuid?.() !== 0 || !hasRunuser) ctx.skip(`needs root and runuser to run the CLI as nobody (uid ${process.getuid?.()}, runuser ${hasRunuser ? 'found' : 'missing'})`);
    const asNobody = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, CLI, '--version'], { encoding: 'utf8', timeout: 30_000 });
    if (asNobody.status !== 0) ctx.skip(`user nobody cannot run ${CLI} (a checkout only root can read): ${asNobody.stderr.trim().split('\n')[0]}`);
    const dir = mkdtempSync(join(tmpdir(), 'boot-trace-noread-'));
    try {
      chmodSync(dir, 0o755);
      const file = join(dir, 'trace.log');
      copyFileSync(sample('2016-trace-excerpts.log'), file);
      chmodSync(file, 0o000);
      const got = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, CLI, 'hot-functions', file], {
        encoding: 'utf8', env: { ...process.env, BOOT_TRACE_PARALLEL_MIN: '1', BOOT_TRACE_PARALLEL_RANGE: '64' }, timeout: 30_000,
      });
      expect(got.status, got.stderr).toBe(1);
      expect(got.stderr.trim().split('\n')).toEqual([`boot-trace: ${file}: cannot open: permission denied`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits at once when the command fails before reading, with workers started early', () => {
    const got = runCli(['hot-functions', sample('2016-trace-excerpts.log'), '--top', 'abc'], { env: { BOOT_TRACE_PARALLEL_MIN: '1', BOOT_TRACE_PARALLEL_RANGE: '64' }, timeoutMs: 30_000 });
    expect(got.error).toBeUndefined();
    expect(got.status).toBe(1);
    expect(got.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('stops at the first malformed line with --strict, naming the same line', () => {
    const got = runCli(['hot-functions', sample('with-malformed.log'), '--strict'], { env: { BOOT_TRACE_PARALLEL_MIN: '1', BOOT_TRACE_PARALLEL_RANGE: '16' } });
    expect(got.status).toBe(1);
    expect(got.stderr).toMatch(/with-malformed\.log:3: malformed line: "garbage line here"/);
  });
});
