/**
 * `initcalls` and `stages` on a real console.log: the Debian 6.1 cloud kernel booting the appliance under
 * QEMU TCG with initcall_debug, recorded by the QEMU engine (samples/console/qemu-tcg-6.1-appliance-initcall-debug.log.gz).
 * The expected figures are taken from the text with plain regexes, independently of the analyzers.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { InitcallRow } from '../analyzers/initcalls.js';
import type { StageRow } from '../analyzers/stages.js';
import { cliJson, runCli, sample } from './helpers.js';

const file = sample('console', 'qemu-tcg-6.1-appliance-initcall-debug.log.gz');
const text = gunzipSync(readFileSync(file)).toString('utf8');
const lines = text.split('\n');
const stampOf = (re: RegExp): number => {
  const line = lines.find((l) => re.test(l));
  if (!line) throw new Error(`no line matches ${re}`);
  return Number(line.slice(0, line.indexOf(' ')));
};
const kernelStampOf = (re: RegExp): number => {
  const m = /\[ *(\d+)\.(\d{6})\]/.exec(lines.find((l) => re.test(l))!);
  return Number(m![1]) * 1e6 + Number(m![2]);
};

/**
 * Host time of kernel time 0: min over the kernel's stamped lines (before userspace's /init, whose `dmesg`
 * would replay) of host stamp - kernel stamp (docs/console-analyzers.md "Kernel lines written late").
 */
const kernelZero = (() => {
  let zero = Infinity;
  for (const l of lines) {
    if (/Run \/init as init process/.test(l)) break;
    const m = /^(\d+(?:\.\d+)?) \[ *(\d+)\.(\d{6})\]/.exec(l);
    if (m) zero = Math.min(zero, Number(m[1]) - (Number(m[2]) * 1e6 + Number(m[3])));
  }
  return Math.round(zero * 1000) / 1000;
})();

describe('a real QEMU TCG console', () => {
  it('gives one row per "initcall ... returned" line with the kernel\'s own figures', () => {
    const expected = [...text.matchAll(/\] initcall (\S+?)\+0x[0-9a-f]+\/0x[0-9a-f]+(?: \[\S+\])? returned (-?\d+) after (\d+) usecs/g)]
      .map((m) => `${m[1]} ${m[2]} ${m[3]}`).sort();
    const probes = [...text.matchAll(/\] probe of (\S+) returned (-?\d+) after (\d+) usecs/g)].map((m) => `probe of ${m[1]} ${m[2]} ${m[3]}`).sort();
    expect(expected.length).toBe(575);
    const r = runCli(['initcalls', file, '--top', '0', '--format', 'json']);
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.stdout) as InitcallRow[];
    const calls = rows.filter((x) => !x.initcall.startsWith('probe of '));
    expect(calls.map((x) => `${x.initcall} ${x.ret} ${x.duration_us}`).sort()).toEqual(expected);
    expect(rows.filter((x) => x.initcall.startsWith('probe of ')).map((x) => `${x.initcall} ${x.ret} ${x.duration_us}`).sort()).toEqual(probes);
    // Longest first, and the longest is the largest "after T usecs" in the file.
    const max = Math.max(...expected.map((e) => Number(e.split(' ')[2])));
    expect(rows[0]!.duration_us).toBe(max);
    // The summary's span: first calling -> "Freeing unused kernel image (initmem) memory", kernel clock.
    const span = kernelStampOf(/Freeing unused kernel image \(initmem\) memory/) - kernelStampOf(/\] calling {2}\S/);
    expect(r.stderr).toContain(`first calling -> "Freeing unused kernel memory" ${span.toLocaleString('en-US')} us`);
    expect(r.stderr).toContain(`total: ${expected.length} initcalls, ${probes.length} probes, 0 unfinished`);
  });

  it('places the stages at the host stamps of their lines', () => {
    const rows = Object.fromEntries(cliJson<StageRow[]>(['stages', file]).map((r) => [r.name, r]));
    expect(rows['firmware']).toMatchObject({ start_us: stampOf(/SeaBIOS \(version/), end_us: stampOf(/Probing EDD/) });
    // The banner was printed before the console registered and reached the host 577 ms later, in the burst
    // that flushed the buffered lines: kernel:entry ends at kernel time 0's host time, read from the live lines.
    expect(kernelZero).toBeLessThan(stampOf(/Linux version /) - 500_000);
    expect(rows['kernel:entry']).toMatchObject({ start_us: stampOf(/Probing EDD/), end_us: kernelZero });
    expect(rows['kernel:initcalls-before-userspace']).toMatchObject({
      start_us: Math.min(stampOf(/\] calling {2}\S/), Math.round((kernelZero + kernelStampOf(/\] calling {2}\S/)) * 1000) / 1000),
      end_us: stampOf(/Freeing unused kernel image \(initmem\) memory/),
    });
    expect(rows['userspace']).toMatchObject({ start_us: stampOf(/Run \/init as init process/), end_us: stampOf(/reboot: Power down/) });
    for (const [stage, next] of [['init_entry', 'mounts_done'], ['mounts_done', 'init_ok'], ['init_ok', 'ready'], ['ready', 'workload_done']]) {
      expect(rows[`BOOT_TIME:${stage}`]).toMatchObject({ start_us: stampOf(new RegExp(`BOOT_TIME:${stage}:`)), end_us: stampOf(new RegExp(`BOOT_TIME:${next}:`)) });
    }
    expect(rows['boot']).toMatchObject({ start_us: 0, end_us: Number(lines.at(-2)!.split(' ')[0]), percent: 100 });
  });
});
