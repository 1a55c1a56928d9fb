/**
 * Whole-boot tracing (`capture --mode trace`, capture/engines/qemu-trace/) against a plain QEMU boot of
 * the same kernel and appliance, all in one run:
 * (1) RUNS interleaved pairs: `capture --engine qemu` (run mode: the baseline) and `capture --mode trace`
 *     (function granularity, the default); wall time and peak RSS through GNU time, QEMU's own time from
 *     profile.json (phases_us.total), the capture folder's size;
 * (2) one boot each at block and instruction granularity;
 * (3) each trace analyzer on the last function-granularity recording (wall time, peak RSS), against the
 *     capture's own wall time.
 *
 *   node dist/bench/whole-boot.js
 */
import { readdirSync, readFileSync, rmSync, statSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../capture/engines/qemu/qemu-common.js';
import { fmt, measure, median, runWhenMain, type Measurement } from './measure.js';

const RUNS = 3;
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const node = process.execPath;

interface Boot extends Measurement {
  qemuS: number;
  folderMB: number;
  records: number;
  instructions: number;
}

function folderMB(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0) / 1e6;
}

function boot(out: string, args: string, end = 'shutdown'): Boot {
  rmSync(out, { recursive: true, force: true });
  const m = measure(`${node} ${CLI} capture --out ${out} --no-summary ${args} > /dev/null 2>&1`, 1);
  const p = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8')) as { phases_us: { total: number }; exit: { reason: string }; trace?: { records: number; instructions: number } };
  if (p.exit.reason !== end) throw new Error(`capture ${args} ended with ${p.exit.reason}`);
  return { ...m, qemuS: p.phases_us.total / 1e6, folderMB: folderMB(out), records: p.trace?.records ?? 0, instructions: p.trace?.instructions ?? 0 };
}

const med = (xs: Boot[], k: keyof Boot): number => median(xs.map((x) => x[k] as number));
const n = (v: number): string => Math.round(v).toLocaleString('en-US');

export async function run(): Promise<string> {
  const title = '## Whole-boot tracing (QEMU TCG plugin)';
  if (!findExecutable('qemu-system-x86_64')) return `${title}\n\nnot available: qemu-system-x86_64 is not installed\n`;
  const work = mkdtempSync(join(tmpdir(), 'boot-trace-bench-whole-boot-'));
  try {
    // Warm the caches (kernel, kallsyms, appliance, plugin build) so no run pays for them.
    boot(join(work, 'warm'), '--mode trace --max-steps 1000', 'max-steps');
    const plain: Boot[] = [];
    const fn: Boot[] = [];
    for (let i = 0; i < RUNS; i++) {
      plain.push(boot(join(work, 'plain'), '--engine qemu --mode run'));
      fn.push(boot(join(work, 'function'), '--mode trace'));
    }
    const block = boot(join(work, 'block'), '--mode trace --granularity block');
    rmSync(join(work, 'block'), { recursive: true, force: true });
    const insn = boot(join(work, 'instruction'), '--mode trace --granularity instruction');
    rmSync(join(work, 'instruction'), { recursive: true, force: true });

    const dir = join(work, 'function');
    const captureS = med(fn, 'seconds');
    const analyzers: [string, string][] = [
      ['hot-functions', `hot-functions ${dir} --top 0 --format csv`],
      ['hot-functions --clock instructions', `hot-functions ${dir} --top 0 --format csv --clock instructions`],
      ['first-calls', `first-calls ${dir} --format csv`],
      ['syscalls', `syscalls ${dir} --format csv`],
      ['syscalls --summary', `syscalls ${dir} --summary --format csv`],
      ['callees start_kernel', `callees ${dir} start_kernel --format csv`],
      ['summary (the capture\'s three answers)', `summary ${dir}`],
      ['export --to collapsed', `export ${dir} --to collapsed`],
      ['export --to text', `export ${dir} --to text`],
    ];
    const rows = analyzers.map(([name, args]) => {
      const m = measure(`${node} ${CLI} ${args} > /dev/null`, RUNS);
      return `| \`${name}\` | ${fmt(m.seconds)} | ${fmt(m.seconds / captureS)} | ${n(m.maxRssMB)} |`;
    });

    const p = med(plain, 'seconds');
    const pq = med(plain, 'qemuS');
    const line = (name: string, b: { seconds: number; qemuS: number; maxRssMB: number; folderMB: number; records: number }, all?: Boot[]): string =>
      `| ${name} | ${fmt(b.seconds)}${all ? ` (${all.map((x) => fmt(x.seconds)).join(', ')})` : ''} | ${fmt(b.seconds / p)} | ${fmt(b.qemuS)} | ${fmt(b.qemuS / pq)} | ${n(b.records)} | ${fmt(b.folderMB, 1)} | ${n(b.maxRssMB)} |`;
    const fmed = { seconds: med(fn, 'seconds'), qemuS: med(fn, 'qemuS'), maxRssMB: Math.max(...fn.map((x) => x.maxRssMB)), folderMB: med(fn, 'folderMB'), records: med(fn, 'records') };
    const pmed = { seconds: p, qemuS: pq, maxRssMB: Math.max(...plain.map((x) => x.maxRssMB)), folderMB: med(plain, 'folderMB'), records: 0 };
    return [
      title,
      '',
      '`npm run bench -- whole-boot` (`node dist/bench/whole-boot.js`): the default kernel (Debian cloud) and appliance,',
      `\`node dist/src/cli.js capture --no-summary\` with \`--engine qemu\` (plain TCG boot, the baseline) and with \`--mode trace\`,`,
      `${RUNS} interleaved pairs (median; all runs in brackets), then one boot at block and one at instruction granularity.`,
      'Wall: the whole command (setup, QEMU, writing profile.json), GNU time; QEMU: profile.json phases_us.total (spawn to',
      'exit); RSS: the largest process (QEMU). Ratios against the plain boot of the same run.',
      '',
      '| capture | wall s | x plain | QEMU s | x plain | records | folder MB | peak RSS MB |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      line('plain QEMU boot (`--engine qemu --mode run`; baseline)', pmed, plain),
      line('`--mode trace` (function granularity)', fmed, fn),
      line('`--mode trace --granularity block`', block),
      line('`--mode trace --granularity instruction`', insn),
      '',
      `Targets: function granularity <= 3x a plain boot (hard 4x): **${fmt(fmed.seconds / p)}x** wall, **${fmt(fmed.qemuS / pq)}x** QEMU;`,
      `capture folder <= 100 MB: **${fmt(fmed.folderMB, 1)} MB** (${n(fmed.records)} records, ${fmt((fmed.folderMB * 1e6) / fmed.records, 2)} B/record, zlib level 1);`,
      `guest instructions recorded: ${n(fn.at(-1)!.instructions)} (function), ${n(block.instructions)} (block), ${n(insn.instructions)} (instruction).`,
      '',
      `Each analyzer on the last function-granularity recording (${n(fn.at(-1)!.records)} records), median of ${RUNS} runs, against the`,
      `median wall time of a function-granularity capture (${fmt(captureS)} s); targets: no slower than the capture, peak RSS <= 300 MB:`,
      '',
      '| command | wall s | x capture | peak RSS MB |',
      '|---|---:|---:|---:|',
      ...rows,
      '',
      '`export --to text` writes the 2016 text format (~1 GB for a whole boot at function granularity; to /dev/null here).',
      '',
    ].join('\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, run);
