/**
 * Exports validated against their formats: collapsed stacks round trip to the rebuilt stacks' self times,
 * Chrome trace events are complete and nested, speedscope events are balanced and ordered.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CallStacks } from '../analyzers/call-stacks.js';
import { HotFunctions } from '../analyzers/hot-functions.js';
import { readTrace } from '../src/trace/reader.js';
import { exportTrace, type ExportFormat } from '../src/export/run.js';
import { onGrid } from '../src/export/ticks.js';
import { runCli, sample, testOutput } from './helpers.js';

const TRACES = [
  sample('2016-trace-excerpts.log'), sample('2016-init-module.log'), sample('syscalls.log'),
  sample('stacks', 'recursion.log'), sample('stacks', 'user-syscall.log'), sample('stacks', 'capture', 'trace.log'),
];

let exported = 0;
/** Exports in-process (the CLI wrapper is tested apart) into test-output/export/ and returns the text. */
async function exportText(trace: string, to: ExportFormat, sideTracks = true): Promise<string> {
  const out = join(testOutput('export'), `out-${exported++}.${to}`);
  await exportTrace(trace, to, { output: out, sideTracks, warn: () => {} });
  return readFileSync(out, 'utf8');
}

async function rebuild(trace: string): Promise<{ stacks: CallStacks; hot: HotFunctions; names: string[] }> {
  let stacks: CallStacks | undefined;
  const hot = new HotFunctions();
  const r = await readTrace(trace, (functions) => {
    const s = (stacks = new CallStacks(functions));
    return { event: (t, fn, offset, addr) => { s.event(t, fn, offset); hot.event(t, fn); void addr; } };
  }, { warn: () => {} });
  stacks!.finish();
  return { stacks: stacks!, hot, names: r.functions.names };
}

