/**
 * `boot-trace benchmark [capture options]`: boots the same configuration many times (after a few warm-up
 * boots whose figures are dropped, as libguestfs boot-benchmark does), and reports the time to a chosen
 * point as mean, sample SD, min, median and max, with per-stage means and memory (the guest's `free -m`,
 * the VMM's or QEMU's peak RSS). `--vary` compares configurations side by side, with the change in
 * percent against the first, flagged at >= 1% like boot-benchmark-range.
 *
 *   boot-trace benchmark --engine qemu --runs 3 --warmup 1
 *   boot-trace benchmark --engine qemu --vary 'cmdline+=quiet|' --until marker:ready --format json
 *
 * Each capture goes into its own folder under --out: <out>/[<k>-<config>/]{warmup-<i>,run-<i>}.
 */
import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { SIGNIFICANCE_LEVEL, describeSample, isSignificant, meanOrNull, percentChange, roundMs, stageMeans, welchTest, type StageMean } from '../../analyzers/benchmark.js';
import type { ConsoleLine, ConsoleVisitor } from '../../analyzers/console-lines.js';
import { GuestMemoryReader } from '../../analyzers/guest-memory.js';
import { Stages, type StageRow } from '../../analyzers/stages.js';
import { guestMemoryOf } from '../../capture/engines/record.js';
import { CONSOLE_FILE, defaultOutDir, prepareOutDir, readCaptureConsole } from '../../capture/output/folder.js';
import type { Profile, ProfileGuestMemory } from '../../capture/output/profile.js';
import { UserError } from '../errors.js';
import { OUTPUT_FORMATS, defaultFormat, writeRows, type Column, type OutputFormat } from '../output/write.js';
import { captureFromArgs, captureOptions, type CaptureArgs } from './capture.js';
import { numberOption } from './options.js';

/** What readRun needs of one boot: its folder and its profile (a CaptureRun is one). */
export interface CaptureOutcome {
  outDir: string;
  profile: Profile;
}

// ---------------------------------------------------------------------------------------------------
// --until and --vary

export type Until = { kind: 'marker'; stage: string } | { kind: 'exit' } | { kind: 'regex'; re: RegExp };

export function parseUntil(spec: string): Until {
  if (spec === 'exit') return { kind: 'exit' };
  const m = /^(marker|regex):(.+)$/.exec(spec);
  if (!m) throw new UserError(`--until ${JSON.stringify(spec)}: expected marker:STAGE (e.g. marker:ready), exit, or regex:RE`);
  if (m[1] === 'marker') return { kind: 'marker', stage: m[2]! };
  try {
    return { kind: 'regex', re: new RegExp(m[2]!) };
  } catch (err) {
    throw new UserError(`--until ${JSON.stringify(spec)}: bad regex: ${(err as Error).message}`);
  }
}

export interface Configuration {
  /** As shown in the output: `cmdline+=quiet`, `kernel=vmlinuz-6.1`, or `default`. */
  label: string;
  /** Capture arguments this configuration replaces. */
  set: { cmdline?: string; append?: string; kernel?: string };
}

/**
 * The configurations of one or more --vary specs (their cross product), in the order given:
 *   'cmdline+=quiet|'   the base command line with " quiet" appended, then the base command line
 *   'cmdline=A|B'       command line A, then B
 *   'kernel=K1|K2'      kernel K1, then K2
 */
export function parseVary(specs: readonly string[], baseCmdline: string | undefined): Configuration[] {
  // Without --cmdline, `cmdline+=` adds to the engine's default through --append (the engine is chosen later).
  let configs: Configuration[] = [{ label: 'default', set: {} }];
  for (const spec of specs) {
    const m = /^(cmdline|kernel)(\+?=)(.*)$/s.exec(spec);
    if (!m) throw new UserError(`--vary ${JSON.stringify(spec)}: expected cmdline+=A|B, cmdline=A|B or kernel=A|B`);
    const [, key, op, rest] = m as unknown as [string, 'cmdline' | 'kernel', '=' | '+=', string];
    if (op === '+=' && key !== 'cmdline') throw new UserError(`--vary ${JSON.stringify(spec)}: += applies to cmdline only`);
    const values = rest.split('|');
    if (values.length < 2 && op === '=') throw new UserError(`--vary ${JSON.stringify(spec)}: give at least two values separated by |`);
    const next: Configuration[] = [];
    for (const c of configs) {
      for (const v of values) {
        const set = { ...c.set };
        if (key === 'kernel') {
          if (!v) throw new UserError(`--vary ${JSON.stringify(spec)}: empty kernel name`);
          set.kernel = v;
        } else if (op === '=') set.cmdline = v;
        else {
          const base = set.cmdline ?? baseCmdline;
          if (base === undefined) {
            if (v) set.append = set.append ? `${set.append} ${v}` : v;
          } else set.cmdline = v ? `${base ? `${base} ` : ''}${v}` : base;
        }
        const part = `${key}${op}${v === '' ? "''" : v}`;
        next.push({ label: c.label === 'default' ? part : `${c.label} ${part}`, set });
      }
    }
    configs = next;
  }
  return configs;
}

