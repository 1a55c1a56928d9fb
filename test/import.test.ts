/**
 * Other tools' traces (src/import/) on real samples: each importer's events exactly, detection on every file
 * in samples/, and the one-line answers for files no importer reads. Provenance: samples/import/README.md.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { detectFormat, DETECT_BYTES, type FormatId } from '../src/import/detect.js';
import { readTrace } from '../src/trace/reader.js';
import type { HotFunctionRow } from '../analyzers/hot-functions.js';
import { ROOT, cliJson, runCli, sample } from './helpers.js';

interface Ev { t: number; fn: string; offset: number; addr: number }

async function events(path: string, systemMap?: string): Promise<{ evs: Ev[]; warnings: string[]; malformed: number }> {
  const evs: Ev[] = [];
  const warnings: string[] = [];
  const r = await readTrace(path, (functions) => ({ event: (t, fn, offset, addr) => evs.push({ t, fn: functions.names[fn]!, offset, addr }) }), {
    warn: (l) => warnings.push(l), chunkSize: 7, ...(systemMap ? { systemMap } : {}),
  });
  return { evs, warnings, malformed: r.malformed };
}
const imp = (name: string): string => sample('import', name);
const rw = (name: string): string => sample('realworld', name);
const ev = (t: number, fn: string, offset = 0, addr = 0): Ev => ({ t, fn, offset, addr });

describe('the 2016 format as gdb and the kernel also write it', () => {
  it('K6 gdb `in section .text of /path`: usb_probe_interface 4.0 us over 2 lines, the bare address [unresolved] with 0', async () => {
    const { evs } = await events(rw('K6-gdb-section-of-objfile.log'));
    expect(evs).toEqual([ev(100, 'usb_probe_interface'), ev(101.5, 'usb_probe_interface', 12), ev(104, '[unresolved]', -1, 0xffffffffc0a01000)]);
    const rows = cliJson<HotFunctionRow[]>(['hot-functions', rw('K6-gdb-section-of-objfile.log')]);
    expect(rows.map((r) => [r.function, r.time_us, r.lines])).toEqual([['usb_probe_interface', 4, 2], ['[unresolved]', 0, 1]]);
  });

  it('K7 `sym+0xOFF` folds into its function: vmx_vmenter 5 us (2 lines), error_entry 0', async () => {
    const { evs } = await events(rw('K7-sym-plus-hex-offset.log'));
    expect(evs).toEqual([ev(10, 'vmx_vmenter'), ev(12, 'vmx_vmenter', 2), ev(15, 'error_entry')]);
    const rows = cliJson<HotFunctionRow[]>(['hot-functions', rw('K7-sym-plus-hex-offset.log')]);
    expect(rows.map((r) => [r.function, r.time_us, r.lines])).toEqual([['vmx_vmenter', 5, 2], ['error_entry', 0, 1]]);
  });
});

it('the gdb-2016 importer gives the native reader\'s events on a real 2016 trace with ` of /path` added', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const native = await events(sample('2016-trace-excerpts.log'));
  const file = join(mkdtempSync(join(tmpdir(), 'bt-gdb-')), 'objfile.log');
  writeFileSync(file, readFileSync(sample('2016-trace-excerpts.log'), 'latin1').replace(/ in section \.text$/gm, ' in section .text of /build/vmlinux'));
  const imported = await events(file);
  expect(imported.warnings[0]).toMatch(/read as a boot trace symbolised by gdb with several object files/);
  expect(imported.evs).toEqual(native.evs);
  expect(native.evs.length).toBe(42);
});

describe('QEMU -d exec', () => {
  it('K8 is read, not warned about five times: one line says what it is and what is missing', () => {
    const r = runCli(['hot-functions', rw('K8-foreign-file-warnings-then-error.log'), '--format', 'json']);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/malformed/);
    expect(r.stderr).toMatch(/read as a QEMU -d exec log .*: 6 events/);
    expect(r.stderr).toMatch(/addresses not symbolised: pass --system-map/);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ function: '[user]', time_us: 5, lines: 6 })]);
  });

  it('a real QEMU 7.2 log of Linux 6.1 startup, symbolised with --system-map: time is the block index', async () => {
    const log = imp('qemu-exec-7.2-linux-6.1-startup.log');
    const map = imp('qemu-exec-7.2-linux-6.1-startup.System.map');
    const { evs } = await events(log, map);
    expect(evs).toHaveLength(40);
    expect(evs.slice(0, 3)).toEqual([
      ev(0, 'secondary_startup_64_no_verify', 0xd3 - 0x75), ev(1, 'secondary_startup_64_no_verify', 0xde - 0x75), ev(2, 'secondary_startup_64_no_verify', 0xe0 - 0x75),
    ]);
    expect(evs.map((e) => e.t)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // Every pc lands in the symbol the map's sorted starts put it in (worked out here from the two files' text).
    const starts = readFileSync(map, 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([a, , n]) => [BigInt('0x' + a), n!] as const);
    const pcs = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('Trace')).map((l) => BigInt('0x' + l.split('[')[1]!.split('/')[1]));
    expect(evs.map((e) => e.fn)).toEqual(pcs.map((pc) => [...starts].reverse().find(([a]) => a <= pc)![1]));
    const rows = cliJson<HotFunctionRow[]>(['hot-functions', log, '--system-map', map, '--top', '2']);
    expect(rows.map((r) => [r.function, r.time_us, r.lines])).toEqual([['secondary_startup_64_no_verify', 11, 11], ['reset_early_page_tables', 10, 11]]);
  });
});

describe('perf script', () => {
  it('samples (perf 6.1 on this machine, cpu-clock): seconds to us, sym+0xOFF folded', async () => {
    const { evs } = await events(imp('perf-script-cpu-clock-6.1.txt'));
    expect(evs).toHaveLength(12);
    expect(evs.slice(0, 3)).toEqual([ev(1552816342, 'vfs_read', 0xbe), ev(1552817304, 'vfs_write', 0xca), ev(1552818304, 'security_file_permission', 0x2a)]);
  });

  it('-F time,ip,sym gives the same functions at the same times', async () => {
    const a = await events(imp('perf-script-cpu-clock-6.1.txt'));
    const b = await events(imp('perf-script-F-time-ip-sym-6.1.txt'));
    expect(b.evs.map((e) => [e.t, e.fn])).toEqual(a.evs.map((e) => [e.t, e.fn]));
  });

  it('with -g: the first callchain line is the sample, an [unknown] frame a bare address', async () => {
    const { evs } = await events(imp('perf-script-callchain-6.1.txt'));
    expect(evs).toEqual([
      ev(1556689285, '__GI___libc_write', 0x10), ev(1556690282, 'vfs_read', 0xbb), ev(1556718638, '[user]', -1, 0x5b7c), ev(1556723633, 'ksys_write', 0x49),
    ]);
  });

  it('cycles samples with the insn field (perf-tools issue #96)', async () => {
    const { evs } = await events(imp('perf-script-cycles-insn-field.txt'));
    expect(evs.map((e) => e.fn)).toEqual(['native_write_msr', 'native_write_msr', 'native_write_msr', 'native_write_msr', 'native_sched_clock', 'apparmor_bprm_committing_creds', '[user]']);
    expect(evs[6]).toEqual(ev(15889777194707, '[user]', -1, 0x7fc66bd036d7));
  });

  it('Intel PT --insn-trace, --xed with IPC, and --xed without symbols (a mail-wrapped line is one malformed line)', async () => {
    expect((await events(imp('perf-script-intel-pt-insn-trace.txt'))).evs).toEqual([ev(653971670163.672, '_start', 0), ev(653971670163.672, '_start', 3)]);
    const xed = await events(imp('perf-script-intel-pt-xed-ipc.txt'));
    expect(xed.evs.map((e) => [e.fn, e.offset])).toEqual([0x3f, 0x45, 0x49, 0x4f, 0x51, 0x57, 0x5e, 0x61].map((o) => ['_int_free', o]));
    const nosym = await events(imp('perf-script-intel-pt-xed-nosym-mail-wrapped.txt'));
    expect(nosym.evs.map((e) => e.fn)).toEqual(Array(10).fill('[unresolved]'));
    expect(nosym.evs[0]!.addr).toBe(0xffffffffa7046230);
    expect(nosym.malformed).toBe(1);
  });

  it('--call-trace lines name the function without an address', async () => {
    // The layout perf-intel-pt.txt documents for --call-trace (comm, tid, cpu, time, indented symbol).
    const text = '            perf 25316 [003] 1056.964212364:  cbr: 41 freq: 4103 MHz (137%)\n' +
      '            perf 25316 [003] 1056.964212385:          __perf_event_task_sched_in\n' +
      '            perf 25316 [003] 1056.964212385:              perf_pmu_sched_task\n';
    const r = runCli(['hot-functions', '-', '--format', 'json'], { input: text });
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as HotFunctionRow[]).map((x) => x.function).sort()).toEqual(['__perf_event_task_sched_in', 'perf_pmu_sched_task']);
  });
});

describe('ftrace', () => {
  it('function tracer (Documentation/trace/ftrace.rst example): one event per entry, CPUs in file order', async () => {
    const { evs } = await events(imp('ftrace-function-ftrace-rst.txt'));
    expect(evs).toHaveLength(10);
    expect(evs.slice(0, 4)).toEqual([ev(17284993652, 'sys_close'), ev(17284993653, '__close_fd'), ev(17284993653, '_raw_spin_lock'), ev(17284993653, '__srcu_read_unlock')]);
  });

  it('function tracer with other events and a stack trace: only the function entry is an event', async () => {
    const { evs, malformed } = await events(imp('ftrace-function-stacktrace-arm.txt'));
    expect(evs).toEqual([ev(230859943, 'do_timer')]);
    expect(malformed).toBe(0);
  });

  it('function_graph with funcgraph-abstime: entries, leaves, and back in the caller a leaf later', async () => {
    const { evs } = await events(imp('ftrace-graph-abstime-proc.txt'));
    expect(evs.slice(5)).toEqual([
      ev(6800190947, 'do_syscall_64'), ev(6800190948, '__x64_sys_close'), ev(6800190948, '__close_fd'),
      ev(6800190948, '_raw_spin_lock'), ev(6800190948 + 0.322, '__close_fd', 1),
      ev(6800190949, 'filp_close'), ev(6800190949, 'dnotify_flush'), ev(6800190949 + 0.32, 'filp_close', 1),
      ev(6800190950, 'locks_remove_posix'), ev(6800190950 + 0.325, 'filp_close', 1),
    ]);
  });

  it('function_graph without funcgraph-abstime: one line saying how to record it', () => {
    const r = runCli(['hot-functions', imp('ftrace-graph-no-abstime.txt')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^boot-trace: .*ftrace-graph-no-abstime\.txt: not a boot trace: it looks like an ftrace function_graph trace without times: record it with `echo funcgraph-abstime > trace_options`/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('files that are not traces', () => {
  it('a console, a symbol table: one line each, no malformed-line warnings first', () => {
    for (const [file, what] of [[sample('console', 'dmesg-initcall-debug-6.1.txt'), /a kernel console or dmesg.*stages, initcalls or uart/], [sample('symbols', 'System.map-6.1-excerpt'), /a symbol table .*--system-map/]] as const) {
      const r = runCli(['hot-functions', file]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(what);
      expect(r.stderr).not.toMatch(/malformed/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('initcalls on a trace file, and on a console without initcall_debug, say why in one line', () => {
    const trace = runCli(['initcalls', sample('2016-trace-excerpts.log')]);
    expect(trace.status).toBe(1);
    expect(trace.stderr).toMatch(/^boot-trace: .*2016-trace-excerpts\.log: not a console log: it looks like a boot trace/);
    const noDebug = runCli(['initcalls', '-'], { input: '[    0.000000] Linux version 6.1.0\n[    0.000000] Command line: console=ttyS0 quiet\n[    1.0] Run /init as init process\n' });
    expect(noDebug.status).toBe(1);
    expect(noDebug.stderr).toMatch(/no initcall_debug lines: the kernel command line lacks initcall_debug/);
    const noLevel = runCli(['initcalls', '-'], { input: '[    0.000000] Command line: console=ttyS0 initcall_debug\n[    1.000000] Run /init as init process\n' });
    expect(noLevel.status).toBe(1);
    expect(noLevel.stderr).toMatch(/has initcall_debug but neither ignore_loglevel nor a loglevel that shows KERN_DEBUG/);
  });
});

describe('detection', () => {
  const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
  /** What each sample is, from where it lives and how it is named (not from its content). */
  const expected = (rel: string): FormatId => {
    if (/^(guest|probe|symbols)\//.test(rel) || /\.(System\.map|json|md)$/.test(rel) || rel.endsWith('no-abstime.txt')) return 'unknown';
    // Firmware output only (SLOF, before any kernel line): nothing a console or trace reader recognises.
    if (rel === 'console/libbpf-ci-ppc64-slof-qemu-warnings.log') return 'unknown';
    if (rel.startsWith('console/') || rel.startsWith('robustness/console-') || rel.endsWith('/console.log')) return 'console';
    if (/^realworld\/K(6|7)-/.test(rel)) return 'gdb-2016';
    if (/^realworld\/K8-/.test(rel) || rel.startsWith('import/qemu-exec')) return 'qemu-exec';
    if (rel.startsWith('realworld/')) return 'console';
    if (rel.startsWith('import/perf-script')) return 'perf-script';
    if (rel.startsWith('import/ftrace-function')) return 'ftrace-function';
    if (rel.startsWith('import/ftrace-graph')) return 'ftrace-graph';
    return 'boot-trace';
  };

  it('tells the format of every file in samples/ from its first 4 KiB', () => {
    const files = walk(join(ROOT, 'samples'));
    expect(files.length).toBeGreaterThan(60);
    for (const file of files) {
      let data = readFileSync(file);
      if (file.endsWith('.gz')) data = gunzipSync(data);
      const rel = relative(join(ROOT, 'samples'), file);
      expect(detectFormat(data.subarray(0, DETECT_BYTES).toString('latin1')).format, rel).toBe(expected(rel));
    }
  });
});
