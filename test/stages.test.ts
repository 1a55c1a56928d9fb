/** `stages` on the sample consoles: spans worked out by hand from the lines of each file. */
import { describe, expect, it } from 'vitest';
import { Stages, parseStageSpec, renderTimeline, type StageRow } from '../analyzers/stages.js';
import { cliJson, runCli, sample } from './helpers.js';
import { feedConsole } from './console-lines-fixture.js';

const row = (name: string, start_us: number, duration_us: number, percent: number): StageRow =>
  ({ name, start_us, duration_us, percent, end_us: Math.round((start_us + duration_us) * 1000) / 1000 });

// console.log shape (host stamps): SeaBIOS at 612034.5, "Probing EDD" (closed after 10 ms) at 712460.3,
// "Linux version" at 1795120.9, first calling at 1801977.6, Freeing initmem at 4813027.9, Run /init at
// 4826501.3, BOOT_TIME markers at 4860230.0 / 4902118.4 / 4950007.2, "reboot: Power down" at 4989340.6.
const bootTime: StageRow[] = [
  row('boot', 0, 4989340.6, 100),
  row('firmware', 612034.5, 100425.8, 2.01),
  row('kernel', 712460.3, 4100567.6, 82.19),
  // The banner (flushed at 1795120.9) and con_init's calling (flushed at 1801977.6) were printed before the
  // console registered: placed at kernel time 0's host time, min(host - kernel) = 2431710.2 - 639703 (the
  // live init_hw_perf_events line) = 1792007.2, plus their stamps (0).
  row('kernel:entry', 712460.3, 1079546.9, 21.64),
  row('kernel:initcalls-before-userspace', 1792007.2, 3021020.7, 60.55),
  row('userspace', 4826501.3, 162839.3, 3.26),
  row('BOOT_TIME:init_entry', 4860230, 41888.4, 0.84),
  row('BOOT_TIME:mounts_done', 4902118.4, 47888.8, 0.96),
  row('BOOT_TIME:ready', 4950007.2, 39333.4, 0.79),
];

// Plain dmesg (kernel stamps): Linux version and con_init's calling at 0, Freeing initmem at 3.016705,
// Run /init at 3.030117, reboot at 3.480076 (the last line).
const dmesg: StageRow[] = [
  row('boot', 0, 3480076, 100),
  row('kernel', 0, 3016705, 86.69),
  row('kernel:initcalls-before-userspace', 0, 3016705, 86.69),
  row('userspace', 3030117, 449959, 12.93),
];

// Interleaved: the BOOT_TIME:mounts_done marker is cut by a kernel message; its rest arrives at 5046020.1.
const interleaved: StageRow[] = [
  row('boot', 0, 5146000, 100),
  row('kernel', 1792007.2, 3021020.7, 58.71), // the banner at kernel time 0's host time (see bootTime)
  row('kernel:initcalls-before-userspace', 2431710.2, 2381317.7, 46.28),
  row('userspace', 4826501.3, 319498.7, 6.21),
  row('BOOT_TIME:init_entry', 4860230, 185790.1, 3.61),
  row('BOOT_TIME:mounts_done', 5046020.1, 50979.9, 0.99),
  row('BOOT_TIME:ready', 5097000, 49000, 0.95),
];

function stages(name: string, chunk?: number, extra: string[] = []) {
  const s = new Stages(extra.map(parseStageSpec));
  feedConsole(sample('console', name), s, chunk);
  return s.result();
}

