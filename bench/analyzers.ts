/**
 * Trace analyzer speed and memory on a generated 10-million-line trace (bench/generate.ts), against what a
 * user would run instead: mawk scripts doing the same accounting, and DuckDB's SQL over the trace read as a
 * one-column CSV (bench/duckdb-trace.ts). ROUNDS rounds, each running every command once in a rotated
 * order, so load from other processes hits all alike; the ratios are taken per round, then their minimum and
 * median reported. Then, once: the machine's per-byte limits (`wc -l`, `cat`), the stage breakdown of one
 * thread's CPU time (bench/stages.ts), and peak RSS at 10 M and 40 M lines.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, measure, measureOnce, median, runWhenMain, type Measurement } from './measure.js';
import { generateTrace } from './generate.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const node = process.execPath;
const cli = join(root, 'dist/src/cli.js');
const generate = join(root, 'dist/bench/generate.js');
const readlineHot = join(root, 'dist/bench/readline-hot.js');
const duckdb = join(root, 'dist/bench/duckdb-trace.js');
const stages = join(root, 'dist/bench/stages.js');

const ROUNDS = 5;

const MAWK_HOT = `mawk '{t=$1; if (NR>1) tot[f]+=t-pt; f=$2; pt=t} END{for(k in tot) print tot[k], k}'`;
const MAWK_FIRST = `mawk '!($2 in s){s[$2]=$1; print $1, $2}'`;
// The same rules as analyzers/syscalls.ts, for the x86-64 entry (enough for the generated trace).
const MAWK_SYSCALLS = `mawk '$2=="entry_SYSCALL_64" && $3!="+" {if (o) print s, n, $1-s; o=1; s=$1; n=""; next}
  o && n=="" && $2 ~ /^__x64_sys_/ {n=substr($2,11); next}
  NF==2 && $2 ~ /^[0-9a-f]+$/ {if (o) print s, n, $1-s; o=0}'`;

interface Contestant {
  key: string;
  label: string;
  command: (file: string) => string;
}

const SEQ = 'BOOT_TRACE_PARALLEL_MIN=1e18';
// The default threshold given explicitly: parallel whatever the load (src/trace/parallel.ts workerCount()).
const PAR = 'BOOT_TRACE_PARALLEL_MIN=33554432';
const CONTESTANTS: Contestant[] = [
  { key: 'mawkHot', label: 'mawk hot one-liner', command: (f) => `${MAWK_HOT} ${f} > /dev/null` },
  { key: 'hot', label: 'boot-trace hot-functions', command: (f) => `${node} ${cli} hot-functions ${f} --top 0 --format csv > /dev/null` },
  { key: 'duckHot', label: 'DuckDB self-time query (window function)', command: (f) => `${node} ${duckdb} hot ${f} > /dev/null` },
  { key: 'mawkFirst', label: 'mawk first-calls one-liner', command: (f) => `${MAWK_FIRST} ${f} > /dev/null` },
  { key: 'first', label: 'boot-trace first-calls', command: (f) => `${node} ${cli} first-calls ${f} --format csv > /dev/null` },
  { key: 'duckFirst', label: 'DuckDB first-line query', command: (f) => `${node} ${duckdb} first ${f} > /dev/null` },
  { key: 'mawkSys', label: 'mawk syscalls script', command: (f) => `${MAWK_SYSCALLS} ${f} > /dev/null` },
  { key: 'sys', label: 'boot-trace syscalls', command: (f) => `${node} ${cli} syscalls ${f} --format csv > /dev/null` },
  { key: 'hotSeq', label: 'boot-trace hot-functions, one thread', command: (f) => `${SEQ} ${node} ${cli} hot-functions ${f} --top 0 --format csv > /dev/null` },
  { key: 'hotPar', label: 'boot-trace hot-functions, parallel reader forced', command: (f) => `${PAR} ${node} ${cli} hot-functions ${f} --top 0 --format csv > /dev/null` },
];

/** [ours, baseline, target at the median, target in every run] per ratio reported. */
const RATIOS: [string, string, string, number, number][] = [
  ['hot-functions vs mawk', 'hot', 'mawkHot', 4, 3],
  ['first-calls vs mawk', 'first', 'mawkFirst', 2, 0],
  ['syscalls vs mawk', 'sys', 'mawkSys', 2, 0],
  ['hot-functions vs DuckDB (self time)', 'hot', 'duckHot', 2, 0],
  ['first-calls vs DuckDB (first line)', 'first', 'duckFirst', 2, 0],
  ['syscalls vs DuckDB (self time)', 'sys', 'duckHot', 2, 0],
];

