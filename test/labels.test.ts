/**
 * What the outputs call a capture's times and counts, on real captures: a whole boot recorded under QEMU TCG
 * (`capture --mode trace`) is labelled as a whole boot on the host clock, never as single-stepping, in the
 * report, summary, exports and analyzers (docs/clocks.md); one clock vocabulary (instructions = steps); counts
 * without decimals; records for recordings; a recording cut short said to be cut, not corrupt.
 * Needs qemu-system-x86_64 with plugin support, cc, a default kernel, busybox.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, statSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliJson, runCli, sample } from './helpers.js';
import { kvmMissing } from './capture-helpers.js';
import { timelineSvg } from '../src/report/timeline-svg.js';
import { busyboxMissing, commandMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const BOOT_MS = 400_000;
const STEPPING = /single-step|stepping time|traps to the VMM/i;

describeNeeds(firstMissing(qemuMissing(), commandMissing('cc', 'gcc'), defaultKernelMissing(), busyboxMissing()), 'labels of a whole-boot capture (capture --mode trace)', () => {
  let tmp: string;
  let dir: string;

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bt-labels-'));
    dir = join(tmp, 'boot');
    // --clock instructions is accepted in trace mode (the recording holds both clocks): item B.
    const r = runCli(['capture', '--engine', 'qemu', '--mode', 'trace', '--clock', 'instructions', '--out', dir, '--no-summary'], { timeoutMs: BOOT_MS });
    if (r.status !== 0) throw new Error(`capture --mode trace --clock instructions exited ${r.status}: ${r.stderr}`);
  }, BOOT_MS);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the report calls it a whole boot under QEMU TCG, with no single-stepping banner, card or lane', () => {
    const out = join(tmp, 'report.html');
    const r = runCli(['report', dir, '--output', out], { timeoutMs: BOOT_MS });
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).not.toMatch(STEPPING);
    expect(html).not.toMatch(/Not boot time/);
    expect(html).toMatch(/whole-boot recording/);
    expect(html).toMatch(/id="measured">Measured: [^<]*recorded by the TCG plugin[^<]*records at function granularity/);
    expect(html).toMatch(/microseconds since QEMU started \(host clock, QEMU TCG\)/);
  });

  it('hot-functions on the text export of a recording gives no stepping warning; the Chrome export names the whole-boot clock', () => {
    const text = join(tmp, 'boot.log');
    const e = runCli(['export', dir, '--to', 'text', '-o', text], { timeoutMs: BOOT_MS });
    expect(e.status, e.stderr).toBe(0);
    const h = runCli(['hot-functions', text, '--top', '3', '--format', 'csv'], { timeoutMs: BOOT_MS });
    expect(h.status, h.stderr).toBe(0);
    expect(h.stderr).not.toMatch(STEPPING);
    const chrome = join(tmp, 'boot.json');
    const c = runCli(['export', dir, '--to', 'chrome', '-o', chrome], { timeoutMs: BOOT_MS });
    expect(c.status, c.stderr).toBe(0);
    const fd = openSync(chrome, 'r');
    const head = Buffer.alloc(2000);
    readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    expect(head.toString()).toMatch(/"otherData":\{"clock":"host-whole-boot"/);
  });

  it('summary of the capture names the whole-boot clock, not stepping', () => {
    const r = runCli(['summary', dir], { timeoutMs: BOOT_MS });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(STEPPING);
    expect(r.stdout).toMatch(/trace: host microseconds since QEMU started, a whole boot under QEMU TCG/);
  });

  it('--clock instructions and --clock steps are one clock: counts labelled "instructions", without decimals, in records', () => {
    const a = runCli(['hot-functions', dir, '--clock', 'instructions', '--top', '3', '--format', 'table'], { timeoutMs: BOOT_MS });
    const b = runCli(['hot-functions', dir, '--clock', 'steps', '--top', '3', '--format', 'table'], { timeoutMs: BOOT_MS });
    expect(a.status, a.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const [head, first] = a.stdout.split('\n');
    expect(head).toMatch(/^function\s+time \(instructions\)\s+%\s+records$/);
    expect(first).toMatch(/^\S+\s+[\d,]+\s+\d+\.\d\d\s+[\d,]+$/);
  });

  it('summary --top 3 prints 3 rows per table; --format json gives the recording\'s rows', () => {
    const r = runCli(['summary', dir, '--top', '3'], { timeoutMs: BOOT_MS });
    expect(r.status, r.stderr).toBe(0);
    const block = (title: RegExp): string[] => {
      const lines = r.stdout.split('\n');
      const i = lines.findIndex((l) => title.test(l));
      expect(i, `${title} in ${r.stdout}`).toBeGreaterThanOrEqual(0);
      const rest = lines.slice(i + 1);
      return rest.slice(0, rest.findIndex((l) => l.trim() === ''));
    };
    expect(block(/^Hottest functions \(self time, host clock/)).toHaveLength(3);
    // Three kinds by count, then the rest of the kinds on wrapped lines (each starts with two spaces and a count).
    expect(block(/^System calls \(/).filter((l) => /^\s+\d+\s{2}\S+\s+total/.test(l))).toHaveLength(3);
    const j = cliJson<{ trace: string; clock: { kind: string }; hot_functions: unknown[]; syscalls: unknown[] }>(['summary', dir, '--top', '3'], { timeoutMs: BOOT_MS });
    expect(j.trace).toBe(join(dir, 'recording.bin'));
    expect(j.clock.kind).toBe('host-whole-boot');
    expect(j.hot_functions).toHaveLength(3);
    expect(j.syscalls).toHaveLength(3);
  });

  it('summary of a folder that is no capture says so, in one line', () => {
    const empty = mkdtempSync(join(tmp, 'empty-'));
    const r = runCli(['summary', empty]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`boot-trace: ${empty}: not a capture folder (no profile.json or console.log) and not a trace file`);
  });

  it('a recording cut before its symbols, or before its first record, is "cut short", one line, exit 1', () => {
    const full = readFileSync(join(dir, 'recording.bin'));
    const early = join(tmp, 'early.bin');
    writeFileSync(early, full.subarray(0, 100_000));
    let r = runCli(['hot-functions', early]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/recording cut short before its (symbol|header) frame \(a partial frame at byte \d+/);
    expect(r.stderr).not.toMatch(/corrupt/);
    // 1,000,000 bytes: the symbols are whole, the first record frame is not (a function-granularity frame is ~0.5 MB).
    const cut = join(tmp, 'cut.bin');
    writeFileSync(cut, full.subarray(0, 1_000_000));
    for (const args of [['hot-functions', cut], ['export', cut, '--to', 'text', '-o', join(tmp, 'cut.txt')]]) {
      r = runCli(args);
      expect(r.status, args[0]).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^boot-trace: \S+cut\.bin: recording cut short before its first record \(a partial frame at byte \d+ .*\): no record could be read$/)]);
    }
  });

  it('uart on a whole boot\'s console: the interval clamped at 0, a note that the fit is not meaningful; the report does not headline it', () => {
    const r = runCli(['uart', join(dir, 'console.log'), '--format', 'json']);
    expect(r.status, r.stderr).toBe(0);
    const [row] = JSON.parse(r.stdout) as Array<{ us_per_char: number; ci95_low: number; ci95_high: number }>;
    expect(row!.ci95_low).toBeGreaterThanOrEqual(0);
    // The interval of this console is wide (the delays between lines are the guest's work under TCG, not the UART).
    expect(row!.ci95_high - row!.ci95_low).toBeGreaterThan(row!.us_per_char);
    expect(r.stderr.trim()).toMatch(/^boot-trace: \S+console\.log: the fit is not meaningful: its 95% interval \([\d.]+ to [\d.]+ us\/char\) is wider than the estimate/);
    const html = readFileSync(join(tmp, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<b>[\d.]+ us\/char<\/b>/);
    expect(html).toMatch(/UART cost<\/[^>]+>\s*<[^>]+>not measured: the fit is not meaningful/);
  });

  it('at block granularity the host clock carries a note on recording overhead and suggests --clock instructions', () => {
    const block = join(tmp, 'block');
    const c = runCli(['capture', '--engine', 'qemu', '--mode', 'trace', '--granularity', 'block', '--max-steps', '50000000', '--out', block, '--no-summary'], { timeoutMs: BOOT_MS });
    expect(c.status, c.stderr).toBe(0);
    const h = runCli(['hot-functions', block, '--top', '3', '--format', 'csv'], { timeoutMs: BOOT_MS });
    expect(h.status, h.stderr).toBe(0);
    expect(h.stderr).toMatch(/at block granularity the host-clock self times include the recording's own overhead \(about 36 ns per record.*use --clock instructions/);
    expect(h.stderr).not.toMatch(STEPPING);
    // On the instructions clock there is nothing to warn about but that the figures are counts.
    const i = runCli(['hot-functions', block, '--top', '3', '--format', 'csv', '--clock', 'instructions'], { timeoutMs: BOOT_MS });
    expect(i.stderr).not.toMatch(/overhead/);
    const out = join(tmp, 'block.html');
    expect(runCli(['report', block, '--output', out], { timeoutMs: BOOT_MS }).status).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/<p class="warn"><b>Note:<\/b> at block granularity the host-clock self times include/);
    expect(html).not.toMatch(/Not boot time/);
  });

  it('a choice error is one line', () => {
    const r = runCli(['hot-functions', dir, '--clock', 'bogus']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Given: "bogus", Choices: "host", "instructions", "steps"/);
  });
});

describe('numeric options: one checker, quoting what was typed', () => {
  const k3b = sample('realworld', 'K3b-initcalls-journalctl.log');
  const stacks = sample('stacks', 'calls-and-returns.log');
  const refusals: Array<[string[], string]> = [
    [['initcalls', k3b, '--top', 'abc'], '--top "abc": not a row count (a whole number, 0 for all)'],
    [['initcalls', k3b, '--top', '-3'], '--top "-3": not a row count (a whole number, 0 for all)'],
    [['callees', stacks, 'start_kernel', '--depth', 'abc'], '--depth "abc": give a whole number >= 0'],
    [['callees', stacks, 'start_kernel', '--depth', '-1'], '--depth "-1": give a whole number >= 0'],
    [['uart', k3b, '--gap-us', 'NaN'], '--gap-us "NaN": give a positive number of microseconds'],
    [['uart', k3b, '--gap-us', '0'], '--gap-us "0": give a positive number of microseconds'],
    [['capture', '--guest', 'demo', '--timeout', 'abc'], '--timeout "abc": give a positive number of seconds'],
    [['capture', '--guest', 'demo', '--memory', '12x'], '--memory "12x": give a positive whole number of MiB'],
    [['capture', '--guest', 'demo', '--mode', 'step', '--max-steps', '1.5'], '--max-steps "1.5": give a positive whole number'],
    [['benchmark', '--runs', 'abc'], '--runs "abc": give a whole number >= 1'],
    [['flamegraph', stacks, '--width', '-5'], '--width "-5": give a positive whole number of pixels'],
  ];
  for (const [args, message] of refusals) {
    it(`${args.join(' ')}: one line, exit 1`, () => {
      const r = runCli(args);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([`boot-trace: ${message}`]);
    });
  }

  it('a good value is taken: --depth 1 shows the root and its callees only; --top 1 one initcall', () => {
    const rows = cliJson<Array<{ depth: number }>>(['callees', stacks, 'start_kernel', '--depth', '1']);
    expect(rows.length).toBeGreaterThan(1);
    expect(Math.max(...rows.map((r) => r.depth))).toBe(1);
    expect(cliJson<unknown[]>(['initcalls', sample('realworld', 'K4-initcall-format-2.6.25.log'), '--top', '1'])).toHaveLength(1);
  });

  it('a pid is an id: printed without thousands separators (K3b)', () => {
    const r = runCli(['initcalls', k3b, '--format', 'table']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[1]).toMatch(/\s121074$/);
  });
});

describe('stages --timeline with two markers on one stamp (samples/console/qemu-tcg-6.1-appliance-quiet.log)', () => {
  it('opens a zero-length span before closing it, and leaves no column open after "boot end"', () => {
    const r = runCli(['stages', sample('console', 'qemu-tcg-6.1-appliance-quiet.log'), '--timeline']);
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trimEnd().split('\n').map((l) => /^\s*[\d.]+ ms  (.*?)  (\S.*)$/.exec(l)!);
    const labels = rows.map((m) => m[2]!);
    const begin = labels.indexOf('BOOT_TIME:init_ok');
    const end = labels.indexOf('BOOT_TIME:init_ok end (0.000 ms)');
    expect(begin).toBeGreaterThanOrEqual(0);
    expect(end).toBe(begin + 1);
    // Every span's end after its begin.
    labels.forEach((l, i) => {
      const m = /^(.*) end \(/.exec(l);
      if (m) expect(labels.indexOf(m[1]!), l).toBeLessThan(i);
    });
    expect(labels.at(-1)).toMatch(/^boot end/);
    expect(rows.at(-1)![1]!.trim()).toBe('┴');
  });
});

describeNeeds(kvmMissing(), 'the exit line of an interrupted step capture (demo guest, KVM)', () => {
  it('says "interrupted" and the signal once', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'bt-labels-int-')), 'cap');
    const child = spawn(process.execPath, [CLI, 'capture', '--guest', 'demo', '--mode', 'step', '--out', out, '--timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    // Interrupt once stepping is under way (the trace has lines on disk).
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(existsSync(join(out, 'trace.log')) && statSync(join(out, 'trace.log')).size > 64 * 1024)) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const exitLines = stderr.split('\n').filter((l) => /^\[boot-profile\] exit: |^ {2}end: /.test(l));
    expect(exitLines).toHaveLength(2);
    for (const l of exitLines) {
      expect(l.match(/interrupted/g), l).toHaveLength(1);
      expect(l.match(/SIGINT/g), l).toHaveLength(1);
    }
    const profile = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8')) as { exit: { detail: string; signal: string } };
    expect(profile.exit.signal).toBe('SIGINT');
    expect(profile.exit.detail.match(/SIGINT/g)).toHaveLength(1);
  }, 60_000);
});

describe('a QEMU -d exec log (K8) has no clock', () => {
  it('its table heads the times "blocks", whole numbers, as stderr says', () => {
    const r = runCli(['hot-functions', sample('realworld', 'K8-foreign-file-warnings-then-error.log'), '--format', 'table']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/times are block counts/);
    const [head, first] = r.stdout.split('\n');
    expect(head).toMatch(/^function\s+time \(blocks\)\s+%\s+lines$/);
    expect(first).toMatch(/^\[user\]\s+5\s+100\.00\s+6$/);
  });
});

describeNeeds(kvmMissing(), 'the report of a demo step capture (KVM): its timeline', () => {
  let html: string;
  beforeAll(() => {
    const tmp = mkdtempSync(join(tmpdir(), 'bt-labels-demo-'));
    const dir = join(tmp, 'cap');
    const c = runCli(['capture', '--guest', 'demo', '--mode', 'step', '--out', dir, '--no-summary'], { timeoutMs: 150_000 });
    if (c.status !== 0) throw new Error(`capture --guest demo --mode step exited ${c.status}: ${c.stderr}`);
    const r = runCli(['report', dir, '--output', join(tmp, 'r.html')], { timeoutMs: 150_000 });
    if (r.status !== 0) throw new Error(`report exited ${r.status}: ${r.stderr}`);
    html = readFileSync(join(tmp, 'r.html'), 'utf8');
  }, 300_000);

  it('writes every axis in one unit', () => {
    const svgs = html.match(/<svg[^>]*class="timeline"[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs.length).toBeGreaterThan(0);
    for (const svg of svgs) {
      const axis = /<g class="axis"[^>]*>([\s\S]*?)<\/g>/.exec(svg)![1]!;
      const ticks = [...axis.matchAll(/fill="#666">([^<]*)</g)].map((m) => m[1]!);
      expect(ticks.length).toBeGreaterThan(1);
      const units = new Set(ticks.map((t) => t.split(' ').at(-1)));
      expect(units.size, ticks.join(' | ')).toBe(1);
    }
  });

  it('keeps every marker label (ready too) inside the chart, flipping it left at the right edge', () => {
    const svgs = html.match(/<svg[^>]*class="timeline"[\s\S]*?<\/svg>/g) ?? [];
    let seenReady = false;
    for (const svg of svgs) {
      const left = Number(/data-left="([\d.]+)"/.exec(svg)![1]);
      const chart = Number(/data-chart="([\d.]+)"/.exec(svg)![1]);
      for (const m of svg.matchAll(/<g class="item" data-s="[^"]*" data-l="([^"]*)" transform="translate\(([-\d.]+),0\)">(?:(?!<\/g>)[\s\S])*?<text x="7"/g)) {
        const [, label, x] = m;
        if (label === 'ready') seenReady = true;
        // Not flipped: the label runs right from the mark; it must end inside the clip (chart + 6 px).
        expect(Number(x) + 7 + label!.length * 6.2, label).toBeLessThanOrEqual(left + chart + 6);
      }
      if (/data-l="ready"[^>]*>(?:(?!<\/g>)[\s\S])*?<text x="-7"/.test(svg)) seenReady = true;
    }
    expect(seenReady).toBe(true);
  });

  it('flips a marker label that would end between the chart\'s clip and the image edge (where "ready" was cut)', () => {
    const lanes = (t: number) => [{ name: 'console markers', colour: '#c33', items: [{ start: 0, label: 'boot' }, { start: t, label: 'ready' }] }];
    const probe = timelineSvg(lanes(0), { span: [0, 1000] });
    const chart = Number(/data-chart="([\d.]+)"/.exec(probe)![1]);
    // The mark 20 px before the chart's right end: "ready" (8 + 5 * 6.2 px) would end 19 px past it.
    const svg = timelineSvg(lanes((1000 * (chart - 20)) / chart), { span: [0, 1000] });
    expect(svg).toMatch(/data-l="ready"[^>]*>(?:(?!<\/g>)[\s\S])*?<text x="-7"[^>]*text-anchor="end">ready</);
  });
});
