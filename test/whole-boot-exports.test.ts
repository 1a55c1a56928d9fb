/**
 * Exports and call stacks of a real whole boot: the default Debian cloud kernel and appliance recorded by
 * the QEMU plugin engine (`capture --engine qemu --mode trace`, function granularity, ~26 M records).
 *   - The speedscope and Chrome exports stay well under V8's ~512 M-character string limit (200 MB here;
 *     evented they were 1.1 and 1.2 GB) and load into speedscope's own release in headless Chromium with
 *     no import error, the hottest function of `hot-functions` on top.
 *   - Call stacks follow task switches (docs/call-stacks.md, "Task switches"): no stack runs through
 *     __switch_to_asm into another task, depths stay far below 100.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { CallStacks } from '../analyzers/call-stacks.js';
import { readTrace } from '../src/trace/reader.js';
import { CHROMIUM, NO_CHROMIUM, loadPage } from './browser.js';
import { ROOT, runCli } from './helpers.js';
import { busyboxMissing, commandMissing, defaultKernelMissing, firstMissing, qemuMissing } from './preconditions.js';

const RELEASE = join(ROOT, 'node_modules', 'speedscope', 'dist', 'release', 'index.html');
const noSpeedscope = existsSync(RELEASE) ? null : 'speedscope not installed (npm ci installs the dev dependency)';
const noBoot = firstMissing(qemuMissing(), commandMissing('cc', 'gcc'), defaultKernelMissing(), busyboxMissing());
/** What a browser viewer can read: well under V8's ~512 M-character strings. */
const LIMIT = 200 * 1024 * 1024;

