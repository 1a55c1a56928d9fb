/**
 * Clocks named in every output (issue 13 item 4): what a trace's times mean is read from its header or its
 * capture's profile.json (src/output/clock.ts), and tables, exports, the summary and the report say it, with
 * a warning when the times are stepping time or instruction counts. A real demo-guest capture with
 * --clock steps loads into speedscope as plain counts (unit "none").
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { clockOf, readTraceHeader, traceClock } from '../src/output/clock.js';
import { CHROMIUM, NO_CHROMIUM, loadPage } from './browser.js';
import { kvmMissing } from './capture-helpers.js';
import { ROOT, runCli, sample } from './helpers.js';
import { describeNeeds, firstMissing } from './preconditions.js';

const work = mkdtempSync(join(tmpdir(), 'boot-trace-clocks-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A sample trace with a capture-style header saying `clock`. */
function withHeader(clock: string, mode = 'step'): string {
  const file = join(work, `${clock}-${mode}.log`);
  const body = readFileSync(sample('stacks', 'calls-and-returns.log'), 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('\n');
  writeFileSync(file, `# boot-trace capture (engine kvm)\n# mode: ${mode}\n# clock: ${clock} (as capture writes it)\n${body}`);
  return file;
}

describe('reading the clock', () => {
  it('from the trace header first, then profile.json; console times stay on the host clock', () => {
    expect(clockOf({ header: ['mode: step', 'clock: steps (the timestamp is the instruction index)'] }).kind).toBe('instructions');
    expect(clockOf({ header: ['mode: step', 'clock: host (microseconds since the VM was created)'] }).kind).toBe('host-stepping');
    expect(clockOf({ header: ['clock: host (microseconds since QEMU was started)'] }).kind).toBe('host-stepping');
    expect(clockOf({ profile: { mode: 'step', clock: 'steps' } }).kind).toBe('instructions');
    expect(clockOf({ profile: { mode: 'step', clock: 'steps' }, of: 'console' }).kind).toBe('host-stepping');
    expect(clockOf({ profile: { mode: 'run', clock: 'host' }, of: 'console' }).kind).toBe('host-running');
    expect(clockOf({ header: ['clock: steps'], profile: { clock: 'host', mode: 'step' } }).kind).toBe('instructions');
    expect(clockOf({}).kind).toBe('unspecified');
    expect(clockOf({}).warning).toBeNull();
    expect(clockOf({ header: ['clock: steps'] }).warning).toMatch(/instruction counts/);
    expect(clockOf({ profile: { mode: 'step' } }).warning).toMatch(/not boot time/);
  });

  it('reads the header of a plain or gzipped trace, and of the sample capture through its profile', () => {
    const plain = withHeader('steps');
    expect(readTraceHeader(plain)).toEqual(['boot-trace capture (engine kvm)', 'mode: step', 'clock: steps (as capture writes it)']);
    const gz = join(work, 'trace.log.gz');
    writeFileSync(gz, gzipSync(readFileSync(plain)));
    expect(traceClock(gz).kind).toBe('instructions');
    expect(traceClock(sample('stacks', 'capture', 'trace.log')).kind).toBe('host-stepping');
    expect(traceClock(sample('2016-init-module.log')).kind).toBe('unspecified');
    expect(readTraceHeader(join(work, 'missing.log'))).toEqual([]);
  });
});

describe('outputs name the clock', () => {
  it('tables say "steps" and warn on stderr; a trace without a header stays in us, silently', () => {
    const steps = withHeader('steps');
    const r = runCli(['hot-functions', steps, '--format', 'table']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^function +time \(instructions\) +% +lines$/);
    expect(r.stderr).toContain(`boot-trace: ${steps}: these times are guest instruction counts (--clock instructions; capture calls it --clock steps), not time`);
    const syscalls = runCli(['first-calls', steps, '--format', 'table']);
    expect(syscalls.stdout.split('\n')[0]).toMatch(/^first \(instructions\) +function$/);
    const plain = runCli(['hot-functions', sample('stacks', 'calls-and-returns.log'), '--format', 'table']);
    expect(plain.stdout.split('\n')[0]).toMatch(/^function +time \(us\)/);
    expect(plain.stderr).toBe('');
    const stepping = runCli(['hot-functions', withHeader('host'), '--format', 'csv']);
    expect(stepping.stderr).toMatch(/host microseconds while single-stepping: .* not boot time/);
  });

  it('summary says what the times are', () => {
    const r = runCli(['summary', withHeader('steps')]);
    expect(r.stdout.split('\n')[1]).toBe('Times: guest instructions (the timestamp is the exact count of guest instructions executed).');
    expect(r.stdout.split('\n')[2]).toMatch(/^Note: these times are guest instruction counts/);
    const json = JSON.parse(runCli(['summary', withHeader('host'), '--format', 'json']).stdout) as { clock: { kind: string; unit: string; warning: string } };
    expect(json.clock).toMatchObject({ kind: 'host-stepping', unit: 'us' });
    const capture = runCli(['summary', sample('stacks', 'capture')]);
    expect(capture.stdout).toMatch(/\nTimes\n {2}console: host microseconds while single-stepping the guest\n {2}trace: host microseconds while single-stepping the guest\n {2}note: these are host microseconds while single-stepping/);
  });

  it('speedscope gets unit "none" for steps and a name that says so; Chrome says it in otherData', () => {
    const steps = withHeader('steps');
    const ss = join(work, 'steps.speedscope.json');
    expect(runCli(['export', steps, '--to', 'speedscope', '-o', ss]).status).toBe(0);
    const doc = JSON.parse(readFileSync(ss, 'utf8')) as { profiles: Array<{ unit: string; name: string }> };
    expect(doc.profiles[0]).toMatchObject({ unit: 'none', name: `${basename(steps)} (guest instructions, not time)` });
    const chrome = join(work, 'steps.chrome.json');
    expect(runCli(['export', steps, '--to', 'chrome', '-o', chrome]).status).toBe(0);
    const c = JSON.parse(readFileSync(chrome, 'utf8')) as { displayTimeUnit: string; otherData: { clock: string; unit: string } };
    expect(c.displayTimeUnit).toBe('ms');
    expect(c.otherData).toMatchObject({ clock: 'instructions', unit: 'ts and dur count guest instructions, not microseconds' });
    const host = join(work, 'host.speedscope.json');
    expect(runCli(['export', withHeader('host'), '--to', 'speedscope', '-o', host]).status).toBe(0);
    expect((JSON.parse(readFileSync(host, 'utf8')) as { profiles: Array<{ unit: string; name: string }> }).profiles[0]).toMatchObject({ unit: 'microseconds', name: expect.stringMatching(/\(host time while single-stepping, not boot time\)$/) });
  });

  it('the report draws a steps trace against instruction counts and says its times are not boot time', () => {
    const html = join(work, 'steps.html');
    expect(runCli(['report', withHeader('steps'), '-o', html]).status).toBe(0);
    const text = readFileSync(html, 'utf8');
    expect(text).toContain('Trace times are guest instructions (the timestamp is the exact count of guest instructions executed).');
    expect(text).toContain('<p class="warn"><b>Not boot time:</b> these times are guest instruction counts');
    expect(text).toContain('<h2>Hot functions (self time, guest instructions)</h2>');
    expect(text).toMatch(/data-unit="steps"/);
  });
});

describeNeeds(firstMissing(kvmMissing(), CHROMIUM ? null : NO_CHROMIUM), 'a --clock steps capture in speedscope', () => {
  it('the demo guest stepped on the instruction clock loads as plain counts', () => {
    const dir = join(work, 'demo-steps');
    const c = runCli(['capture', '--guest', 'demo', '--mode', 'step', '--clock', 'steps', '--no-summary', '--out', dir], { timeoutMs: 150_000 });
    expect(c.status, c.stderr).toBe(0);
    const file = join(dir, 'export.json');
    expect(runCli(['export', dir, '--to', 'speedscope', '-o', file]).status).toBe(0);
    const js = `${file}.load.js`;
    writeFileSync(js, `speedscope.loadFileFromBase64(${JSON.stringify(basename(file))}, ${JSON.stringify(readFileSync(file).toString('base64'))})`);
    const page = loadPage(`${pathToFileURL(join(ROOT, 'node_modules', 'speedscope', 'dist', 'release', 'index.html')).href}#localProfilePath=${js}&view=sandwich`);
    expect(page.dom).toContain('<title>trace.log (guest instructions, not time) - speedscope</title>');
    const cells = [...page.dom.matchAll(/<tr[^>]*><td[^>]*>([^<]*)<div/g)].map((m) => m[1]!);
    expect(cells.length).toBeGreaterThan(5);
    // Counts, not times: "43.71K (71%)", never "ms" or "µs".
    for (const cell of cells) expect(cell).not.toMatch(/[mµ]s|\bs\b/);
    expect(page.console.filter((l) => /Tried to end|Error/.test(l))).toEqual([]);
  }, 200_000);
});
