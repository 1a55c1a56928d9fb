/**
 * What a verbose serial console costs a real boot, measured with `boot-trace benchmark`: the default
 * kernel and the appliance under QEMU (TCG), with and without `quiet`, the configuration without it
 * being the baseline of the same run.
 *
 *   node dist/bench/boot-benchmark.js
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../capture/engines/qemu/qemu.js';
import type { ConfigurationResult } from '../src/commands/benchmark.js';

const RUNS = 3;
const WARMUP = 1;

export async function run(): Promise<string> {
  const title = '## Boot benchmark: quiet vs verbose console (QEMU, TCG)';
  if (!findExecutable('qemu-system-x86_64')) return `${title}\n\nnot measured: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)\n`;
  const cli = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'src', 'cli.js');
  const out = mkdtempSync(join(tmpdir(), 'bt-bench-boot-'));
  const shown = ['benchmark', '--engine', 'qemu', '--runs', String(RUNS), '--warmup', String(WARMUP), '--vary', "'cmdline+=|quiet'", '--format', 'json'];
  const args = [...shown.map((a) => a.replace(/^'(.*)'$/, '$1')), '--out', out];
  try {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 1_200_000, maxBuffer: 64 << 20 });
    if (r.status !== 0) return `${title}\n\nnot measured: \`boot-trace ${shown.join(' ')}\` failed: ${r.stderr.trim().split('\n')[0]}\n`;
    const configs = JSON.parse(r.stdout) as ConfigurationResult[];
    const f = (v: number | null): string => (v === null ? '' : v.toFixed(1));
    const stage = (c: ConfigurationResult, name: string): string => f(c.stages.find((s) => s.name === name)?.mean_ms ?? null);
    return [
      title,
      '',
      `\`boot-trace ${shown.join(' ')}\` (default kernel and appliance, ${RUNS} runs after ${WARMUP} warm-up per`,
      'configuration; the first configuration, the default command line, is the baseline). Time to `BOOT_TIME:ready` in ms:',
      '',
      '| command line | mean | SD | min | median | max | change | /init: init_entry to ready | guest used / total MiB | QEMU peak RSS MiB |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|',
      ...configs.map((c) => {
        const init = ['BOOT_TIME:init_entry', 'BOOT_TIME:mounts_done', 'BOOT_TIME:init_ok'].map((n) => c.stages.find((s) => s.name === n)?.mean_ms ?? 0).reduce((a, b) => a + b, 0);
        return `| \`${c.cmdline}\` | ${f(c.mean_ms)} | ${f(c.sd_ms)} | ${f(c.min_ms)} | ${f(c.median_ms)} | ${f(c.max_ms)} | ${c.change_pct === null ? 'baseline' : `${c.change_pct.toFixed(1)}%`} | ${init.toFixed(1)} | ${c.guest_used_mib ?? ''} / ${c.guest_total_mib ?? ''} | ${f(c.peak_rss_mib)} |`;
      }),
      '',
      `Kernel stage (first kernel line to "Freeing unused kernel memory") without quiet: ${stage(configs[0]!, 'kernel')} ms; with quiet the kernel prints`,
      'nothing to time it by. The difference in the means is what the kernel\'s console output costs on the emulated UART under TCG.',
      '',
    ].join('\n');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(await run());