const work = mkdtempSync(join(tmpdir(), 'boot-trace-wholeboot-exports-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let dir: string | undefined;
/** One whole-boot capture shared by the tests (made by the first that needs it). */
function boot(): string {
  if (dir) return dir;
  const d = join(work, 'boot');
  const r = runCli(['capture', '--engine', 'qemu', '--mode', 'trace', '--out', d, '--no-summary'], { timeoutMs: 280_000 });
  if (r.status !== 0) throw new Error(`capture exited ${r.status}: ${r.stderr}`);
  return (dir = d);
}

/** hot-functions' rows: function and percent, hottest first. */
function hotFunctions(d: string, top?: number): Array<{ name: string; percent: number }> {
  const r = runCli(['hot-functions', d, ...(top !== undefined ? ['--top', String(top)] : [])], { timeoutMs: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').slice(1).map((l) => {
    const f = l.split(',');
    return { name: f[0]!, percent: Number(f[2]) };
  });
}

interface Row { self: string; selfPercent: number; name: string }
function sandwichRows(dom: string): Row[] {
  const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  const rows: Row[] = [];
  for (const m of dom.matchAll(/<tr[^>]*><td[^>]*>([^<]*)<div[\s\S]*?<\/td><td[^>]*>([^<]*)<div[\s\S]*?<\/td><td[^>]*><span[^>]*><\/span>([^<]*)<\/td><\/tr>/g)) {
    rows.push({ self: m[2]!, selfPercent: Number(/\(([\d.]+)%\)/.exec(m[2]!)?.[1] ?? NaN), name: unescape(m[3]!) });
  }
  return rows;
}

function openInSpeedscope(file: string): { rows: Row[]; dom: string; console: string[] } {
  const js = `${file}.load.js`;
  writeFileSync(js, `speedscope.loadFileFromBase64(${JSON.stringify(basename(file))}, ${JSON.stringify(readFileSync(file).toString('base64'))})`);
  const page = loadPage(`${pathToFileURL(RELEASE).href}#localProfilePath=${js}&view=sandwich`, 120_000);
  rmSync(js);
  return { ...page, rows: sandwichRows(page.dom) };
}

it('speedscope and Chrome exports of a whole boot stay under 200 MB and load in speedscope', (ctx) => {
  const missing = noBoot ?? (CHROMIUM ? null : NO_CHROMIUM) ?? noSpeedscope;
  if (missing) ctx.skip(missing);
  const d = boot();
  const hot = hotFunctions(d);
  for (const to of ['speedscope', 'chrome'] as const) {
    // Not "*.chrome.json": speedscope reads a file so named as a Chrome CPU-profile timeline and fails.
    const file = join(work, `boot-${to}.json`);
    const r = runCli(['export', d, '--to', to, '-o', file], { timeoutMs: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    const size = statSync(file).size;
    expect(size, `${to}: ${size} bytes`).toBeLessThan(LIMIT);
    const head = readFileSync(file, 'utf8').slice(0, 600);
    if (to === 'speedscope') {
      // The file says what it holds: a sampled profile with identical stacks merged.
      expect(head).toContain('"type":"sampled"');
      expect(head).toContain('identical stacks merged');
    } else {
      // The floor is in the file and a one-line note on stderr says how many calls it left out.
      const floor = Number(/"min_dur_us":([\d.]+)/.exec(head)?.[1]);
      expect(floor).toBeGreaterThan(0);
      expect(r.stderr).toMatch(new RegExp(`chrome: \\d+ calls shorter than ${floor} us left out`));
    }
    const page = openInSpeedscope(file);
    expect(page.dom.includes('Something went wrong'), `${to}: speedscope's import error: ${page.console.filter((l) => /rror|Tried/.test(l)).slice(0, 3).join(' | ')}`).toBe(false);
    expect(page.console.filter((l) => /Tried to end|Error|Uncaught/.test(l)), `${to}: console errors`).toEqual([]);
    expect(page.rows.length, `${to}: sandwich rows`).toBeGreaterThanOrEqual(10);
    const shown = page.rows.slice(0, 12).map((row) => row.name);
    if (to === 'speedscope') {
      // The sampled profile keeps every self time: hot-functions' hottest heads speedscope's list with the same share.
      expect(page.rows[0]!.name, to).toBe(hot[0]!.name);
      expect(Math.abs(page.rows[0]!.selfPercent - hot[0]!.percent), `${to}: ${page.rows[0]!.self}`).toBeLessThanOrEqual(1);
      for (const h of hot.slice(0, 3)) expect(shown, `${to}: ${h.name} among speedscope's hottest`).toContain(h.name);
    } else {
      // The Chrome file leaves calls under its floor out and their time becomes their callers' self time, so its
      // ranking is its own (many short calls of a leaf such as mpihelp_submul_1 go to their caller; a caller of
      // many short calls such as apply_returns can lead). What it shows must still be the recording's functions.
      const all = new Set(hotFunctions(d, 0).map((h) => h.name));
      for (const name of shown) expect(all.has(name), `${to}: ${name} is a function of the recording`).toBe(true);
    }
  }
}, 900_000);

it('call stacks of a whole boot follow task switches', async (ctx) => {
  if (noBoot) ctx.skip(noBoot);
  const d = boot();
  const file = join(work, 'boot.collapsed');
  expect(runCli(['export', d, '--to', 'collapsed', '-o', file], { timeoutMs: 240_000 }).status).toBe(0);
  const stacks = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.slice(0, l.lastIndexOf(' ')).split(';'));
  expect(stacks.length).toBeGreaterThan(10_000);
  const depth = stacks.reduce((m, s) => Math.max(m, s.length), 0);
  expect(depth).toBeLessThan(100); // 202 before switches were followed
  // No task's stack continues through the switch code into another task's frames.
  const through = stacks.filter((s) => {
    const i = s.indexOf('__switch_to_asm');
    return i >= 0 && (s.indexOf('__switch_to_asm', i + 1) >= 0 || s.slice(i).some((f) => f === 'ret_from_fork' || f === '__schedule'));
  });
  expect(through.slice(0, 3)).toEqual([]);
  // Every switch either starts a new task or resumes a parked stack; most resume one (measured: 91.7% of 987
  // switches under QEMU 7.2, 89.5% of 973 under QEMU 10; the rest are tasks parked before recording began).
  let cs: CallStacks | undefined;
  await readTrace(d, (functions) => (cs = new CallStacks(functions)), { warn: () => {} });
  cs!.finish();
  const c = cs!.counts;
  expect(c.switches).toBeGreaterThan(100);
  expect(c.newTasks).toBeGreaterThan(10);
  expect(c.resumed + c.newTasks).toBeGreaterThan(0.85 * c.switches);
  // start_kernel's callees are no longer dominated by every task nested under rest_init.
  const callees = runCli(['callees', d, 'start_kernel', '--depth', '1'], { timeoutMs: 120_000 });
  expect(callees.status, callees.stderr).toBe(0);
  // CSV: function,depth,calls,time_us,percent (it had 73% when every task nested under rest_init).
  const rest = callees.stdout.split('\n').find((l) => l.startsWith('arch_call_rest_init,'));
  expect(rest, callees.stdout.slice(0, 2000)).toBeDefined();
  expect(Number(rest!.split(',')[4])).toBeLessThan(50);
}, 900_000);