// ---------------------------------------------------------------------------------------------------
// Reading one run's outputs

export interface RunFigures {
  run: number;
  out: string;
  /** Milliseconds to the --until point. */
  ms: number;
  exit: string;
  peak_rss_mib: number | null;
  guest_memory: ProfileGuestMemory | null;
  stages: StageRow[];
}

/** Finds the host stamp of the first console line the --until point names. */
class UntilFinder implements ConsoleVisitor {
  at: number | null = null;
  constructor(private readonly test: (text: string) => boolean) {}
  line(l: ConsoleLine): void {
    if (this.at === null && l.hostUs !== null && this.test(l.text)) this.at = l.hostUs;
  }
}

/** Every visitor sees every line and message. */
function allOf(visitors: ConsoleVisitor[]): ConsoleVisitor {
  return {
    line: (l) => visitors.forEach((v) => v.line?.(l)),
    message: (m) => visitors.forEach((v) => v.message?.(m)),
  };
}

function describeUntil(u: Until): string {
  return u.kind === 'exit' ? 'exit' : u.kind === 'marker' ? `a BOOT_TIME:${u.stage}: line` : `a line matching /${u.re.source}/`;
}

/** @param run the run's number; @param label how errors name it (default `run <n>`, e.g. `warm-up 1`). */
export async function readRun(run: number, out: CaptureOutcome, until: Until, label = `run ${run}`): Promise<RunFigures> {
  const consoleFile = join(out.outDir, CONSOLE_FILE);
  const stages = new Stages();
  // The guest's memory as the profile has it (one definition: record.ts), read here too so that a
  // profile from before version 2 still gives it.
  const memory = new GuestMemoryReader();
  const marker = until.kind === 'marker' ? `BOOT_TIME:${until.stage}:` : '';
  const finder = new UntilFinder(until.kind === 'regex' ? (t) => until.re.test(t) : (t) => t.includes(marker));
  await readCaptureConsole(out.outDir, allOf([stages, memory, finder]));
  const p = out.profile;
  const exit = p.exit.reason;
  const us = until.kind === 'exit' ? p.phases_us.total ?? null : finder.at;
  if (us === null || us === undefined) {
    throw new UserError(`${consoleFile}: ${label} never reached ${describeUntil(until)} (the boot ended with "${exit}")`);
  }
  return {
    run,
    out: out.outDir,
    ms: us / 1000,
    exit,
    peak_rss_mib: p.peak_rss_mib,
    guest_memory: p.guest_memory ?? guestMemoryOf(memory.result()),
    stages: stages.result().rows,
  };
}

// ---------------------------------------------------------------------------------------------------
// Summaries

export interface ConfigurationResult {
  config: string;
  kernel: string | null;
  cmdline: string | null;
  until: string;
  runs: { run: number; ms: number; out: string; exit: string; peak_rss_mib: number | null; guest_memory: ProfileGuestMemory | null }[];
  mean_ms: number;
  sd_ms: number | null;
  min_ms: number;
  median_ms: number;
  max_ms: number;
  /** Change of the mean against the first configuration, in percent (null for the first). */
  change_pct: number | null;
  /** Welch's t-test of this configuration's runs against the first's, two-sided (null for the first, or under 2 runs). */
  p_value: number | null;
  /** p_value < SIGNIFICANCE_LEVEL (0.05). */
  significant: boolean;
  guest_used_mib: number | null;
  guest_total_mib: number | null;
  peak_rss_mib: number | null;
  stages: StageMean[];
}

