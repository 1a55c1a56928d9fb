/**
 * Outputs at real scale, on traces generated into a temporary folder:
 *   - 300,000 system calls: summary, syscalls (table, summary), report and the Chrome export finish, with
 *     every row table bounded by --top (they died with "Maximum call stack size exceeded" when per-row
 *     arrays were spread into Math.min/max);
 *   - 1,000,000 distinct call stacks (100 x 100 x 100 functions): the three exports, flamegraph, report,
 *     callees and hot-functions --inclusive finish and say what they should.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'boot-trace-scale-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SYSCALLS = 300_000;
const NAMES = ['getpid', 'write', 'read'];

/** User code, the syscall entry, the handler: one call per three lines, 1 us each. */
function syscallTrace(): string {
  const file = join(work, 'syscalls.log');
  const parts: string[] = [];
  let t = 0;
  for (let i = 0; i < SYSCALLS; i++) parts.push(`${t++} 400a14\n${t++} entry_SYSCALL_64\n${t++} __x64_sys_${NAMES[i % 3]}\n`);
  parts.push(`${t} 400a14\n`);
  writeFileSync(file, parts.join(''));
  return file;
}

/** start_kernel > sa<i> > sb<j> > sc<k> for 100 x 100 x 100: a million distinct stacks (names that are not hex). */
function stacksTrace(): string {
  const file = join(work, 'stacks.log');
  const parts: string[] = [];
  let t = 0;
  parts.push(`${t++} start_kernel\n`);
  for (let a = 0; a < 100; a++) {
    parts.push(`${t++} sa${a}\n`);
    for (let b = 0; b < 100; b++) {
      let s = `${t++} sb${b}\n`;
      for (let c = 0; c < 100; c++) s += `${t++} sc${c}\n${t++} sb${b} + 1\n`;
      parts.push(s + `${t++} sa${a} + 1\n`);
    }
    parts.push(`${t++} start_kernel + 1\n`);
  }
  writeFileSync(file, parts.join(''));
  return file;
}

const ok = (args: string[]): string => {
  const r = runCli(args, { timeoutMs: 120_000 });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
};

describe('300,000 system calls', () => {
  const trace = syscallTrace();

  it('summary bounds every table by --top and names the total', () => {
    const out = ok(['summary', trace, '--top', '2']);
    const sections = out.split('\n\n');
    expect(sections[0]).toContain('900,001 events');
    const sys = sections.find((s) => s.startsWith('System calls'))!;
    expect(sys.split('\n')[0]).toBe('System calls (300,000 in all, per call, most total time first)');
    expect(sys.trim().split('\n')).toHaveLength(1 + 1 + 2); // title, header, --top 2 rows
    for (const s of sections.filter((x) => /^(Hottest|First)/.test(x))) expect(s.trim().split('\n')).toHaveLength(4);
    const json = JSON.parse(ok(['summary', trace, '--top', '0', '--format', 'json'])) as { syscalls: Array<{ syscall: string; count: number }>; syscalls_total: number };
    expect(json.syscalls_total).toBe(SYSCALLS);
    expect(json.syscalls.map((s) => [s.syscall, s.count])).toEqual([['getpid', 100_000], ['read', 100_000], ['write', 100_000]]);
  }, 120_000);

  it('syscalls --format table prints all 300,000 calls (and --top bounds them)', async () => {
    const out = join(work, 'syscalls.txt');
    const r = runCli(['syscalls', trace, '--format', 'table'], { timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    writeFileSync(out, r.stdout);
    let lines = 0;
    for await (const _ of createInterface({ input: createReadStream(out) })) lines++;
    expect(lines).toBe(1 + SYSCALLS);
    expect(ok(['syscalls', trace, '--format', 'table', '--top', '5']).trimEnd().split('\n')).toHaveLength(6);
    expect(ok(['syscalls', trace, '--summary', '--format', 'table']).trimEnd().split('\n')).toHaveLength(4);
  }, 120_000);

  it('report and the Chrome export finish, with the calls on the timeline and in the file', () => {
    const html = join(work, 'syscalls.html');
    ok(['report', trace, '-o', html]);
    const text = readFileSync(html, 'utf8');
    expect(text).toContain('system calls</text>');
    expect(text).toMatch(/<td class="f">getpid<\/td><td class="n">100,000<\/td>/);
    const chrome = join(work, 'syscalls.json');
    ok(['export', trace, '--to', 'chrome', '-o', chrome]);
    const doc = JSON.parse(readFileSync(chrome, 'utf8')) as { traceEvents: Array<{ cat?: string }> };
    expect(doc.traceEvents.filter((e) => e.cat === 'syscall')).toHaveLength(SYSCALLS);
  }, 120_000);
});

describe('1,000,000 distinct call stacks', () => {
  const trace = stacksTrace();

  it('exports collapsed, speedscope and Chrome files with every stack', () => {
    const collapsed = join(work, 'stacks.txt');
    ok(['export', trace, '--to', 'collapsed', '-o', collapsed]);
    const lines = readFileSync(collapsed, 'latin1').trimEnd().split('\n');
    // Every leaf stack has 1 us of self time; the sa/sb frames have their own lines too.
    expect(lines.filter((l) => /^start_kernel;sa\d+;sb\d+;sc\d+ 1$/.test(l))).toHaveLength(1_000_000);
    const speedscope = join(work, 'stacks.speedscope.json');
    ok(['export', trace, '--to', 'speedscope', '-o', speedscope]);
    const ss = JSON.parse(readFileSync(speedscope, 'utf8')) as { profiles: Array<{ events: unknown[] }>; shared: { frames: unknown[] } };
    expect(ss.shared.frames).toHaveLength(1 + 100 + 100 + 100);
    expect(ss.profiles[0]!.events).toHaveLength(2 * (1 + 100 + 100 * 100 + 1_000_000));
    const chrome = join(work, 'stacks.chrome.json');
    ok(['export', trace, '--to', 'chrome', '-o', chrome]);
    const doc = JSON.parse(readFileSync(chrome, 'utf8')) as { traceEvents: Array<{ cat?: string }> };
    expect(doc.traceEvents.filter((e) => e.cat === 'call')).toHaveLength(1 + 100 + 100 * 100 + 1_000_000);
  }, 180_000);

  it('flamegraph, report, callees and hot-functions --inclusive finish', () => {
    const svg = join(work, 'stacks.svg');
    ok(['flamegraph', trace, '-o', svg]);
    expect(readFileSync(svg, 'utf8')).toMatch(/<title>start_kernel\n/);
    ok(['report', trace, '-o', join(work, 'stacks.html')]);
    const callees = ok(['callees', trace, 'sa5', '--depth', '1', '--format', 'csv']).trimEnd().split('\n');
    expect(callees).toHaveLength(1 + 1 + 100);
    const hot = ok(['hot-functions', trace, '--inclusive', '--top', '3', '--format', 'csv']).trimEnd().split('\n');
    expect(hot).toHaveLength(4);
  }, 180_000);
});
