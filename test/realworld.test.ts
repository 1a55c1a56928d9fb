/**
 * The real inputs of ../shared/realworld/ (copied into samples/realworld/, one per kind, reduced from public
 * consoles and traces), each with the right answer its README gives; and our own further input per kind.
 */
import { describe, expect, it } from 'vitest';
import { ConsoleParser, type ConsoleMessage } from '../analyzers/console-lines.js';
import { Initcalls, type InitcallRow } from '../analyzers/initcalls.js';
import { Stages, parseStageSpec, type StageRow } from '../analyzers/stages.js';
import { UartCost } from '../analyzers/uart.js';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { cliJson, runCli, sample } from './helpers.js';
import { feedConsole } from './console-lines-fixture.js';

const rw = (name: string): string => sample('realworld', name);

function messagesOf(path: string): { messages: ConsoleMessage[]; parser: ConsoleParser } {
  const messages: ConsoleMessage[] = [];
  const parser = feedConsole(path, { message: (m) => messages.push(m) }, 3);
  return { messages, parser };
}
function stagesOf(path: string, extra: string[] = []) {
  const s = new Stages(extra.map(parseStageSpec));
  feedConsole(path, s);
  const r = s.result();
  return { ...r, byName: Object.fromEntries(r.rows.map((x) => [x.name, x])) as Record<string, StageRow> };
}
function initcallsOf(path: string) {
  const a = new Initcalls();
  feedConsole(path, a, 5);
  return a.result();
}
const only = (rows: InitcallRow[], name: string): InitcallRow => {
  const found = rows.filter((r) => r.initcall === name);
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe('K1: a kernel stamp after any prefix', () => {
  it('K1a prefixed lines are messages of their own, not glued to the line before', () => {
    const { messages } = messagesOf(rw('K1a-prefixed-stamp-lines-joined.log'));
    expect(messages.map((m) => [m.kernelUs, m.text])).toEqual([
      [100000, 'Linux version 6.1.0 (builder@host) #1 SMP'],
      [958207, 'Freeing unused kernel image (initmem) memory: 1000K'],
      [959003, 'Run /init as init process'],
      [1200000, 'reboot: Power down'],
    ]);
    expect(stagesOf(rw('K1a-prefixed-stamp-lines-joined.log')).byName['userspace']).toMatchObject({ start_us: 959003, duration_us: 240997, end_us: 1200000 });
  });

  it('K1a (ours): classic syslog `host kernel: [stamp]` among plain lines', () => {
    const { messages, parser } = messagesOf(rw('K1a-syslog-kernel-prefix.log'));
    expect(messages.map((m) => m.kernelUs)).toEqual([0, 958207, 959003, 1200000]);
    expect(parser.counts).toMatchObject({ prefixed: 3, kernelStamped: 4, hostStamped: 0 });
    expect(stagesOf(rw('K1a-syslog-kernel-prefix.log')).byName['userspace']).toMatchObject({ start_us: 959003, duration_us: 240997 });
  });

  it('K1b every line prefixed: 2 messages, the kernel stage ends at 958,207', () => {
    const { messages } = messagesOf(rw('K1b-all-lines-prefixed.log'));
    expect(messages.map((m) => m.kernelUs)).toEqual([958207, 959003]);
    expect(stagesOf(rw('K1b-all-lines-prefixed.log')).byName['kernel']).toMatchObject({ start_us: 0, end_us: 958207 });
    expect(runCli(['stages', rw('K1b-all-lines-prefixed.log'), '--format', 'json']).status).toBe(0);
  });

  it('K1b (ours): a CI log with an ISO wall clock before every line', () => {
    const { messages } = messagesOf(rw('K1b-ci-iso-prefix.log'));
    expect(messages.map((m) => [m.kernelUs, m.text])).toEqual([
      [2013542, 'Freeing unused kernel image (initmem) memory: 2736K'],
      [2029107, 'Run /init as init process'],
      [3500100, 'reboot: Power down'],
    ]);
    expect(stagesOf(rw('K1b-ci-iso-prefix.log')).byName['userspace']).toMatchObject({ start_us: 2029107, duration_us: 1470993 });
  });

  it('K1c an indented dmesg: 3 messages, the user stage is 74,397 us', () => {
    const { messages } = messagesOf(rw('K1c-indented-dmesg.log'));
    expect(messages).toHaveLength(3);
    const rows = cliJson<StageRow[]>(['stages', rw('K1c-indented-dmesg.log'), '--stage', 'buttons:Power Button \\[PWRF\\]:Sleep Button \\[SLPF\\]']);
    expect(rows.find((r) => r.name === 'buttons')).toMatchObject({ start_us: 13345820, duration_us: 74397 });
  });

  it('K1c (ours): raw-dmesg levels after a tab indent', () => {
    const { messages } = messagesOf(rw('K1c-tab-indented-levels.log'));
    expect(messages.map((m) => [m.kernelUs, m.text])).toEqual([
      [1057378, 'calling  acpi_init+0x0/0x4a3 @ 1'],
      [1317412, 'initcall acpi_init+0x0/0x4a3 returned 0 after 260000 usecs'],
    ]);
  });
});

describe('K2: every wording of the end of kernel init', () => {
  it('K2 "Freeing unused kernel image memory" (x86 4.18-5.9) ends the kernel and the initcall span', () => {
    const { byName } = stagesOf(rw('K2-freeing-unused-kernel-image-memory.log'));
    expect(byName['kernel']).toMatchObject({ start_us: 0, end_us: 647968 });
    expect(byName['kernel:initcalls-before-userspace']).toMatchObject({ start_us: 300000, end_us: 647968 });
    expect(initcallsOf(rw('K2-freeing-unused-kernel-image-memory.log')).summary.span_us).toBe(347968);
  });

  it('K2 (ours): "Freeing unused kernel memory: 1234k freed" (2.6) and "Run /sbin/init"', () => {
    const { byName } = stagesOf(rw('K2-freeing-unused-kernel-memory-2.6.log'));
    expect(byName['kernel']).toMatchObject({ start_us: 0, end_us: 2143817 });
    expect(byName['kernel:initcalls-before-userspace']).toMatchObject({ start_us: 402115, end_us: 2143817 });
    // Without a Freeing line, "Run /sbin/init as init process" ends kernel init.
    const s = new Stages();
    for (const [t, text] of [[0, 'Linux version 5.4.0'], [1500000, 'Run /sbin/init as init process']] as const) s.message({ lineNo: 1, hostUs: null, kernelUs: t, text });
    expect(s.result().rows.find((r) => r.name === 'kernel')).toMatchObject({ start_us: 0, end_us: 1500000 });
  });
});

describe('K3: initcalls without kernel stamps', () => {
  it('K3a printk time off: inet_init 8,885 us, start unknown, not an error', () => {
    const { rows } = initcallsOf(rw('K3a-initcalls-printk-time-0.log'));
    expect(rows).toEqual([{ initcall: 'inet_init', module: null, start_us: null, duration_us: 8885, ret: 0, depth: 0, pid: 1 }]);
    const r = runCli(['initcalls', rw('K3a-initcalls-printk-time-0.log'), '--format', 'json']);
    expect(r.status).toBe(0);
  });

  it('K3a (ours): printk time off with probes', () => {
    const { rows } = initcallsOf(rw('K3a-printk-time-off-probes.log'));
    expect(rows.map((r) => [r.initcall, r.duration_us, r.depth, r.start_us])).toEqual([
      ['serial8250_init', 11851, 0, null], ['probe of serial8250', 352, 1, null], ['con_init', 0, 0, null],
    ]);
  });

  it('K3b journalctl -k short format: mei_gsc_driver_init, module mei_gsc, 3,010 us, pid 121074', () => {
    const { rows, summary } = initcallsOf(rw('K3b-initcalls-journalctl.log'));
    expect(rows).toEqual([{ initcall: 'mei_gsc_driver_init', module: 'mei_gsc', start_us: null, duration_us: 3010, ret: 0, depth: 0, pid: 121074 }]);
    expect(summary.top_level_sum_us).toBe(0);
  });

  it('K3b (ours): journalctl -o short-monotonic and short-iso', () => {
    const { rows } = initcallsOf(rw('K3b-journalctl-monotonic-iso.log'));
    expect(rows.map((r) => [r.initcall, r.module, r.start_us, r.duration_us, r.pid])).toEqual([
      ['xhci_hcd_init', null, 1204109, 402, 1],
      ['snd_hda_intel_driver_init', 'snd_hda_intel', null, 77, 402],
    ]);
  });
});

describe('K4: the 2.6.24-2.6.26 wording', () => {
  it('K4 dock_init, 15 "msecs" (delta >> 20: 15,729 us), said in a note', () => {
    const { rows, notes } = initcallsOf(rw('K4-initcall-format-2.6.25.log'));
    expect(rows).toEqual([{ initcall: 'dock_init', module: null, start_us: 800050, duration_us: Math.round(15 * 1048.576), ret: 0, depth: 0, pid: null }]);
    expect(notes.join('\n')).toMatch(/>> 20 as "msecs"/);
  });

  it('K4 (ours): several initcalls, one failing', () => {
    const { rows } = initcallsOf(rw('K4-initcall-format-2.6.24-more.log'));
    expect(rows.map((r) => [r.initcall, r.ret, r.duration_us])).toEqual([
      ['acpi_init', 0, Math.round(40 * 1048.576)], ['pci_init', -19, Math.round(2 * 1048.576)], ['init_smp_flush', 0, 0],
    ]);
  });
});

describe('K5 and K12: wrapped lines', () => {
  it('K5 a return line wrapped in two: both initcalls 0 us at depth 0, nothing unfinished', () => {
    const { rows, summary } = initcallsOf(rw('K5-wrapped-return-line.log'));
    expect(rows.map((r) => [r.initcall, r.duration_us, r.depth])).toEqual([['debug_traps_init', 0, 0], ['vdso_init', 0, 0]]);
    expect(summary.unfinished).toBe(0);
    const r = runCli(['initcalls', rw('K5-wrapped-return-line.log'), '--format', 'json']);
    expect(r.stderr).toMatch(/1 wrapped line joined to the initcall_debug line before \(first at line 3\)/);
  });

  it('K5 (ours): a wrapped calling line', () => {
    const { rows, summary } = initcallsOf(rw('K5-wrapped-calling-line.log'));
    expect(rows.map((r) => [r.initcall, r.duration_us, r.depth, r.pid])).toEqual([['pci_subsys_init', 1732, 0, 1], ['dmi_id_init', 40, 0, 1]]);
    expect(summary.unfinished).toBe(0);
  });

  it('K12 a wrapped line starting with digits is no host stamp: uart says so, the line is rejoined', () => {
    const u = new UartCost();
    const p = feedConsole(rw('K12-digit-line-taken-as-host-stamp.log'), u);
    expect(u.result()).toEqual({ error: expect.stringMatching(/^no host timestamps/) });
    expect(p.counts).toMatchObject({ hostStamped: 0, kernelStamped: 2 });
    expect(only(initcallsOf(rw('K12-digit-line-taken-as-host-stamp.log')).rows, 'asids_update_limit').duration_us).toBe(3906);
    const r = runCli(['uart', rw('K12-digit-line-taken-as-host-stamp.log')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no host timestamps/);
    expect(r.stderr).not.toMatch(/gap-us/);
  });

  it('K12 (ours): dmesg text lines that start with digits stay text', () => {
    const { messages, parser } = messagesOf(rw('K12-digit-lines-in-dmesg.log'));
    expect(parser.form).toBe('plain');
    expect(messages.filter((m) => m.kernelUs === null).map((m) => m.text)).toEqual(['3 devices found', '0 errors']);
    expect(messages.every((m) => m.hostUs === null)).toBe(true);
  });
});

describe('K9, K10: the unit of the kernel figure', () => {
  it('K9 ns >> 10 "usecs": e1000_init_module 216,532 x 1.024 = 221,729 us, at least the probe it ran', () => {
    const { rows, unit, notes } = initcallsOf(rw('K9-usecs-are-ns-shr-10.log'));
    const call = only(rows, 'e1000_init_module');
    const probe = only(rows, 'probe of 0000:00:19.0');
    expect(call.duration_us).toBe(221729);
    expect(probe.duration_us).toBe(221138);
    expect(call.duration_us!).toBeGreaterThanOrEqual(probe.duration_us!);
    expect(unit).toMatchObject({ unit: 'ns>>10', from: 'stamps' });
    expect(notes.join('\n')).toMatch(/x 1\.024/);
  });

  it('K9 (ours): decided from the banner, Linux 4.19 < 5.18', () => {
    const { rows, unit } = initcallsOf(rw('K9-banner-4.19.log'));
    expect(unit).toMatchObject({ unit: 'ns>>10', from: 'banner' });
    expect(only(rows, 'inet_init').duration_us).toBe(Math.round(9765 * 1.024));
    expect(only(rows, 'pci_subsys_init').duration_us).toBe(Math.round(1691 * 1.024));
  });

  it('K10 jiffy-quantised figures: flagged with both figures, ranked by the stamps (911, 191)', () => {
    const { rows, notes } = initcallsOf(rw('K10-jiffy-quantised-durations.log'));
    expect(rows.map((r) => [r.initcall, r.duration_us, r.stamps_us])).toEqual([['irq_sysfs_init', 0, 911], ['pci_driver_init', 3906, 191]]);
    for (const r of rows) expect(r.note).toMatch(/jiffy-quantised .* ranked by the printk stamps/);
    expect(notes.join('\n')).toMatch(/2 figures are whole jiffies \(4000 us.*2 ranked by the stamps/);
  });

  it('K10 (ours): a 5.18+ kernel at HZ=1000 before the switch; after the switch nothing is flagged', () => {
    const { rows } = initcallsOf(rw('K10-jiffies-hz1000-then-switch.log'));
    expect(rows.map((r) => [r.initcall, r.duration_us, r.stamps_us ?? null])).toEqual([
      ['late_init_c', 1000, null], ['early_init_b', 2000, 205], ['early_init_a', 0, 1713],
    ]);
    expect(only(rows, 'late_init_c').note).toBeUndefined();
    // 1,713 us of stamps is more than figure + one jiffy (1 ms at HZ=1000): the stamps hold console output.
    expect(only(rows, 'early_init_a').note).toMatch(/ranked by the kernel's figure/);
    expect(only(rows, 'early_init_b').note).toMatch(/ranked by the printk stamps/);
  });
});

describe('K11: module initcalls run by modprobe', () => {
  it('K11 0 us before userspace; the initcall belongs to pid 11258', () => {
    const { rows, summary, notes } = initcallsOf(rw('K11-module-initcall-counted-before-userspace.log'));
    expect(only(rows, 'e1000_init_module').pid).toBe(11258);
    expect(summary.top_level_sum_us).toBe(0);
    expect(notes.join('\n')).toMatch(/pid 11258: modprobe/);
  });

  it('K11 (ours): built-in initcalls count, modprobe ones (before "Freeing" was seen) do not', () => {
    const { summary } = initcallsOf(rw('K11-builtin-and-modprobe.log'));
    expect(summary.top_level_sum_us).toBe(2911);
  });
});

describe('shared/robustness consoles (issue 15)', () => {
  it('a figure past 2^53 is no duration, with a per-line reason; no Infinity or NaN anywhere', () => {
    const file = sample('robustness', 'console-huge-usecs.log');
    const { rows, notes } = initcallsOf(file);
    expect(only(rows, 'foo')).toMatchObject({ duration_us: null, ret: 0 });
    expect(only(rows, 'bar').duration_us).toBe(5);
    expect(notes.join('\n')).toMatch(/line 2: the figure 10000000\.\.\.\(\d+ digits\) usecs is not a usable number/);
    for (const format of ['json', 'csv', 'table']) {
      const r = runCli(['initcalls', file, '--format', format]);
      expect(r.status).toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/Infinity|NaN/);
    }
  });

  it('host stamps going backwards: no negative span, no percent above 100', () => {
    const file = sample('robustness', 'console-negative-stage.log');
    const { rows, missing } = stagesOf(file);
    for (const r of rows) {
      expect(r.duration_us).toBeGreaterThanOrEqual(0);
      expect(r.percent ?? 0).toBeLessThanOrEqual(100);
    }
    expect(rows.find((r) => r.name === 'kernel')).toMatchObject({ start_us: 500, end_us: 900 });
    expect(missing.find((m) => m.name === 'firmware')?.reason).toMatch(/ends before it begins.*host stamps go backwards/);
    const r = runCli(['stages', file, '--format', 'json']);
    expect(r.stdout).not.toMatch(/Infinity|NaN|-\d/);
    expect(r.stderr).toMatch(/host stamps go backwards at 1 line \(first at line 2\)/);
  });

  it('a kernel stamp too big for a double is no time, and said once', () => {
    const text = '[    0.100000] calling  foo+0x0/0x10 @ 1\n[99999999999999999999999.000000] initcall foo+0x0/0x10 returned 0 after 5 usecs\n';
    const a = new Initcalls();
    const p = new ConsoleParser(a);
    p.push(Buffer.from(text));
    p.end();
    expect(p.counts).toMatchObject({ badStamps: 1, firstBadStampLine: 2 });
    expect(JSON.stringify(a.result())).not.toMatch(/Infinity|NaN/);
  });
});

it('every realworld console sample reads the same at every chunk size', () => {
  for (const name of ['K1a-prefixed-stamp-lines-joined.log', 'K5-wrapped-return-line.log', 'K12-digit-line-taken-as-host-stamp.log', 'K3b-initcalls-journalctl.log']) {
    const whole = messagesOf(rw(name)).messages;
    const bytes: ConsoleMessage[] = [];
    feedConsole(rw(name), { message: (m) => bytes.push(m) }, 1);
    expect(bytes).toEqual(whole);
    expect(readFileSync(rw(name)).length).toBeGreaterThan(0);
  }
});

describe('issue 13 item 5: quiet boots and userspace that prints kernel-like lines', () => {
  // A real capture of this machine: QEMU TCG, Debian 6.1 cloud kernel, `quiet`, the appliance's default
  // workload (`ls /proc; cat /proc/version`): the only "Linux version" line is userspace's.
  const quiet = sample('console', 'qemu-tcg-6.1-appliance-quiet.log');
  const lines = readFileSync(quiet, 'utf8').split('\n');
  const stampOf = (re: RegExp): number => Number(lines.find((l) => re.test(l))!.split(' ')[0]);

  it('takes no span from the workload\'s `cat /proc/version`, and says why the kernel spans are missing', () => {
    const { rows, missing, notes } = stagesOf(quiet);
    const banner = stampOf(/Linux version/);
    expect(banner).toBeGreaterThan(stampOf(/BOOT_TIME:init_entry/));
    for (const r of rows) expect([r.start_us, r.end_us]).not.toContain(banner);
    expect(rows.find((r) => r.name === 'userspace')).toMatchObject({ start_us: stampOf(/BOOT_TIME:init_entry/), end_us: stampOf(/reboot: Power down/) });
    for (const name of ['firmware', 'kernel']) expect(missing.find((m) => m.name === name)?.reason).toMatch(/booted with `quiet`/);
    expect(notes).toContain('firmware: SeaBIOS 1.16.2-debian-1.16.2-1');
  });

  it('a `dmesg` replayed by userspace does not become the kernel\'s banner or start', () => {
    const at = lines.findIndex((l) => /BOOT_TIME:ready/.test(l));
    const replay = ['8700000.0 [    0.000000] Linux version 6.1.0-57-cloud-amd64 (replayed by dmesg)', '8700000.0 [    0.000000] Command line: console=ttyS0 quiet'];
    const text = [...lines.slice(0, at + 1), ...replay, ...lines.slice(at + 1)].join('\n');
    const s = new Stages();
    const p = new ConsoleParser(s);
    p.push(Buffer.from(text));
    p.end();
    const withReplay = s.result();
    expect(withReplay.rows).toEqual(stagesOf(quiet).rows);
  });

  it('the verbose real console: kernel:entry ends at the kernel\'s banner, not at the workload\'s', () => {
    const gz = readFileSync(sample('console', 'qemu-tcg-6.1-appliance-initcall-debug.log.gz'));
    const text = gunzipSync(gz).toString('utf8').split('\n');
    const banners = text.filter((l) => /Linux version/.test(l));
    expect(banners.length).toBeGreaterThanOrEqual(2); // the kernel's, and `cat /proc/version`
    const s = new Stages();
    const p = new ConsoleParser(s);
    p.push(gunzipSync(gz));
    p.end();
    const entry = s.result().rows.find((r) => r.name === 'kernel:entry')!;
    // The kernel's banner, placed where it was printed: no later than it reached the host (it was flushed late,
    // test/initcalls-real-console.test.ts has the figure), far before the workload's `cat /proc/version`.
    expect(entry.end_us).toBeLessThanOrEqual(Number(banners[0]!.split(' ')[0]));
    expect(entry.end_us).toBeGreaterThan(entry.start_us);
    expect(entry.end_us).toBeLessThan(Number(banners.at(-1)!.split(' ')[0]) - 1_000_000);
  });
});

describe('public consoles from bug reports and CI logs (samples/console/)', () => {
  it('kata-containers#3903 (ppc64le, QEMU 6.2): SLOF under a CI wall-clock prefix; kernel stamps read after it', () => {
    const { byName, notes, missing } = stagesOf(sample('console', 'kata-ppc64le-slof-ci-prefix.log'));
    expect(notes).toContain('firmware: SLOF');
    expect(byName['kernel']).toMatchObject({ start_us: 0, end_us: 958207 });
    // Firmware lines carry only a wall clock to the second: no span, and the reason says so.
    expect(missing.find((m) => m.name === 'firmware')?.reason).toMatch(/have no host stamp/);
  });

  it('libbpf/ci#110 (qemu-system-ppc64): QEMU\'s own warnings are not the firmware', () => {
    const s = new Stages();
    const text = readFileSync(sample('console', 'libbpf-ci-ppc64-slof-qemu-warnings.log'), 'utf8').split('\n').map((l, i) => `${1000 * (i + 1)} ${l}`).join('\n');
    const p = new ConsoleParser(s, { hostStamps: true });
    p.push(Buffer.from(text + '\n5000000 [    0.000000] Linux version 6.6.0\n'));
    p.end();
    const r = s.result();
    expect(r.notes).toContain('firmware: SLOF');
    // The first firmware line is SLOF's banner (line 4), not the two qemu-system-ppc64 warnings.
    expect(r.rows.find((x) => x.name === 'firmware')).toMatchObject({ start_us: 4000, end_us: 5000000 });
  });

  it('risc-v-getting-started-guide#29 (QEMU virt, riscv64): OpenSBI named, the kernel from its first stamped line', () => {
    const { byName, notes } = stagesOf(sample('console', 'riscv-opensbi-0.6-qemu-virt.log'));
    expect(notes).toContain('firmware: OpenSBI v0.6');
    expect(byName['kernel']).toBeUndefined(); // the excerpt ends before kernel init does
    const { messages } = messagesOf(sample('console', 'riscv-opensbi-0.6-qemu-virt.log'));
    expect(messages.filter((m) => m.kernelUs !== null).map((m) => m.text.slice(0, 20))).toEqual(['OF: fdt: Ignoring me', 'Linux version 5.9.0-', 'Zone ranges:']);
  });

  it('xvisor#159 (riscv guest under a hypervisor): a `[guest0/uart0] ` prefix on every chunk, unknown firmware', () => {
    const { messages } = messagesOf(sample('console', 'xvisor-riscv-guest-uart-prefix.log'));
    const kernel = messages.filter((m) => m.kernelUs !== null);
    expect(kernel.map((m) => m.text.split(':')[0])).toEqual(['Linux version 6.3.0-rc3-00067-g94c9241fa9fb (anup@anup-ubuntu-vm) (riscv64-unknown-linux-gnu-gcc (g1ea978e3066) 12.1.0, GNU ld (GNU Binutils) 2.39) #17 SMP Thu Mar 23 14', 'OF', 'Machine model', 'SBI specification v1.0 detected']);
    expect(stagesOf(sample('console', 'xvisor-riscv-guest-uart-prefix.log')).notes).toContain('firmware: unknown firmware');
  });
});