export function summarise(config: Configuration, untilSpec: string, runs: readonly RunFigures[], profiles: readonly Profile[], base: ConfigurationResult | null): ConfigurationResult {
  const s = describeSample(runs.map((r) => r.ms));
  const mem = runs.map((r) => r.guest_memory).filter((m): m is ProfileGuestMemory => m !== null);
  const rss = runs.map((r) => r.peak_rss_mib).filter((b): b is number => b !== null);
  const change = base ? percentChange(base.mean_ms, s.mean) : null;
  const test = base ? welchTest(base.runs.map((r) => r.ms), runs.map((r) => r.ms)) : null;
  const p = test === null ? null : Number(test.p.toPrecision(3));
  const round1 = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
  const first = profiles[0];
  return {
    config: config.label,
    kernel: first?.kernel ?? config.set.kernel ?? null,
    cmdline: first?.cmdline ?? config.set.cmdline ?? null,
    until: untilSpec,
    runs: runs.map(({ run, ms, out, exit, peak_rss_mib, guest_memory }) => ({ run, ms: roundMs(ms), out, exit, peak_rss_mib, guest_memory })),
    mean_ms: roundMs(s.mean),
    sd_ms: s.sd === null ? null : roundMs(s.sd),
    min_ms: roundMs(s.min),
    median_ms: roundMs(s.median),
    max_ms: roundMs(s.max),
    change_pct: change === null ? null : Math.round(change * 100) / 100,
    p_value: p,
    significant: isSignificant(p),
    guest_used_mib: round1(meanOrNull(mem.map((m) => m.used_mib))),
    guest_total_mib: round1(meanOrNull(mem.map((m) => m.total_mib))),
    peak_rss_mib: round1(meanOrNull(rss)),
    stages: stageMeans(runs.map((r) => r.stages)).map((m) => ({ ...m, mean_ms: roundMs(m.mean_ms), sd_ms: m.sd_ms === null ? null : roundMs(m.sd_ms), mean_start_ms: roundMs(m.mean_start_ms) })),
  };
}

type SummaryRow = Omit<ConfigurationResult, 'runs' | 'stages' | 'kernel' | 'cmdline' | 'until'> & { n: number };

/** A p-value as people read it: "0.41", "0.032", "<0.001". */
const showP = (p: number): string => (p < 0.001 ? '<0.001' : p < 0.01 ? p.toFixed(3) : p.toFixed(2));
const fixed = (digits: number) => (v: unknown): string => (typeof v === 'number' ? v.toFixed(digits) : '');
const SUMMARY_COLUMNS: Column<SummaryRow>[] = [
  { key: 'config', header: 'configuration' },
  { key: 'n', header: 'runs' },
  { key: 'mean_ms', header: 'mean (ms)', show: fixed(1) },
  { key: 'sd_ms', header: 'sd (ms)', show: fixed(1) },
  { key: 'min_ms', header: 'min (ms)', show: fixed(1) },
  { key: 'median_ms', header: 'median (ms)', show: fixed(1) },
  { key: 'max_ms', header: 'max (ms)', show: fixed(1) },
  { key: 'change_pct', header: 'change', show: (v) => (typeof v === 'number' ? `${v >= 0 ? '+' : ''}${v.toFixed(2)}%` : '') },
  { key: 'p_value', header: 'p', show: (v, r) => (typeof v === 'number' ? `${showP(v)}${r.significant ? ' *' : ''}` : '') },
  { key: 'guest_used_mib', header: 'guest used (MiB)', show: (v, r) => (typeof v === 'number' ? `${v} / ${r.guest_total_mib}` : '') },
  { key: 'peak_rss_mib', header: 'peak RSS (MiB)', show: fixed(1) },
];
const CSV_COLUMNS: Column<SummaryRow>[] = [
  ...SUMMARY_COLUMNS.filter((c) => c.key !== 'guest_used_mib'),
  { key: 'significant', header: 'significant' },
  { key: 'guest_used_mib', header: 'guest used (MiB)' },
  { key: 'guest_total_mib', header: 'guest total (MiB)' },
];

async function writeResults(results: readonly ConfigurationResult[], format: OutputFormat, varied: boolean): Promise<void> {
  if (format === 'json') {
    process.stdout.write(JSON.stringify(varied ? results : results[0], null, 2) + '\n');
    return;
  }
  const rows: SummaryRow[] = results.map(({ runs, stages: _s, kernel: _k, cmdline: _c, until: _u, ...rest }) => ({ ...rest, n: runs.length }));
  if (format === 'csv') {
    await writeRows(rows, CSV_COLUMNS, 'csv');
    return;
  }
  process.stdout.write(`time to ${results[0]!.until}\n`);
  await writeRows(rows, SUMMARY_COLUMNS, 'table');
  if (results.length > 1) {
    process.stdout.write(`change: of the mean against the first configuration; p: Welch's t-test of the runs, two-sided; * = p < ${SIGNIFICANCE_LEVEL}` +
      `${results.some((r) => r.runs.length < 5) ? ' (with fewer than 5 runs each only large changes can reach it)' : ''}\n`);
  }
  // Per-stage means: one column per configuration.
  const names: string[] = [];
  for (const r of results) for (const s of r.stages) if (!names.includes(s.name)) names.push(s.name);
  if (names.length === 0) return;
  type StageLine = Record<string, string | number>;
  const stageRows: StageLine[] = names.map((name) => {
    const row: StageLine = { stage: name };
    results.forEach((r, i) => {
      const s = r.stages.find((x) => x.name === name);
      row[`c${i}`] = s ? `${s.mean_ms.toFixed(3)}${s.sd_ms === null ? '' : ` ± ${s.sd_ms.toFixed(3)}`}` : '';
    });
    return row;
  });
  process.stdout.write('\nper-stage duration (ms): mean ± sample SD over the runs that have the stage\n');
  await writeRows(stageRows, [
    { key: 'stage', header: 'stage' },
    ...results.map((r, i) => ({ key: `c${i}`, header: results.length > 1 ? r.config : 'mean ± sd (ms)' })),
  ], 'table');
}

