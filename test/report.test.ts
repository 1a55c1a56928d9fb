/**
 * The HTML boot report: built from the sample capture (samples/stacks/capture) it is one self-contained
 * file with a timeline, a flame graph and tables; rendered in headless Chromium (Debian's `chromium`) from
 * a real capture of the demo guest when /dev/kvm works (else the sample), its DOM has that content and a
 * screenshot lands in test-output/report.png.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gatherReport } from '../src/report/data.js';
import { renderReport } from '../src/report/html.js';
import { kvmMissing } from './capture-helpers.js';
import { ROOT, runCli, sample, testOutput } from './helpers.js';
import { describeNeeds } from './preconditions.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function chromium(args: string[]): string {
  const profile = mkdtempSync(join(tmpdir(), 'boot-trace-chromium-'));
  try {
    const r = spawnSync(CHROMIUM!, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--window-size=1400,1000', ...args,
    ], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`chromium exited ${r.status}: ${r.stderr.slice(-2000)}`);
    return r.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

describe('report (HTML)', () => {
  it('puts a timeline, a flame graph and the tables of the sample capture in one self-contained file', async () => {
    const html = renderReport(await gatherReport(sample('stacks', 'capture')));
    // Nothing is fetched: one inline script (zoom and search), no stylesheets or images by URL.
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toMatch(/<script type="text\/javascript">\/\/<!\[CDATA\[/);
    expect(html).not.toMatch(/<link|<img|src=|url\((?!#)/i);
    expect(html.match(/https?:\/\/[^"'\s<]+/g)!.every((u) => u === 'http://www.w3.org/2000/svg')).toBe(true);
    // Timeline lanes, each with its items, and hover titles.
    for (const lane of ['VMM phases', 'stages', 'console markers', 'initcalls', 'single-step trace', 'system calls', 'first calls']) {
      expect(html).toContain(`font-weight="600" fill="#333">${lane}</text>`);
    }
    // Initcall spans are paired by the initcalls analyzer: from the host stamp of `calling` for the kernel's own
    // 240 usecs (before: to the host stamp of the `returned` line, 250 us, which adds the serial line's own time).
    expect(html).toMatch(/<title>serial8250_init\n1\.23 ms - 1\.47 ms \(240 us\)/);
    expect(html).toMatch(/<title>start_kernel\nat 1\.02 ms/);
    // The flame graph has the rebuilt stacks; tables have rows.
    expect(html).toMatch(/<g class="fr" [^>]*><title>ext4_init_fs\n190 us \([\d.]+%\), 1 call\nstartup_64 &gt; start_kernel &gt; do_one_initcall &gt; ext4_init_fs<\/title>/);
    expect(html).toContain('<h2>Hot functions (self time, host us while stepping)</h2>');
    // What was measured, and that a step capture's times are not boot time.
    expect(html).toMatch(/<p class="what" id="measured">Measured: sample single-stepped under boot-trace&#39;s KVM VMM; \d+ instructions traced from its first instruction; ended by [^<]*\. Trace times are host microseconds while single-stepping the guest; console times are host microseconds while single-stepping the guest\.<\/p>/);
    expect(html).toContain('<p class="warn"><b>Not boot time:</b> these are host microseconds while single-stepping');
    expect(html).toMatch(/<td class="f">serial8250_init<\/td>/);
    expect(html).toMatch(/<td class="f">write<\/td><td class="n">1<\/td>/);
    expect(html).toContain('UART cost');
  });

  it('reports a trace alone, and names what is missing in one line', () => {
    const dir = testOutput('report');
    const out = join(dir, 'init-module.html');
    const r = runCli(['report', sample('2016-init-module.log'), '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('sys_init_module');
    expect(html).not.toContain('VMM phases');
    const bad = runCli(['report', sample('symbols'), '-o', join(dir, 'none.html')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/nothing to report/);
  });
});

describeNeeds(CHROMIUM ? null : 'no chromium (apt-get install chromium)', 'report.html in headless Chromium', () => {
  it('renders the timeline and tables with content, and saves a screenshot', () => {
    const dir = testOutput('report');
    // A real capture of the demo guest where /dev/kvm works; the sample capture (a real one, kept in
    // samples/) where it does not.
    let capture = sample('stacks', 'capture');
    if (!kvmMissing()) {
      capture = join(dir, 'demo-capture');
      rmSync(capture, { recursive: true, force: true });
      const c = runCli(['capture', '--guest', 'demo', '--mode', 'step', '--out', capture, '--timeout', '120'], { timeoutMs: 200_000 });
      expect(c.status, c.stderr).toBe(0);
    }
    const html = join(dir, 'report.html');
    const r = runCli(['report', capture, '-o', html]);
    expect(r.status, r.stderr).toBe(0);

    const dom = chromium(['--dump-dom', pathToFileURL(html).href]);
    const timeline = /<svg[^>]*class="timeline"[\s\S]*?<\/svg>/.exec(dom)?.[0] ?? '';
    expect(timeline.match(/<rect /g)?.length ?? 0).toBeGreaterThan(5);
    expect(timeline).toContain('first calls');
    const flame = /<svg[^>]*class="flame"[\s\S]*?<\/svg>/.exec(dom)?.[0] ?? '';
    expect(flame.match(/<g class="fr" [^>]*><title>/g)?.length ?? 0).toBeGreaterThan(3);
    const tables = dom.match(/<table>[\s\S]*?<\/table>/g) ?? [];
    expect(tables.length).toBeGreaterThanOrEqual(3);
    for (const t of tables) expect(t.match(/<tr>/g)!.length).toBeGreaterThan(1);
    if (capture !== sample('stacks', 'capture')) {
      for (const name of ['work_medium', 'work_nested', 'BOOT_TIME:ready', 'boot_wait']) expect(dom).toContain(name);
    }

    const png = join(ROOT, 'test-output', 'report.png');
    rmSync(png, { force: true });
    chromium([`--screenshot=${png}`, pathToFileURL(html).href]);
    expect(statSync(png).size).toBeGreaterThan(20_000);
    expect(readFileSync(png).subarray(1, 4).toString('latin1')).toBe('PNG');
  });
});

describe('flamegraph (SVG)', () => {
  it('draws one box per stack, as wide as its inclusive time, with hover titles', () => {
    const out = join(testOutput('report'), 'calls-and-returns.svg');
    const r = runCli(['flamegraph', sample('stacks', 'calls-and-returns.log'), '-o', out, '--width', '1020']);
    expect(r.status, r.stderr).toBe(0);
    const svg = readFileSync(out, 'utf8');
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    const boxes = [...svg.matchAll(/<g class="fr" [^>]*><title>([^\n<]+)\n[^<]*<\/title><rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"/g)]
      .map((m) => ({ name: m[1]!, x: Number(m[2]), y: Number(m[3]), w: Number(m[4]) }));
    expect(boxes.map((b) => b.name)).toEqual(['start_kernel', 'mm_init', 'setup_arch', 'memblock_add']);
    const w = Object.fromEntries(boxes.map((b) => [b.name, b.w]));
    // 1000 px of inner width for 20 us: 50 px per us.
    expect(w).toEqual({ start_kernel: 1000, mm_init: 250, setup_arch: 400, memblock_add: 150 });
    // Flame: callees above (smaller y) their callers; memblock_add sits on setup_arch's left edge.
    const by = Object.fromEntries(boxes.map((b) => [b.name, b]));
    expect(by.setup_arch!.y).toBeLessThan(by.start_kernel!.y);
    expect(by.memblock_add!.x).toBe(by.setup_arch!.x);
    expect(svg).toContain('<title>setup_arch\n8.00 us (40.00%), 1 call\nstart_kernel &gt; setup_arch</title>');
  });
});
