/** `initcalls` on the sample consoles: rows worked out by hand from the initcall_debug lines. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Initcalls, type InitcallRow } from '../analyzers/initcalls.js';
import { cliJson, runCli, sample, testOutput } from './helpers.js';
import { feedConsole } from './console-lines-fixture.js';

const r = (initcall: string, module: string | null, start_us: number | null, duration_us: number | null, ret: number | null, depth: number, pid: number | null): InitcallRow =>
  ({ initcall, module, start_us, duration_us, ret, depth, pid });

// dmesg-initcall-debug-6.1.txt, longest first. Durations are the kernel's "after T usecs" (oom_init's
// stamps are 80026 us apart, its own figure 80000); probe starts are their line's stamp minus T.
const dmesgRows: InitcallRow[] = [
  r('crypto_algapi_init', null, 2425339, 539795, 0, 0, 1),
  r('acpi_init', null, 1057378, 260000, 0, 0, 1),
  r('oom_init', null, 897086, 80000, 0, 0, 1),
  r('chr_dev_init', null, 1660468, 26674, 0, 0, 1),
  r('serial8250_init', null, 2003181, 11851, 0, 0, 1),
  r('pnp_system_init', null, 2016050, 5154, 0, 0, 1),
  r('virtio_blk_init', 'virtio_blk', 3215507, 4777, 0, 0, 97),
  r('probe of virtio1', null, 3219932 - 4107, 4107, 0, 1, null),
  r('acpi_pci_root_init', null, 1101200, 3311, 0, 1, 1),
  r('init_hw_perf_events', null, 639703, 2911, 0, 0, 1),
  r('probe of PNP0103:00', null, 2020754 - 2127, 2127, 19, 1, null),
  r('probe of serial8250', null, 2014665 - 352, 352, 0, 1, null),
  r('intel_pstate_init', null, 2111560, 42, -19, 0, 1),
  r('con_init', null, 0, 0, 0, 0, 0),
  r('univ8250_console_init', null, 0, 0, 0, 0, 0),
];

// Top level and returned before "Freeing unused kernel image (initmem) memory" (3.016705):
// 0 + 0 + 2911 + 80000 + 260000 + 26674 + 11851 + 5154 + 42 + 539795 (not virtio_blk_init, after it).
const dmesgSummary = { initcalls: 12, probes: 3, unfinished: 0, top_level_sum_us: 926427, span_us: 3016705 };

// Two modprobes at once (pids 97, 98) and ata_init's return line cut by sd_mod_init's calling.
const interleavedRows: InitcallRow[] = [
  r('virtio_net_driver_init', 'virtio_net', 3215622, 15279, 0, 0, 98),
  r('ata_init', 'libata', 3240012, 5988, 0, 0, 99),
  r('virtio_blk_init', 'virtio_blk', 3215507, 4777, 0, 0, 97),
  r('init_hw_perf_events', null, 639703, 2911, 0, 0, 1),
  r('sd_mod_init', 'sd_mod', 3246090, 2210, 0, 0, 100),
];

function analyze(name: string, chunk?: number) {
  const a = new Initcalls();
  feedConsole(sample('console', name), a, chunk);
  return a.result();
}

describe('initcalls (analyzer)', () => {
  it('pairs calling/returned lines, nests by pid, attaches probes, uses the kernel\'s figures', () => {
    const { rows, summary } = analyze('dmesg-initcall-debug-6.1.txt', 5);
    expect(rows).toEqual(dmesgRows);
    expect(summary).toEqual(dmesgSummary);
  });

  it('takes dmesg stamps over host stamps for start times', () => {
    const { rows, summary } = analyze('console-boot-time.log');
    expect(rows).toEqual([
      r('serial8250_init', null, 2003181, 11851, 0, 0, 1),
      r('init_hw_perf_events', null, 639703, 2911, 0, 0, 1),
      r('probe of serial8250', null, 2014313, 352, 0, 1, null),
      r('con_init', null, 0, 0, 0, 0, 0),
    ]);
    expect(summary).toEqual({ initcalls: 3, probes: 1, unfinished: 0, top_level_sum_us: 2911 + 11851, span_us: 3016705 });
  });

  it('keeps interleaved initcalls apart and rejoins a cut return line', () => {
    const { rows, summary } = analyze('console-interleaved.log', 1);
    expect(rows).toEqual(interleavedRows);
    expect(summary).toEqual({ initcalls: 5, probes: 0, unfinished: 0, top_level_sum_us: 2911, span_us: 3016705 - 639703 });
  });

  it('lists an initcall whose return was truncated away as unfinished', () => {
    const { rows, summary } = analyze('console-truncated-crlf.log');
    expect(rows).toEqual([
      r('oom_init', null, 897086, 80000, 0, 0, 1),
      r('init_hw_perf_events', null, 639703, 2911, 0, 0, 1),
      r('con_init', null, 0, 0, 0, 0, 0),
      r('acpi_init', null, 1057378, null, null, 0, 1),
    ]);
    expect(summary).toEqual({ initcalls: 3, probes: 0, unfinished: 1, top_level_sum_us: 82911, span_us: null });
  });

  it('reads the newer probe line shape too (dev_info: "DRV DEV: probe with driver ...")', () => {
    const a = new Initcalls();
    a.message({ lineNo: 1, hostUs: null, kernelUs: 9000, text: 'virtio_blk virtio1: probe with driver virtio_blk returned 0 after 4107 usecs' });
    expect(a.result().rows).toEqual([r('probe of virtio1', null, 9000 - 4107, 4107, 0, 0, null)]);
  });

  it('derives the start of a return whose calling is not in the log', () => {
    const a = new Initcalls();
    a.message({ lineNo: 1, hostUs: null, kernelUs: 5000, text: 'initcall foo+0x0/0x10 [bar] returned -12 after 300 usecs' });
    expect(a.result().rows).toEqual([r('foo', 'bar', 4700, 300, -12, 0, null)]);
  });
});

describe('boot-trace initcalls (CLI)', () => {
  it('prints JSON rows and the summary on stderr', () => {
    const out = runCli(['initcalls', sample('console', 'dmesg-initcall-debug-6.1.txt'), '--top', '0', '--format', 'json']);
    expect(out.status).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual(dmesgRows);
    expect(out.stderr).toBe(
      'boot-trace: total: 12 initcalls, 3 probes, 0 unfinished; top-level initcalls before userspace 926,427 us; ' +
        'first calling -> "Freeing unused kernel memory" 3,016,705 us\n',
    );
    expect(cliJson(['initcalls', sample('console', 'console-interleaved.log'), '--top', '2'])).toEqual(interleavedRows.slice(0, 2));
  });

  it('reads a .gz file and stdin the same way', () => {
    const raw = readFileSync(sample('console', 'console-interleaved.log'));
    const gz = join(testOutput('initcalls'), 'console-interleaved.log.gz');
    writeFileSync(gz, gzipSync(raw));
    expect(cliJson(['initcalls', gz])).toEqual(interleavedRows);
    expect(cliJson(['initcalls', '-'], { input: raw })).toEqual(interleavedRows);
  });

  it('prints CSV', () => {
    const out = runCli(['initcalls', sample('console', 'console-interleaved.log'), '--format', 'csv']);
    expect(out.stdout).toBe(
      'initcall,module,start_us,duration_us,ret,depth,pid\n' +
        'virtio_net_driver_init,virtio_net,3215622,15279,0,0,98\n' +
        'ata_init,libata,3240012,5988,0,0,99\n' +
        'virtio_blk_init,virtio_blk,3215507,4777,0,0,97\n' +
        'init_hw_perf_events,,639703,2911,0,0,1\n' +
        'sd_mod_init,sd_mod,3246090,2210,0,0,100\n',
    );
  });

  it('prints a table with the total as its last line', () => {
    const out = runCli(['initcalls', sample('console', 'console-truncated-crlf.log'), '--format', 'table']);
    expect(out.status).toBe(0);
    expect(out.stderr).toBe('');
    expect(out.stdout.split('\n')).toEqual([
      'initcall             module     start (us)  duration (us)  ret  depth  pid',
      'oom_init                       897,086.000         80,000    0      0    1',
      'init_hw_perf_events            639,703.000          2,911    0      0    1',
      'con_init                             0.000              0    0      0    0',
      'acpi_init                    1,057,378.000     unfinished           0    1',
      'total: 3 initcalls, 0 probes, 1 unfinished; top-level initcalls before userspace 82,911 us; ' +
        'first calling -> "Freeing unused kernel memory" n/a (no calling or no "Freeing unused kernel memory")',
      '',
    ]);
  });
});
