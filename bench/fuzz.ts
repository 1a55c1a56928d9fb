/**
 * `npm run bench -- fuzz`: the fuzz and robustness suite of test/fuzz.test.ts, test/fuzz-kernel.test.ts and
 * test/hostile-guests.test.ts at a size CI has no time for, with the counts (inputs, crashes, hangs, wrong
 * answers) written to docs/robustness.md; and the time a long line costs in each input form, to show the
 * reader's work is linear in the line's length (docs/trace-format.md, "Long lines").
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { HDR } from '../capture/boot/bzimage.js';
import { decompressKernel } from '../capture/kernel/decompress.js';
import { cachedKernels } from '../capture/kernel/discover.js';
import { buildGuests, haveCc } from '../test/elf-fixture.js';
import { fuzzCli } from '../test/fuzz/cli-fuzz.js';
import { fuzzConsoleReader } from '../test/fuzz/console-fuzz.js';
import { HOSTILE_GUESTS, repoChangedSince, runHostileGuest } from '../test/fuzz/hostile-guests.js';
import { fuzzKernelHeaders, kernelBases } from '../test/fuzz/kernel-fuzz.js';
import { CLI } from '../test/fuzz/paths.js';
import { emptyFuzzCounts, fuzzTraceReader, type FuzzCounts } from '../test/fuzz/trace-fuzz.js';

export const doc = 'robustness.md';

const SEED = 20261201;

interface Row { what: string; counts: FuzzCounts; seconds: number; note?: string }

async function timed(what: string, f: () => FuzzCounts | Promise<FuzzCounts>, note?: string): Promise<Row> {
  process.stderr.write(`bench: fuzz: ${what} ...\n`);
  const t0 = Date.now();
  const counts = await f();
  const row = { what, counts, seconds: (Date.now() - t0) / 1000, note };
  process.stderr.write(`bench: fuzz: ${what}: ${counts.inputs} inputs, ${counts.crashes} crashes, ${counts.hangs} hangs, ${counts.wrong} wrong in ${row.seconds.toFixed(0)} s\n`);
  for (const f of counts.failures) process.stderr.write(`  ${f.slice(0, 400)}\n`);
  return row;
}

function hostileGuests(): FuzzCounts {
  const c = emptyFuzzCounts();
  for (const g of HOSTILE_GUESTS) {
    c.inputs++;
    const r = runHostileGuest(g);
    const what = `${g.name}: ${r.profile ? JSON.stringify(r.profile.exit) : `exit ${r.r.status}, ${r.r.stderr.trim().split('\n').pop()}`} in ${r.seconds.toFixed(1)} s`;
    if (r.r.error || r.r.signal) c.hangs++;
    else if (r.r.status !== 0 || /internal error|\n\s+at /.test(r.r.stderr)) c.crashes++;
    else if (!g.stops.includes(r.profile?.exit.reason ?? '') || /found when --timeout/.test(r.profile!.exit.detail) || r.seconds > g.within
      || r.stray.length > 0 || repoChangedSince(r.started).length > 0) c.wrong++;
    else continue;
    if (c.failures.length < 5) c.failures.push(what);
  }
  return c;
}

/** hot-functions on a trace holding one line of `mb` MB (0: no long line), as a plain file, .gz and stdin: seconds each. */
function longLine(dir: string, mb: number): number[] {
  const text = Buffer.concat([Buffer.from('10 start_kernel in section .text\n11 '), Buffer.alloc(mb << 20, 0x61), Buffer.from('\n12 mm_init\n')]);
  const plain = join(dir, `long-${mb}.log`);
  writeFileSync(plain, text);
  writeFileSync(`${plain}.gz`, gzipSync(text));
  const run = (args: string[], input?: Buffer): number => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [CLI, 'hot-functions', ...args, '--format', 'csv'], { input, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`hot-functions ${args.join(' ')}: ${r.stderr}`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  // The best of three: the machine is shared, and the least disturbed run is the one that measures the work.
  const best = (f: () => number): number => Math.min(f(), f(), f());
  return [best(() => run([plain])), best(() => run([`${plain}.gz`])), best(() => run(['-'], text))];
}

export async function run(): Promise<string> {
  const rows: Row[] = [];
  rows.push(await timed('trace reader vs. reference model (in process)', () => fuzzTraceReader(200_000, SEED)));
  rows.push(await timed('trace commands through the CLI (plain, .gz, stdin, parallel)', () => fuzzCli(60, SEED, 3)));
  rows.push(await timed('console reader, black box (in process)', () => fuzzConsoleReader(50_000, SEED)));
  const kernel = cachedKernels().at(-1);
  if (haveCc() && kernel) {
    const real = readFileSync(kernel.path);
    const setup = Buffer.from(real.subarray(0, (real[HDR.setupSects]! + 1) * 512));
    const { vmlinux } = await decompressKernel(kernel.path);
    const bases = kernelBases(buildGuests()!.high, setup, real, vmlinux);
    rows.push(await timed(`kernel headers: ${bases.map((b) => b.name).join(', ')} (in process)`, () => fuzzKernelHeaders(100_000, SEED, bases)));
  } else {
    process.stderr.write('bench: fuzz: kernel headers skipped (needs cc and a cached Debian kernel: scripts/setup.sh)\n');
  }
  if (existsSync('/dev/kvm') && haveCc()) {
    rows.push(await timed('hostile guests through capture --engine kvm', hostileGuests,
      'engine defect: HLT with IF=0 is only found when --timeout fires (hlt-if0)'));
  }

  const dir = mkdtempSync(join(tmpdir(), 'bt-bench-fuzz-'));
  const long = [0, 10, 100].map((mb) => [mb, ...longLine(dir, mb)] as const);
  rmSync(dir, { recursive: true, force: true });

  const table = rows.map((r) => `| ${r.what} | ${r.counts.inputs.toLocaleString('en-US')} | ${r.counts.crashes} | ${r.counts.hangs} | ${r.counts.wrong} | ${r.seconds.toFixed(0)} s | ${r.note && (r.counts.wrong || r.counts.hangs || r.counts.crashes) ? r.note : ''} |`);
  const failures = rows.flatMap((r) => r.counts.failures.slice(0, 2).map((f) => `- ${r.what}: ${f.split('\n')[0]!.slice(0, 300)}`));
  return [
    '## Fuzz counts',
    '',
    `Command: \`npm run bench -- fuzz\` (seed ${SEED}; CI runs the same fuzzers smaller: \`npx vitest run test/fuzz.test.ts test/fuzz-kernel.test.ts test/hostile-guests.test.ts\`).`,
    'A crash is a throw other than UserError in process, or an exit that is neither 0 nor a one-line error; a hang an input over',
    'its time limit (2 s in process, 60 s per CLI run, the guest\'s own limit); wrong a result that differs from the reference',
    'model or breaks an invariant (Infinity/NaN, percent outside 0-100, a stop found late, a file outside --out).',
    '',
    '| what | inputs | crashes | hangs | wrong | time | |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...table,
    '',
    ...(failures.length ? ['First failures:', '', ...failures, ''] : []),
    '## One long line, every input form',
    '',
    'Seconds (best of 3) for `boot-trace hot-functions` on a trace whose second line is N MB of `a`; the line is cut at',
    '64 KiB and reported once. The 0 MB row (the same trace without the long line) is the baseline: start-up. Each form',
    'costs a constant time per byte of the line (the last row: what 90 MB more cost, per MB). Before this, the .gz form',
    'of the 100 MB line did not finish in 100 s: the unfinished line was copied again for every 16 KiB gunzip chunk.',
    '',
    '| line | plain | .gz | stdin |',
    '|---:|---:|---:|---:|',
    ...long.map(([mb, p, g, s]) => `| ${mb} MB | ${p.toFixed(2)} s | ${g.toFixed(2)} s | ${s.toFixed(2)} s |`),
    `| per MB, 10 -> 100 MB | ${[1, 2, 3].map((k) => `${(((long[2]![k]! - long[1]![k]!) / 90) * 1000).toFixed(1)} ms`).join(' | ')} |`,
  ].join('\n');
}