export async function run(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'boot-trace-bench-'));
  try {
    const file10 = join(dir, 'trace-10m.log');
    execFileSync(node, [generate, '10000000', file10]);
    const mb = statSync(file10).size / 1e6;
    const shown = (command: string): string =>
      command.replace(file10, 'trace-10m.log').replaceAll(`${node} ${cli}`, 'boot-trace').replaceAll(`${node} `, 'node ').replaceAll(root, '')
        .replace(/\s+/g, ' ').replace(/\|/g, '\\|');

    // Rounds: every contestant once per round, the order rotated by one each round.
    const runs: Record<string, (Measurement & { cpuSeconds: number })[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < CONTESTANTS.length; k++) {
        const c = CONTESTANTS[(r + k) % CONTESTANTS.length]!;
        (runs[c.key] ??= []).push(measureOnce(c.command(file10)));
      }
    }
    const secs = (key: string): number[] => runs[key]!.map((m) => m.seconds);
    const ratioRuns = (ours: string, base: string): number[] => secs(base).map((b, i) => b / secs(ours)[i]!);

    // The machine's limits and the slow Node baseline, once.
    const wc = measure(`wc -l ${file10} > /dev/null`);
    const cat = measure(`cat ${file10} > /dev/null`);
    const rl = measure(`${node} ${readlineHot} ${file10} > /dev/null`, 1);
    // Where the time goes: one thread's CPU per stage (bench/stages.ts), the CLI's start on a tiny trace, and
    // the whole one-thread command's CPU (its start, the reader and the output).
    const stageLines = execFileSync(node, [stages, file10, '3'], { encoding: 'utf8' }).trim().split('\n').map((l) => l.split('\t') as [string, string]);
    const tiny = join(dir, 'tiny.log');
    const fd = openSync(tiny, 'w');
    generateTrace(1000, fd);
    closeSync(fd);
    const startCpu = median([0, 1, 2].map(() => measureOnce(`${node} ${cli} hot-functions ${tiny} --top 0 --format csv > /dev/null`).cpuSeconds));
    const wholeSeqCpu = median(runs.hotSeq!.map((m) => m.cpuSeconds));
    const wholeCpu = median(runs.hot!.map((m) => m.cpuSeconds));
    const wholeParCpu = median(runs.hotPar!.map((m) => m.cpuSeconds));

    const file40 = join(dir, 'trace-40m.log');
    execFileSync(node, [generate, '40000000', file40]);
    const at40 = Object.fromEntries(['hot', 'first', 'sys', 'hotSeq', 'hotPar'].map((key) => [key, measureOnce(CONTESTANTS.find((c) => c.key === key)!.command(file40))]));
    rmSync(file40);
    const rss10 = (key: string): number => Math.max(...runs[key]!.map((m) => m.maxRssMB));

    const x = (v: number): string => `${fmt(v, 2)}x`;
    const verdict = (rs: number[], atMedian: number, everyRun: number): string => {
      const okMedian = median(rs) >= atMedian;
      const okEvery = everyRun === 0 || Math.min(...rs) >= everyRun;
      return okMedian && okEvery ? 'met' : 'NOT met';
    };
    // Each stage's cost is set against the stage it adds to: the loop and both parsers against the plain
    // read, each visitor against the fast path's parse without one.
    const addsTo = [-1, 0, 0, 0, 3, 3, 3];
    const stageRows = stageLines.map(([s, name], i) => {
      const base = addsTo[i] ?? -1;
      const delta = base < 0 ? '' : `+${fmt(Number(s) - Number(stageLines[base]![0]), 3)}`;
      return `| ${name} | ${fmt(Number(s), 3)} | ${delta} | ${fmt(mb / Number(s), 0)} |`;
    });
    const lines = [
      '## Trace analyzers',
      '',
      `Command: \`npm run bench -- analyzers\` on ${new Date().toISOString().slice(0, 10)}. Input: \`node dist/bench/generate.js 10000000\`,`,
      `10,000,000 lines, ${fmt(mb, 0)} MB, 3,000 kernel-like function names, a system call every 50 events.`,
      `${ROUNDS} rounds; each round runs every command below once, in an order rotated by one each round; wall time and`,
      'peak RSS from GNU time (`/usr/bin/time -f "%e %M %U %S" sh -c COMMAND`). Ratios are baseline time / boot-trace time',
      'within the same round. DuckDB (`@duckdb/node-api`, all cores) reads the trace as a one-column CSV and splits',
      'each line (bench/duckdb-trace.ts); syscalls has no SQL of its own here and is set against the self-time query.',
      'The boot-trace commands run as a user runs them: the reader uses worker threads on a file of 32 MiB or more',
      `when no other process keeps a core busy (threads runnable at start, /proc/loadavg; ${availableParallelism()} cores; load averages`,
      `${loadavg().map((l) => fmt(l, 1)).join(' / ')} at the end of this run); "parallel reader forced" shows the parallel reader whatever the load.`,
      '',
      '| ratio (same round) | per round | min | median | target | |',
      '|---|---|---:|---:|---|---|',
      ...RATIOS.map(([name, ours, base, atMedian, everyRun]) => {
        const rs = ratioRuns(ours, base);
        const target = `>= ${atMedian}x at the median${everyRun ? `, >= ${everyRun}x every round` : ''}`;
        return `| ${name} | ${rs.map(x).join(', ')} | ${x(Math.min(...rs))} | **${x(median(rs))}** | ${target} | ${verdict(rs, atMedian, everyRun)} |`;
      }),
      ...([['hot-functions, one thread vs mawk', 'hotSeq'], ['hot-functions, parallel reader forced, vs mawk', 'hotPar']] as const).map(([name, key]) =>
        `| ${name} | ${ratioRuns(key, 'mawkHot').map(x).join(', ')} | ${x(Math.min(...ratioRuns(key, 'mawkHot')))} | ${x(median(ratioRuns(key, 'mawkHot')))} | | |`),
      '',
      '| what | command | seconds (median) | all rounds | MB/s | peak RSS (MB) |',
      '|---|---|---:|---|---:|---:|',
      ...CONTESTANTS.map((c) => `| ${c.label} | \`${shown(c.command(file10))}\` | ${fmt(median(secs(c.key)))} | ${secs(c.key).map((s) => fmt(s)).join(', ')} | ${fmt(mb / median(secs(c.key)), 0)} | ${fmt(rss10(c.key), 0)} |`),
      `| wc -l (median of 3) | \`wc -l trace-10m.log > /dev/null\` | ${fmt(wc.seconds)} | | ${fmt(mb / wc.seconds, 0)} | ${fmt(wc.maxRssMB, 0)} |`,
      `| cat, a plain read (median of 3) | \`cat trace-10m.log > /dev/null\` | ${fmt(cat.seconds)} | | ${fmt(mb / cat.seconds, 0)} | ${fmt(cat.maxRssMB, 0)} |`,
      `| readline-transform + split (1 run) | \`${shown(`${node} ${readlineHot} ${file10} > /dev/null`)}\` | ${fmt(rl.seconds)} | | ${fmt(mb / rl.seconds, 0)} | ${fmt(rl.maxRssMB, 0)} |`,
      '',
      `hot-functions takes ${fmt(median(secs('hot')) / wc.seconds, 1)}x the time of \`wc -l\` and is ${x(rl.seconds / median(secs('hot')))} faster than readline-transform + split.`,
      '',
      '### Where the time goes',
      '',
      `\`node dist/bench/stages.js trace-10m.log 3\`: one thread, in process, each stage adding one piece of work to the`,
      'previous one over the same file; CPU seconds (user + system) of the thread, median of 3, so the load from',
      'other processes does not count. The first two rows are the per-byte limit: a plain read, and a JS loop that',
      'looks at every byte once; then the TypeScript parser alone (what the reader was before the fast path) and the',
      "reader as it runs: lines read straight into the WebAssembly fast path's memory and scanned there.",
      '',
      '| stage | CPU s | added | MB/s |',
      '|---|---:|---:|---:|',
      ...stageRows,
      '',
      `Whole commands (CPU s, user + system, median of the rounds): hot-functions one thread ${fmt(wholeSeqCpu, 2)},`,
      `hot-functions as run by default ${fmt(wholeCpu, 2)}, with the parallel reader forced ${fmt(wholeParCpu, 2)} (both threads),`,
      `the CLI's start and output on a 1,000-line trace ${fmt(startCpu, 2)}.`,
      '',
      '| peak RSS (MB) | 10 M lines | 40 M lines | 40 M lines: seconds |',
      '|---|---:|---:|---:|',
      ...(['hot', 'first', 'sys', 'hotSeq', 'hotPar'] as const).map((key) =>
        `| ${CONTESTANTS.find((c) => c.key === key)!.label} | ${fmt(rss10(key), 0)} | ${fmt(at40[key]!.maxRssMB, 0)} | ${fmt(at40[key]!.seconds, 1)} |`),
      '',
      'Target: <= 200 MB at 10 M and 40 M lines. Memory is the read buffers (256 KiB per thread), the parts or event',
      "batches of a worker's claim window, and one entry per distinct function name; it does not grow with the number of lines.",
    ];
    return lines.join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, run);