/** Frame by frame: a stack before its callees' stacks, sibling frames by name. */
function byFrames(a: string, b: string): number {
  const x = a.split(';'), y = b.split(';');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

describe('export --to collapsed', () => {
  it('round-trips: sorted integer lines whose totals match the self times', async () => {
    for (const trace of TRACES) {
      const text = await exportText(trace, 'collapsed');
      const lines = text.trimEnd().split('\n');
      const parsed = lines.map((l) => {
        const m = /^(\S(?:.*\S)?) (\d+)$/.exec(l);
        expect(m, `${trace}: ${l}`).not.toBeNull();
        return { stack: m![1]!, value: Number(m![2]) };
      });
      expect(parsed.map((p) => p.stack), trace).toEqual([...parsed.map((p) => p.stack)].sort(byFrames));
      expect(new Set(parsed.map((p) => p.stack)).size).toBe(parsed.length);

      const { stacks, hot, names } = await rebuild(trace);
      const span = stacks.clock - stacks.start;
      // Cumulative rounding: the lines add up to the span, and each is within 1 us of its exact self time.
      expect(Math.abs(parsed.reduce((s, p) => s + p.value, 0) - span), trace).toBeLessThanOrEqual(0.5);
      const exact = new Map<string, number>();
      for (let n = 1; n < stacks.trie.size; n++) exact.set(stacks.trie.path(n).map((id) => names[id]).join(';'), stacks.trie.self[n]!);
      for (const p of parsed) expect(Math.abs(p.value - exact.get(p.stack)!), `${trace}: ${p.stack}`).toBeLessThan(1);
      // Per leaf function, the collapsed totals are hot-functions' self times (to rounding).
      const byLeaf = new Map<string, { sum: number; n: number }>();
      for (const p of parsed) {
        const leaf = p.stack.split(';').pop()!;
        const e = byLeaf.get(leaf) ?? { sum: 0, n: 0 };
        byLeaf.set(leaf, { sum: e.sum + p.value, n: e.n + 1 });
      }
      for (const row of hot.rows({ names, size: names.length } as never)) {
        const got = byLeaf.get(row.function) ?? { sum: 0, n: 0 };
        expect(Math.abs(got.sum - row.time_us), `${trace}: ${row.function}`).toBeLessThan(got.n + 1);
      }
    }
  });

  it('reads .gz and stdin, and writes the same bytes to -o FILE (CLI)', async () => {
    const trace = sample('2016-init-module.log');
    const expected = await exportText(trace, 'collapsed');
    const dir = testOutput('export');
    const gz = join(dir, 'init-module.log.gz');
    writeFileSync(gz, gzipSync(readFileSync(trace)));
    expect(await exportText(gz, 'collapsed')).toBe(expected);
    const stdin = runCli(['export', '-', '--to', 'collapsed'], { input: readFileSync(trace) });
    expect(stdin.stdout).toBe(expected);
    const out = join(dir, 'init-module.collapsed');
    expect(runCli(['export', trace, '--to', 'collapsed', '-o', out]).status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(expected);
  });

  it('fails in one line on a missing file or a folder without a trace', () => {
    const r = runCli(['export', sample('no-such.log'), '--to', 'collapsed']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const d = runCli(['export', sample('symbols'), '--to', 'chrome']);
    expect(d.status).toBe(1);
    expect(d.stderr).toMatch(/no trace\.log in this folder/);
  });
});

interface ChromeEvent { name: string; cat?: string; ph: string; ts: number; dur?: number; pid: number; tid: number; s?: string; args?: Record<string, unknown> }

describe('export --to chrome', () => {
  it('writes complete events with name/ph/ts/dur/pid/tid, nested inside their callers', async () => {
    for (const trace of TRACES) {
      const doc = JSON.parse(await exportText(trace, 'chrome')) as { traceEvents: ChromeEvent[] };
      const events = doc.traceEvents;
      const calls = events.filter((e) => e.ph === 'X' && e.cat === 'call');
      // One event per call that lasted at least one grid tick (zero-length calls have no width).
      let timed = 0;
      let stacks: CallStacks | undefined;
      await readTrace(trace, (functions) => (stacks = new CallStacks(functions, { listener: { open() {}, close(_fn, start, end) { if (onGrid(end) > onGrid(start)) timed++; } } })), { warn: () => {} });
      stacks!.finish();
      expect(calls.length, trace).toBe(timed);
      expect(calls.length, trace).toBeGreaterThan(0);
      for (const e of events.filter((x) => x.ph === 'X')) {
        expect(typeof e.name).toBe('string');
        for (const k of ['ts', 'dur', 'pid', 'tid'] as const) expect(typeof e[k], `${trace}: ${k}`).toBe('number');
        expect(e.dur!).toBeGreaterThanOrEqual(0);
      }
      // Sorted by start (longer first on ties), every call lies inside the one still open below it.
      const sorted = [...calls].sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
      const open: ChromeEvent[] = [];
      for (const e of sorted) {
        // Exactly, in float64, as a viewer adds them (src/export/ticks.ts).
        while (open.length && open.at(-1)!.ts + open.at(-1)!.dur! <= e.ts) open.pop();
        const parent = open.at(-1);
        if (parent) expect(e.ts + e.dur!, `${trace}: ${e.name} inside ${parent.name}`).toBeLessThanOrEqual(parent.ts + parent.dur!);
        open.push(e);
      }
      const meta = events.filter((e) => e.ph === 'M');
      expect(meta.some((e) => e.name === 'process_name' && e.pid === 1)).toBe(true);
      expect(meta.some((e) => e.name === 'thread_name' && e.tid === 1)).toBe(true);
    }
  });

  it('adds syscalls, stages, markers, initcalls and host phases as tracks when a capture sits beside the trace', async () => {
    const doc = JSON.parse(await exportText(sample('stacks', 'capture'), 'chrome')) as { traceEvents: ChromeEvent[] };
    const threads = doc.traceEvents.filter((e) => e.name === 'thread_name').map((e) => `${e.pid}/${e.tid} ${e.args!.name}`);
    expect(threads).toEqual(['1/1 vCPU 0 call stacks', '1/2 system calls', '1/3 stages (BOOT_TIME)', '1/4 console markers', '1/5 initcalls', '2/1 VMM phases']);
    const on = (tid: number, pid = 1): string[] => doc.traceEvents.filter((e) => e.pid === pid && e.tid === tid && e.ph !== 'M').map((e) => e.name);
    expect(on(2)).toEqual(['write']);
    expect(on(3)).toEqual(['init_entry', 'mounts_done', 'ready']);
    expect(on(4)).toEqual(['init_entry', 'mounts_done', 'ready', 'Linux version', 'free init memory', 'run init /init']);
    expect(on(5)).toEqual(['serial8250_init', 'ext4_init_fs']);
    expect(on(1, 2)).toEqual(['kvm_open', 'vm_create', 'memory', 'kernel_load', 'rootfs_load', 'boot_params', 'vcpu_setup', 'boot_wait']);
    // A trace file copied elsewhere gets no tracks from a capture it does not belong to.
    const lone = join(testOutput('export'), 'lone.log');
    copyFileSync(sample('stacks', 'capture', 'trace.log'), lone);
    const plain = JSON.parse(await exportText(lone, 'chrome')) as { traceEvents: ChromeEvent[] };
    expect(new Set(plain.traceEvents.map((e) => e.tid))).toEqual(new Set([0, 1, 2]));
    const noTracks = JSON.parse(await exportText(sample('stacks', 'capture'), 'chrome', false)) as { traceEvents: ChromeEvent[] };
    expect(noTracks.traceEvents.some((e) => e.tid === 3 || e.pid === 2)).toBe(false);
  });
});

interface Speedscope {
  $schema: string;
  shared: { frames: Array<{ name: string }> };
  profiles: Array<{ type: string; name: string; unit: string; startValue: number; endValue: number; events: Array<{ type: 'O' | 'C'; at: number; frame: number }> }>;
}

describe('export of an empty trace', () => {
  it('writes valid, empty documents', async () => {
    expect(await exportText(sample('empty.log'), 'collapsed')).toBe('');
    const chrome = JSON.parse(await exportText(sample('empty.log'), 'chrome')) as { traceEvents: ChromeEvent[] };
    expect(chrome.traceEvents.every((e) => e.ph === 'M')).toBe(true);
    const ss = JSON.parse(await exportText(sample('empty.log'), 'speedscope')) as Speedscope;
    expect(ss.profiles[0]!.events).toEqual([]);
    expect(ss.shared.frames).toEqual([]);
  });
});

describe('export --to speedscope', () => {
  it('writes an evented profile whose frames exist and whose O/C events are balanced and ordered', async () => {
    for (const trace of TRACES) {
      const doc = JSON.parse(await exportText(trace, 'speedscope')) as Speedscope;
      expect(doc.$schema).toBe('https://www.speedscope.app/file-format-schema.json');
      expect(doc.profiles).toHaveLength(1);
      const p = doc.profiles[0]!;
      expect(p).toMatchObject({ type: 'evented', unit: 'microseconds' });
      const open: number[] = [];
      let last = p.startValue;
      for (const e of p.events) {
        expect(e.frame).toBeGreaterThanOrEqual(0);
        expect(e.frame).toBeLessThan(doc.shared.frames.length);
        expect(e.at, trace).toBeGreaterThanOrEqual(last);
        last = e.at;
        if (e.type === 'O') open.push(e.frame);
        else expect(open.pop(), `${trace}: C of the innermost open frame`).toBe(e.frame);
      }
      expect(open).toEqual([]);
      expect(p.endValue).toBeGreaterThanOrEqual(last);
      const { stacks, names } = await rebuild(trace);
      expect(p.endValue - p.startValue).toBeCloseTo(stacks.clock - stacks.start, 3);
      expect(new Set(doc.shared.frames.map((f) => f.name))).toEqual(new Set(names.filter((_, id) => stacks.callCount[id]! > 0)));
    }
  });
});
