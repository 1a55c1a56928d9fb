/**
 * What the serial console costs a boot under QEMU (TCG): `boot-trace uart` on the console.log of a
 * verbose boot (initcall_debug ignore_loglevel, ~1,500 lines), against a baseline measured in the same
 * run: the same kernel and appliance booted with `quiet`. The estimate (us/char x the extra characters)
 * is set against the measured difference in time to BOOT_TIME:ready (host stamps).
 *
 *   node dist/bench/console-uart.js
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleParser } from '../analyzers/console-lines.js';
import { UartCost, type UartRow } from '../analyzers/uart.js';
import { buildAppliance } from '../capture/appliance/appliance.js';
import { capture } from '../capture/engines/kvm/capture.js';
import { captureWithQemu, findExecutable } from '../capture/engines/qemu/qemu.js';
import { findKernel } from '../capture/kernel/discover.js';

const RUNS = 3;
const VERBOSE = 'console=ttyS0 initcall_debug ignore_loglevel panic=-1 reboot=t';
const QUIET = 'console=ttyS0 quiet panic=-1 reboot=t';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (us: number): string => (us / 1000).toFixed(0);

interface Boot {
  readyUs: number;
  chars: number;
  lines: number;
  uart: UartRow | null;
}

function uartOf(file: string): { lines: number; chars: number; row: UartRow | null } {
  const uart = new UartCost();
  const parser = new ConsoleParser(uart);
  parser.push(readFileSync(file));
  parser.end();
  const res = uart.result();
  return { lines: uart.lines, chars: uart.chars, row: 'row' in res ? res.row : null };
}

/** The KVM engine's console on this machine: the demo guest (a real kernel prints ~4 lines in 40 s here). */
async function kvmSection(dir: string): Promise<string[]> {
  if (!existsSync('/dev/kvm')) return ['KVM engine: not measured (no /dev/kvm).'];
  const r = await capture({ guest: 'demo', outDir: dir, timeoutS: 60, progress: false });
  const u = uartOf(r.consoleFile);
  const fit = u.row ? `${u.row.us_per_char.toFixed(2)} us/char [95% CI ${u.row.ci95_low.toFixed(2)}, ${u.row.ci95_high.toFixed(2)}]` : 'no fit';
  return [
    `KVM engine (\`boot-trace capture --guest demo\`, each serial byte one port-I/O exit of ~7.5 us here): ${u.lines} lines,`,
    `${u.chars} characters: ${fit}. Too few lines for a useful interval; on this machine a real kernel under the`,
    'KVM engine prints only its first few lines (in-guest decompression takes most of a minute), so the UART cost',
    'of a full boot is measured under QEMU above.',
  ];
}

async function boot(kernel: string, initrd: string, cmdline: string, dir: string): Promise<Boot> {
  const r = await captureWithQemu({ kernel, initrd, cmdline, memoryMiB: 512, outDir: dir, timeoutS: 300, accel: 'tcg' });
  if (r.profile.exit.reason !== 'shutdown') throw new Error(`QEMU boot did not power off: ${r.profile.exit.detail}`);
  const text = readFileSync(r.consoleFile);
  const ready = /^(\d+\.\d) .*BOOT_TIME:ready:/m.exec(text.toString('utf8'));
  if (!ready) throw new Error(`no BOOT_TIME:ready line in ${r.consoleFile}`);
  const u = uartOf(r.consoleFile);
  return { readyUs: Number(ready[1]), chars: u.chars, lines: u.lines, uart: u.row };
}

export async function run(): Promise<string> {
  const title = '## Serial console cost (QEMU TCG)';
  if (!findExecutable('qemu-system-x86_64')) return `${title}\n\nnot available: qemu-system-x86_64 is not installed\n`;
  const kernel = (await findKernel({ log: () => {} })).path;
  const initrd = await buildAppliance({ log: () => {} });
  const work = mkdtempSync(join(tmpdir(), 'boot-trace-bench-uart-'));
  try {
    const verbose: Boot[] = [];
    const quiet: Boot[] = [];
    // Interleaved, so load from other processes hits both alike.
    for (let i = 0; i < RUNS; i++) {
      verbose.push(await boot(kernel, initrd, VERBOSE, join(work, `verbose-${i}`)));
      quiet.push(await boot(kernel, initrd, QUIET, join(work, `quiet-${i}`)));
    }
    const fits = verbose.map((b) => b.uart).filter((u): u is UartRow => u !== null);
    const perChar = median(fits.map((f) => f.us_per_char));
    const extraChars = median(verbose.map((b) => b.chars)) - median(quiet.map((b) => b.chars));
    const measured = median(verbose.map((b) => b.readyUs)) - median(quiet.map((b) => b.readyUs));
    const rows = verbose.map((b, i) => {
      const u = b.uart;
      const fit = u ? `${u.us_per_char.toFixed(2)} [${u.ci95_low.toFixed(2)}, ${u.ci95_high.toFixed(2)}] | ${u.lines_per_ms?.toFixed(2) ?? "-"}` : 'no fit | -';
      return `| ${i + 1} | ${b.lines} | ${b.chars.toLocaleString('en-US')} | ${fit} | ${ms(b.readyUs)} | ${ms(quiet[i]!.readyUs)} (${quiet[i]!.lines} lines) |`;
    });
    return [
      title,
      '',
      `Command: \`node dist/bench/console-uart.js\` (${RUNS} boots each, interleaved): the default kernel and appliance under`,
      `\`qemu-system-x86_64 -accel tcg\`, console.log stamped by the QEMU engine, \`boot-trace uart\` on each verbose console.`,
      `Verbose: \`${VERBOSE}\`; baseline: \`${QUIET}\`.`,
      '',
      '| run | lines | chars | us/char [95% CI] | lines/ms | verbose: ms to ready | quiet: ms to ready |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `Median us/char ${perChar.toFixed(2)}; the verbose console sends ${extraChars.toLocaleString('en-US')} more characters, so the fit`,
      `predicts ${ms(perChar * extraChars)} ms more to BOOT_TIME:ready; measured (median verbose - median quiet): ${ms(measured)} ms`,
      '(initcall_debug also costs printk formatting and ring-buffer time that is not UART time, so the measured',
      'difference is an upper bound on the console\'s share). Under TCG the figure follows the host\'s load; libguestfs',
      'measured ~4 us/char under KVM.',
      '',
      ...(await kvmSection(join(work, 'kvm-demo'))),
      '',
    ].join('\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((s) => process.stdout.write(s), (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