describe('stages (analyzer)', () => {
  it('finds the built-in spans in our console.log shape, with host times', () => {
    const { rows, missing } = stages('console-boot-time.log');
    expect(rows).toEqual(bootTime);
    expect(missing).toEqual([]);
  });

  it('uses the dmesg clock when lines have no host stamp, and lists what is not there', () => {
    const { rows, missing } = stages('dmesg-initcall-debug-6.1.txt', 1);
    expect(rows).toEqual(dmesg);
    expect(missing.map((m) => m.name)).toEqual(['firmware', 'kernel:entry']);
  });

  it('joins a marker split by kernel output', () => {
    expect(stages('console-interleaved.log', 3).rows).toEqual(interleaved);
  });

  it('leaves out spans whose end is past a truncation', () => {
    const { rows, missing } = stages('console-truncated-crlf.log');
    expect(rows).toEqual([row('boot', 0, 3112530.2, 100)]);
    expect(missing.find((m) => m.name === 'kernel')?.reason).toMatch(/no line after its begin matches \/Freeing unused kernel/);
  });

  it('adds user spans and lets one replace a built-in', () => {
    const { rows } = stages('dmesg-initcall-debug-6.1.txt', undefined, [
      'acpi:^calling  acpi_init:^initcall acpi_init',
      'userspace:Run /init:with arguments',
      'pci\\:root:calling  acpi_pci_root_init:returned',
    ]);
    expect(rows.find((r) => r.name === 'acpi')).toEqual(row('acpi', 1057378, 260034, 7.47));
    expect(rows.find((r) => r.name === 'pci:root')).toEqual(row('pci:root', 1101200, 3311, 0.1));
    expect(rows.filter((r) => r.name === 'userspace')).toEqual([row('userspace', 3030117, 8, 0)]);
  });

  it('rejects a malformed --stage', () => {
    expect(() => parseStageSpec('onlyname')).toThrow(/NAME:BEGIN_REGEX:END_REGEX/);
    expect(() => parseStageSpec('x:(:y')).toThrow(/bad begin regex/);
  });

  it('draws a timeline with one column per open span, reusing freed columns', () => {
    const text = renderTimeline(bootTime);
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBe(bootTime.length * 2);
    expect(lines[0]).toBe('   0.000 ms  ┬      boot');
    expect(lines[1]).toBe(' 612.034 ms  │ ┬    firmware');
    expect(lines[2]).toBe(' 712.460 ms  │ ┴    firmware end (100.426 ms)');
    expect(lines[3]).toBe(' 712.460 ms  │ ┬    kernel');
    expect(lines[4]).toBe(' 712.460 ms  │ │ ┬  kernel:entry');
    expect(lines.at(-1)).toBe('4989.341 ms  ┴      boot end (4989.341 ms)');
  });
});

describe('boot-trace stages (CLI)', () => {
  it('prints the same rows as JSON', () => {
    expect(cliJson(['stages', sample('console', 'console-boot-time.log')])).toEqual(bootTime);
    expect(cliJson(['stages', sample('console', 'console-interleaved.log')])).toEqual(interleaved);
  });

  it('prints CSV with the four columns', () => {
    const r = runCli(['stages', sample('console', 'dmesg-initcall-debug-6.1.txt'), '--format', 'csv']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      'name,start_us,duration_us,percent\n' +
        'boot,0,3480076,100\n' +
        'kernel,0,3016705,86.69\n' +
        'kernel:initcalls-before-userspace,0,3016705,86.69\n' +
        'userspace,3030117,449959,12.93\n',
    );
    expect(r.stderr).toBe('');
  });

  it('prints a table with the left-out spans noted under it', () => {
    const r = runCli(['stages', sample('console', 'dmesg-initcall-debug-6.1.txt'), '--format', 'table']);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      'stage                                 start (us)  duration (us)       %',
      'boot                                       0.000  3,480,076.000  100.00',
      'kernel                                     0.000  3,016,705.000   86.69',
      'kernel:initcalls-before-userspace          0.000  3,016,705.000   86.69',
      'userspace                          3,030,117.000    449,959.000   12.93',
      'left out (begin or end not in this log):',
      // Issue 12: the firmware stage is any firmware (SeaBIOS, SLOF, OVMF, unknown) before the kernel's first line.
      "  firmware: no line matches a firmware line before the kernel's first line (needs host stamps)",
      '  kernel:entry: no line matches /Probing EDD|Decompressing Linux/',
      '',
    ]);
  });

  it('takes --stage and --timeline, and explains bad input in one line', () => {
    const r = runCli(['stages', sample('console', 'console-boot-time.log'), '--timeline']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(renderTimeline(bootTime));
    // --stage before the file, twice: each takes one value and the file stays the positional.
    const withStages = cliJson<StageRow[]>(['stages', '--stage', 'acpi:^calling  acpi_init:^initcall acpi_init', sample('console', 'dmesg-initcall-debug-6.1.txt'), '--stage', 'x:Run:reboot']);
    expect(withStages.map((r) => r.name)).toEqual(['boot', 'kernel', 'kernel:initcalls-before-userspace', 'acpi', 'userspace', 'x']);
    expect(withStages[3]).toEqual(row('acpi', 1057378, 260034, 7.47));
    const bad = runCli(['stages', sample('console', 'console-boot-time.log'), '--stage', 'nope']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^boot-trace: --stage "nope": expected NAME:BEGIN_REGEX:END_REGEX/);
    const missing = runCli(['stages', sample('console', 'no-such.log')]);
    expect(missing.stderr).toMatch(/no-such\.log: cannot open: no such file/);
    const empty = runCli(['stages', '-'], { input: 'hello\nworld\n' });
    expect(empty.stderr).toMatch(/<stdin>: no timestamped line/);
  });
});
