/**
 * The report for a person (issue 13 item 7), in headless Chromium where it matters:
 *   - zoom and search work in the report's flame graph and timeline and in a standalone flamegraph SVG,
 *     driven through the URL hash the script also reads (#search=, #flame=, #t=);
 *   - at 575 initcalls (a real QEMU boot of Debian's cloud kernel with initcall_debug) the longest have
 *     lanes with their names and the console markers' labels never overlap.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { CHROMIUM, NO_CHROMIUM, loadPage } from './browser.js';
import { runCli, sample } from './helpers.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const work = mkdtempSync(join(tmpdir(), 'boot-trace-report-ui-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Box { name: string; x: number; w: number; d: number; hidden: boolean; match: boolean; rectX: number; rectW: number }

/** The flame graph's boxes as the page has them after its script ran. */
function boxes(dom: string): Box[] {
  return [...dom.matchAll(/<g class="fr( match)?" data-x="([^"]*)" data-w="([^"]*)" data-d="(\d+)"(?: style="([^"]*)")?><title>([^\n<]*)[^<]*<\/title><rect x="([^"]*)" y="[^"]*" width="([^"]*)"/g)]
    .map((m) => ({ match: m[1] !== undefined, x: Number(m[2]), w: Number(m[3]), d: Number(m[4]), hidden: /display: none/.test(m[5] ?? ''), name: m[6]!, rectX: Number(m[7]), rectW: Number(m[8]) }));
}

const ok = (args: string[], timeoutMs = 120_000): void => {
  const r = runCli(args, { timeoutMs });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
};

describeNeeds(CHROMIUM ? null : NO_CHROMIUM, 'report zoom and search in headless Chromium', () => {
  it('search marks matching frames and timeline items and says what share of the time matched', () => {
    const html = join(work, 'sample.html');
    ok(['report', sample('stacks', 'capture'), '-o', html]);
    const page = loadPage(`${pathToFileURL(html).href}#search=${encodeURIComponent('^(ext4|serial8250)_init')}`, 3000);
    expect(page.console.filter((l) => /Error|Uncaught/.test(l))).toEqual([]);
    const b = boxes(page.dom);
    expect(b.filter((x) => x.match).map((x) => x.name).sort()).toEqual(['ext4_init_fs', 'serial8250_init']);
    // 150.81 + 222.25 of 1270 px: 29.4% of the traced time.
    expect(page.dom).toContain('matched: 29.4% of the time (2 frames)');
    // The initcalls lane's items for those two stay, the others fade.
    expect(page.dom).toMatch(/<g class="item match" data-s="[\d.]+" data-e="[\d.]+" data-l="serial8250_init"/);
    expect(page.dom).toMatch(/<g class="item" [^>]*data-l="ext4_init_fs[^"]*"[^>]*style="opacity: 0.25;"|<g class="item match" [^>]*data-l="ext4_init_fs"/);
  });

  it('clicking a frame (#flame=) makes it fill the width with its callees; callers stay as context, the rest hides', () => {
    const html = join(work, 'sample.html');
    ok(['report', sample('stacks', 'capture'), '-o', html]);
    const page = loadPage(`${pathToFileURL(html).href}#flame=do_one_initcall`, 3000);
    const b = Object.fromEntries(boxes(page.dom).map((x) => [x.name, x]));
    const inner = 1270, pad = 10;
    expect(b.do_one_initcall).toMatchObject({ hidden: false, rectX: pad, rectW: inner });
    // Its callees scale by 1270 / 468.31.
    expect(b.ext4_init_fs!.rectW).toBeCloseTo((150.81 * inner) / 468.31, 1);
    expect(b.serial8250_init!.rectX).toBeCloseTo(pad + (150.81 * inner) / 468.31, 1);
    expect(b.startup_64).toMatchObject({ hidden: false, rectW: inner });
    for (const other of ['setup_arch', 'run_init_process', '__x64_sys_write']) expect(b[other]!.hidden, other).toBe(true);
    expect(page.dom).toMatch(/<text class="reset ctl"[^>]*style="">reset zoom<\/text>/);
  });

  it('a time span (#t=, what dragging does) fills the timeline, with a new axis and the items outside hidden', () => {
    const html = join(work, 'sample.html');
    ok(['report', sample('stacks', 'capture'), '-o', html]);
    const page = loadPage(`${pathToFileURL(html).href}#t=1200-1500`, 3000);
    const timeline = /<svg[^>]*class="timeline"[\s\S]*?<\/svg>/.exec(page.dom)![0];
    const axis = /<g class="axis"[^>]*>([\s\S]*?)<\/g>/.exec(timeline)![1]!;
    const ticks = [...axis.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(ticks[0]).toBe('1.20 ms');
    expect(ticks.at(-1)).toBe('1.50 ms');
    // serial8250_init (from its console lines, ~1.23-1.48 ms) is placed and sized on the 300 us span of the 1106 px chart.
    const item = /<g class="item" data-s="([\d.]+)" data-e="([\d.]+)" data-l="serial8250_init" transform="translate\(([\d.]+),0\)"[^>]*><title>[^<]*<\/title><rect x="0" y="[\d.]+" width="([\d.]+)"/.exec(timeline)!;
    const [s0, e0] = [Number(item[1]), Number(item[2])];
    expect(s0).toBeGreaterThanOrEqual(1200);
    expect(e0).toBeLessThanOrEqual(1500);
    const chart = 1300 - 170 - 24;
    expect(Number(item[3])).toBeCloseTo(170 + ((s0 - 1200) / 300) * chart, 0);
    expect(Number(item[4])).toBeCloseTo(((e0 - s0) / 300) * chart, 0);
    // A VMM phase long before the span is hidden.
    expect(timeline).toMatch(/data-l="kvm_open" transform="[^"]*" style="display: none;"/);
  });

  it('a standalone flamegraph SVG zooms and searches too', () => {
    const svg = join(work, 'flame.svg');
    ok(['flamegraph', sample('stacks', 'capture'), '-o', svg]);
    expect(readFileSync(svg, 'utf8')).toMatch(/<script type="text\/javascript">\/\/<!\[CDATA\[/);
    const page = loadPage(`${pathToFileURL(svg).href}#search=syscall&flame=run_init_process`, 3000);
    const b = Object.fromEntries(boxes(page.dom).map((x) => [x.name, x]));
    expect(b.run_init_process).toMatchObject({ hidden: false, rectW: 1180 });
    // Case matters, as in a JavaScript regular expression: do_syscall_64 matches, entry_SYSCALL_64 does not.
    expect([b.do_syscall_64!.match, b.entry_SYSCALL_64!.match]).toEqual([true, false]);
    expect(b.ext4_init_fs!.hidden).toBe(true);
    expect(page.dom).toMatch(/matched: [\d.]+% of the time \(\d frames\)/);
  });
});

describeNeeds(firstMissing(qemuMissing(), defaultKernelMissing(), busyboxMissing()), 'report of a real boot with 575 initcalls (QEMU, initcall_debug)', () => {
  it('names the longest initcalls on lanes of their own and never overlaps marker labels', () => {
    const dir = join(work, 'qemu-initcalls');
    ok(['capture', '--engine', 'qemu', '--cmdline', 'console=ttyS0 panic=-1 reboot=t initcall_debug ignore_loglevel', '--out', dir, '--no-summary', '--timeout', '120'], 180_000);
    const html = join(work, 'initcalls.html');
    ok(['report', dir, '-o', html]);
    const text = readFileSync(html, 'utf8');
    // What was measured, and an exit without the registers QEMU's run mode does not have.
    expect(text).toMatch(/<p class="what" id="measured">Measured: vmlinuz-[^ ]+ run freely under QEMU \(TCG\); ended by shutdown: guest powered off [^<]*\. Console times are host microseconds since the VM \(or QEMU\) started, the guest running freely\.<\/p>/);
    expect(text).toMatch(/<td>exit<\/td><td>shutdown: guest powered off/);
    expect(text).not.toContain('? (?)');
    expect(text).not.toContain('class="warn"');
    const calls = [...readFileSync(join(dir, 'console.log'), 'utf8').matchAll(/calling {2}([^\s+]+)\+/g)].length;
    expect(calls).toBeGreaterThan(500);
    const section = /<h2>Initcalls by name \(the 30 longest of ([\d,]+), host times of their console lines\)<\/h2>[\s\S]*?<\/svg>/.exec(text)!;
    const laneNames = [...section[0].matchAll(/<text x="10" y="[\d.]+" font-weight="400" fill="#333"[^>]*>(?:<title>([^<]*)<\/title>)?([^<]*)<\/text>/g)].map((m) => m[1] ?? m[2]!);
    expect(laneNames).toHaveLength(31);
    expect(laneNames.at(-1)).toMatch(/^[\d,]+ other initcalls$/);
    // The named lanes are the 30 longest by host time: every named bar is at least as long as any other.
    const bars = [...section[0].matchAll(/<g class="item" data-s="([\d.]+)" data-e="([\d.]+)" data-l="([^"]*)"/g)].map((m) => ({ d: Number(m[2]) - Number(m[1]), l: m[3]! }));
    const named = bars.slice(0, 30), rest = bars.slice(30);
    expect(Math.min(...named.map((x) => x.d))).toBeGreaterThanOrEqual(Math.max(...rest.map((x) => x.d)));
    // Marker labels: no two drawn labels on one row overlap (6.2 px a character, as the layout assumes).
    const timeline = /<svg[^>]*class="timeline"[\s\S]*?<\/svg>/.exec(text)![0];
    const labels = [...timeline.matchAll(/<g class="item" data-s="[^"]*" data-l="[^"]*" transform="translate\(([\d.]+),0\)"><title>[^<]*<\/title><path d="M0 ([\d.]+)[^"]*"[^>]*\/><text x="(-?7)"[^>]*>([^<]*)<\/text>/g)]
      .map((m) => {
        const at = Number(m[1]), w = m[4]!.length * 6.2;
        return { row: Number(m[2]), left: m[3] === '7' ? at + 7 : at - 7 - w, right: m[3] === '7' ? at + 7 + w : at - 7, label: m[4] };
      });
    expect(labels.length).toBeGreaterThan(3);
    for (const a of labels) for (const b of labels) {
      if (a === b || a.row !== b.row) continue;
      expect(a.right <= b.left || b.right <= a.left, `${a.label} / ${b.label}`).toBe(true);
    }
  }, 200_000);
});