// ---------------------------------------------------------------------------------------------------
// The command

interface Args extends CaptureArgs {
  runs: number;
  warmup: number;
  until: string;
  vary: string[];
  format: OutputFormat;
}

function slug(label: string): string {
  return label.replace(/[^A-Za-z0-9.=+_-]+/g, '_').slice(0, 60);
}

export const benchmarkCommand: CommandModule<object, Args> = {
  command: 'benchmark',
  describe: 'boot many times and report the time to a point (mean, SD, min, median, max), per-stage means and memory',
  builder: (y) =>
    numberOption(numberOption(captureOptions(y), 'runs', { integer: true, min: 1, default: 10, describe: 'measured boots per configuration' }),
      'warmup', { integer: true, min: 0, default: 3, describe: 'boots before the measured ones, not counted' })
      .option('summary', { hidden: true, type: 'boolean', default: false })
      
      .option('until', { type: 'string', default: 'marker:ready', describe: 'the point timed: marker:STAGE (host time of the BOOT_TIME:STAGE line), exit (the whole capture), regex:RE (first console line matching)' })
      .option('vary', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: "compare configurations: 'cmdline+=quiet|', 'cmdline=A|B', 'kernel=A|B' (repeatable: cross product)" })
      .option('out', { type: 'string', describe: 'folder for the captures, one subfolder per boot, new or empty (default: captures/benchmark-<timestamp>)' })
      .option('force', { type: 'boolean', default: false, describe: 'empty a non-empty --out first (only if it holds nothing but earlier captures)' })
      .option('format', { choices: OUTPUT_FORMATS, default: defaultFormat(), defaultDescription: 'table on a terminal, else csv', describe: 'output format' }) as never,
  handler: async (args) => {
    const until = parseUntil(args.until);
    const configs = parseVary(args.vary, args.cmdline);
    const varied = args.vary.length > 0;
    const root = args.out ? resolve(args.out) : defaultOutDir().replace(/([^/]+)$/, 'benchmark-$1');
    prepareOutDir(root, args.force, true);
    const tty = Boolean(process.stderr.isTTY);
    const total = configs.length * (args.warmup + args.runs);
    let done = 0;
    const results: ConfigurationResult[] = [];
    const interrupt = new AbortController();
    const onSigint = (): void => interrupt.abort();
    process.once('SIGINT', onSigint);
    try {
      for (const [k, config] of configs.entries()) {
        const dir = varied ? join(root, `${k + 1}-${slug(config.label)}`) : root;
        const figures: RunFigures[] = [];
        const profiles: Profile[] = [];
        for (let i = 1; i <= args.warmup + args.runs; i++) {
          if (interrupt.signal.aborted) throw new UserError('benchmark interrupted', 130);
          const warm = i <= args.warmup;
          const name = warm ? `warmup-${i}` : `run-${i - args.warmup}`;
          if (tty) process.stderr.write(`\r\x1b[K${varied ? `[${k + 1}/${configs.length}] ` : ''}${warm ? `warm-up ${i}/${args.warmup}` : `run ${i - args.warmup}/${args.runs}`} (${++done}/${total})`);
          const set = { ...config.set, ...(config.set.append !== undefined ? { append: args.append ? `${args.append} ${config.set.append}` : config.set.append } : {}) };
          const out = await captureFromArgs({ ...args, ...set, out: join(dir, name), force: false, echo: false }, { log: () => {}, signal: interrupt.signal, progress: false });
          if (interrupt.signal.aborted || out.profile.exit.reason === 'interrupted') {
            throw new UserError(`benchmark interrupted during ${config.label === 'default' ? '' : `${config.label} `}${name}; captures so far in ${root}`, 130);
          }
          if (out.status !== 0) throw new UserError(`${out.outDir}: boot ${name} of ${config.label} failed (status ${out.status}, exit ${out.profile.exit.reason}: ${out.profile.exit.detail})`);
          // Warm-ups are read too: a configuration that never reaches the point fails before the measured runs.
          const f = await readRun(i - args.warmup, out, until, warm ? `warm-up ${i}` : undefined);
          if (!warm) {
            figures.push(f);
            profiles.push(out.profile);
          }
        }
        results.push(summarise(config, args.until, figures, profiles, results[0] ?? null));
      }
    } finally {
      process.off('SIGINT', onSigint);
      if (tty) process.stderr.write('\r\x1b[K');
    }
    await writeResults(results, args.format, varied);
    process.stderr.write(`captures in ${root}\n`);
  },
};
