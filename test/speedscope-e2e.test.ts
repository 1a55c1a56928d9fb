/**
 * Every export (chrome, speedscope, collapsed) loaded into speedscope's own release (the npm package's
 * dist/release, a dev dependency) in headless Chromium, from two real captures made into a temporary folder:
 *   - the Debian cloud kernel under the KVM engine, 200,000 single steps from start_kernel;
 *   - the demo guest (samples/guest), single-stepped from its first instruction.
 * Speedscope must import each file without an error ("Something went wrong" on the page, "Tried to end ..."
 * on the console) and its sandwich view must list the functions our own call stacks say are hottest, with
 * the same share. The Chrome export is also checked the way viewers compute: every call's ts + dur in
 * float64 ends within its caller's.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CallStacks } from '../analyzers/call-stacks.js';
import { readTrace } from '../src/trace/reader.js';
import { CHROMIUM, NO_CHROMIUM, loadPage } from './browser.js';
import { kvmMissing } from './capture-helpers.js';
import { defaultKernelMissing } from './preconditions.js';
import { ROOT, runCli, sample } from './helpers.js';

const RELEASE = join(ROOT, 'node_modules', 'speedscope', 'dist', 'release', 'index.html');
const noSpeedscope = existsSync(RELEASE) ? null : 'speedscope not installed (npm ci installs the dev dependency)';
const noKvm = kvmMissing();
const noKernel = defaultKernelMissing();

const work = mkdtempSync(join(tmpdir(), 'boot-trace-speedscope-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A capture into the temporary folder; throws with the CLI's stderr when it fails. */
function capture(name: string, args: string[]): string {
  const dir = join(work, name);
  const r = runCli(['capture', '--out', dir, '--no-summary', ...args], { timeoutMs: 280_000 });
  if (r.status !== 0) throw new Error(`capture ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return dir;
}

/** Self time per function from our own rebuilt stacks, largest first, with its share of the whole. */
async function hottest(trace: string): Promise<Array<{ name: string; self: number; percent: number }>> {
  let stacks: CallStacks | undefined;
  const r = await readTrace(trace, (functions) => (stacks = new CallStacks(functions)), { warn: () => {} });
  stacks!.finish();
  const self = new Map<string, number>();
  let total = 0;
  for (let n = 1; n < stacks!.trie.size; n++) {
    const name = r.functions.names[stacks!.trie.fn[n]!]!;
    self.set(name, (self.get(name) ?? 0) + stacks!.trie.self[n]!);
    total += stacks!.trie.self[n]!;
  }
  return [...self].map(([name, s]) => ({ name, self: s, percent: (100 * s) / total })).sort((a, b) => b.self - a.self);
}

interface Row { total: string; self: string; selfPercent: number; name: string }

/** The rows speedscope's sandwich view rendered (a virtual list: the first screenful, sorted by self time). */
function sandwichRows(dom: string): Row[] {
  const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  const rows: Row[] = [];
  for (const m of dom.matchAll(/<tr[^>]*><td[^>]*>([^<]*)<div[\s\S]*?<\/td><td[^>]*>([^<]*)<div[\s\S]*?<\/td><td[^>]*><span[^>]*><\/span>([^<]*)<\/td><\/tr>/g)) {
    rows.push({ total: m[1]!, self: m[2]!, selfPercent: Number(/\((\d+)%\)/.exec(m[2]!)?.[1] ?? NaN), name: unescape(m[3]!) });
  }
  return rows;
}

/** Loads `file` into speedscope the way its own CLI does (a script calling loadFileFromBase64), sandwich view. */
function openInSpeedscope(file: string): { rows: Row[]; dom: string; console: string[] } {
  const js = `${file}.load.js`;
  writeFileSync(js, `speedscope.loadFileFromBase64(${JSON.stringify(basename(file))}, ${JSON.stringify(readFileSync(file).toString('base64'))})`);
  const page = loadPage(`${pathToFileURL(RELEASE).href}#localProfilePath=${js}&view=sandwich`);
  return { ...page, rows: sandwichRows(page.dom) };
}

/** Calls of the Chrome export (tid 1) that end after their caller when ts + dur is computed in float64. */
function float64Overhangs(chrome: string): { calls: number; overhangs: number } {
  const doc = JSON.parse(chrome) as { traceEvents: Array<{ ph: string; ts: number; dur: number; pid: number; tid: number }> };
  const calls = doc.traceEvents.filter((e) => e.ph === 'X' && e.pid === 1 && e.tid === 1).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const ends: number[] = [];
  let overhangs = 0;
  for (const e of calls) {
    while (ends.length > 0 && ends.at(-1)! <= e.ts) ends.pop();
    const end = e.ts + e.dur; // what a viewer computes
    if (ends.length > 0 && end > ends.at(-1)!) overhangs++;
    ends.push(end);
  }
  return { calls: calls.length, overhangs };
}

async function checkAllExports(dir: string, expectHot: number): Promise<void> {
  const trace = join(dir, 'trace.log');
  const hot = await hottest(trace);
  for (const to of ['chrome', 'speedscope', 'collapsed'] as const) {
    const file = join(dir, `export.${to === 'collapsed' ? 'txt' : 'json'}`);
    const r = runCli(['export', dir, '--to', to, '-o', file], { timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    if (to === 'chrome') {
      const { calls, overhangs } = float64Overhangs(readFileSync(file, 'utf8'));
      expect(calls).toBeGreaterThan(100);
      expect(overhangs, 'calls ending after their caller in float64').toBe(0);
    }
    const page = openInSpeedscope(file);
    expect(page.dom.includes('Something went wrong'), `${to}: speedscope's import error`).toBe(false);
    expect(page.console.filter((l) => /Tried to end|Error|Uncaught/.test(l)), `${to}: console errors`).toEqual([]);
    // Speedscope names the page after the profile: the file, or the profile name the speedscope export gives.
    expect(/<title>([^<]+) - speedscope<\/title>/.exec(page.dom)?.[1], to).toMatch(to === 'speedscope' ? /^trace\.log \(host time while single-stepping, not boot time\)$/ : new RegExp(`^${basename(file).replace('.', '\\.')}$`));
    // The hottest functions by self time, as our stacks have them, head speedscope's list.
    expect(page.rows.length, `${to}: sandwich rows`).toBeGreaterThanOrEqual(Math.min(10, hot.length));
    const shown = page.rows.slice(0, 12).map((row) => row.name);
    for (const h of hot.slice(0, expectHot)) expect(shown, `${to}: ${h.name} among speedscope's hottest`).toContain(h.name);
    expect(page.rows[0]!.name).toBe(hot[0]!.name);
    expect(Math.abs(page.rows[0]!.selfPercent - hot[0]!.percent), `${to}: ${page.rows[0]!.self}`).toBeLessThanOrEqual(1);
    // Folded thunks are no frames of their own.
    expect(shown.filter((n) => /thunk/.test(n))).toEqual([]);
  }
}

describe("exports in speedscope's own release (headless Chromium)", () => {
  it('a capture with stages and host phases of no length: two BOOT_TIME markers stamped at once, phases of 0 us', (ctx) => {
    const missing = (CHROMIUM ? null : NO_CHROMIUM) ?? noSpeedscope;
    if (missing) ctx.skip(missing);
    // The host stamps lines as it reads them from the serial port: two read in one go share a stamp (seen on
    // a whole boot under load: ready and workload_done). The stage between them has no length, nor have the
    // sample's rootfs_load and boot_params phases.
    const dir = join(work, 'same-stamp');
    cpSync(sample('stacks', 'capture'), dir, { recursive: true });
    const consoleLog = join(dir, 'console.log');
    writeFileSync(consoleLog, readFileSync(consoleLog, 'utf8') + '2590.0 BOOT_TIME:workload_done:2200000\n');
    const file = join(dir, 'export.json');
    const r = runCli(['export', dir, '--to', 'chrome', '-o', file]);
    expect(r.status, r.stderr).toBe(0);
    const events = (JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: Array<{ cat?: string; name: string; ph: string }> }).traceEvents;
    expect(events.filter((e) => e.cat === 'marker').map((e) => e.name)).toContain('workload_done');
    const page = openInSpeedscope(file);
    expect(page.dom.includes('Something went wrong')).toBe(false);
    expect(page.console.filter((l) => /Tried to end|Error|Uncaught/.test(l))).toEqual([]);
  });

  it('a 200,000-step KVM window of the Debian cloud kernel from start_kernel', async (ctx) => {
    const missing = (CHROMIUM ? null : NO_CHROMIUM) ?? noSpeedscope ?? noKvm ?? noKernel;
    if (missing) ctx.skip(missing);
    const dir = capture('kernel-window', ['--engine', 'kvm', '--mode', 'step', '--trace-from', 'start_kernel', '--max-steps', '200000', '--timeout', '240']);
    const lines = readFileSync(join(dir, 'trace.log'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines.length).toBe(200_000);
    await checkAllExports(dir, 5);
    // The report of the same window says what was measured and that its times are stepping time; an empty
    // console gives no "0.00 us to the last console line" card.
    const html = join(dir, 'report.html');
    expect(runCli(['report', dir, '-o', html], { timeoutMs: 120_000 }).status).toBe(0);
    const text = readFileSync(html, 'utf8');
    expect(text).toMatch(/Measured: vmlinu[xz][^ ]* single-stepped under boot-trace&#39;s KVM VMM; 200,000 instructions traced from start_kernel; ended by max-steps at 0xffffffff[0-9a-f]+ \([^)]+\): --max-steps 200000 reached\. Trace times are host microseconds while single-stepping the guest\./);
    expect(text).toContain('<p class="warn"><b>Not boot time:</b>');
    expect(text).not.toContain('to the last console line');
  }, 600_000);

  it('the demo guest, single-stepped under KVM', async (ctx) => {
    const missing = (CHROMIUM ? null : NO_CHROMIUM) ?? noSpeedscope ?? noKvm;
    if (missing) ctx.skip(missing);
    const dir = capture('demo', ['--guest', 'demo', '--mode', 'step', '--timeout', '120']);
    await checkAllExports(dir, 3);
  }, 400_000);
});
