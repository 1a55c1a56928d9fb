/**
 * A real kernel under the KVM engine: what host-side decompression saves. The default kernel (host's,
 * cached or Debian's cloud kernel) is captured in run mode twice, `--decompress host` (the payload
 * decompressed on the host, the ELF vmlinux entered at startup_64) and `--decompress guest` (the bzImage,
 * whose own decompressor runs in the guest: the baseline, measured in the same run). For each: host
 * microseconds from VM creation to the "Linux version" banner on the console and to the stop, how it
 * stopped, and the VMM's host setup time (profile.json `total - boot_wait`).
 *
 *   node dist/bench/linux-boot.js
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../capture/guest/build.js';
import { findKernel } from '../capture/kernel/discover.js';

/** Seconds each capture may run: the in-guest decompression alone takes 1-2 minutes on this machine's KVM. */
const TIMEOUT_S = { host: 200, guest: 400 } as const;

interface Result {
  mode: 'host' | 'guest';
  bannerUs: number | null;
  stopUs: number;
  reason: string;
  where: string;
  setupUs: number;
  kernelLoadUs: number;
  booted: string;
  wallS: number;
}

function captureOnce(kernel: string, mode: 'host' | 'guest', dir: string): Result {
  const out = join(dir, mode);
  const cli = join(repoRoot(), 'dist', 'src', 'cli.js');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, 'capture', '--engine', 'kvm', '--kernel', kernel, '--decompress', mode, '--mode', 'run',
    '--timeout', String(TIMEOUT_S[mode]), '--no-summary', '--out', out], { encoding: 'utf8', timeout: (TIMEOUT_S[mode] + 60) * 1000 });
  const wallS = (performance.now() - t0) / 1000;
  let p: any;
  try {
    p = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
  } catch {
    throw new Error(`capture --decompress ${mode} wrote no profile.json (status ${r.status}): ${r.stderr}`);
  }
  const consoleText = readFileSync(join(out, 'console.log'), 'utf8');
  const banner = /^(\d+(?:\.\d)?) .*Linux version /m.exec(consoleText);
  return {
    mode,
    bannerUs: banner ? Number(banner[1]) : null,
    stopUs: p.phases.boot_wait,
    reason: p.exit.reason,
    where: p.exit.symbol ?? '',
    setupUs: p.phases.total - p.phases.boot_wait,
    kernelLoadUs: p.phases.kernel_load,
    booted: p.setup.decompress.booted,
    wallS,
  };
}

const s = (us: number | null): string => (us === null ? 'no banner' : `${(us / 1e6).toFixed(1)} s`);
const msf = (us: number): string => `${(us / 1000).toFixed(1)} ms`;

export async function run(): Promise<string> {
  let kernel: string;
  try {
    kernel = (await findKernel({ log: () => {} })).path;
  } catch (err) {
    return `## A real kernel under KVM: host vs guest decompression\n\nNot measured: no kernel (${(err as Error).message}).\n`;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-linux-boot-'));
  try {
    // Host first: it also fills the vmlinux and symbol caches, which the guest run then does not need.
    const host = captureOnce(kernel, 'host', dir);
    const guest = captureOnce(kernel, 'guest', dir);
    const saved = host.bannerUs !== null && guest.bannerUs !== null ? guest.bannerUs - host.bannerUs : null;
    const row = (r: Result): string =>
      `| \`--decompress ${r.mode}\` (${r.mode === 'host' ? 'ELF vmlinux' : 'bzImage'}, ${(statSync(r.booted).size / 1e6).toFixed(1)} MB) | ${s(r.bannerUs)} | ${s(r.stopUs)} | ${r.reason}${r.where ? ` in ${r.where.split(' ')[0]}` : ''} | ${msf(r.setupUs)} | ${msf(r.kernelLoadUs)} |`;
    return [
      '## A real kernel under KVM: host vs guest decompression',
      '',
      `\`node dist/bench/linux-boot.js\`: \`boot-trace capture --engine kvm --kernel ${kernel.split('/').pop()} --decompress host|guest --mode run\`, one run each`,
      '(the guest run is the baseline: the kernel decompresses itself, as every bootloader has it do). Times are host time',
      'since VM creation (console.log stamps, profile.json `boot_wait`); host setup is `total - boot_wait`.',
      '',
      '| capture | "Linux version" banner | stop | how it stopped | host setup | of which kernel_load |',
      '|---|---:|---:|---|---:|---:|',
      row(host),
      row(guest),
      '',
      saved !== null
        ? `Host-side decompression brings the banner ${(saved / 1e6).toFixed(1)} s earlier (${(guest.bannerUs! / host.bannerUs!).toFixed(1)}x). Its own cost is paid once per kernel and cached (see docs/kernels.md: 0.25-0.65 s for this LZ4 payload); reading the 53 MB vmlinux from the cache and copying its segments is the larger kernel_load above, against the bzImage read straight into guest RAM.`
        : 'One of the runs printed no banner within its timeout, so no saving is computed.',
      `Wall time of the two captures: ${host.wallS.toFixed(0)} s and ${guest.wallS.toFixed(0)} s. The stop is this machine's software-backed KVM giving up ([kvm-facts.md](kvm-facts.md)); on hardware KVM the same kernel boots the appliance and powers off.`,
      '',
    ].join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  run().then((out) => process.stdout.write(out), (err) => {
    process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
    process.exit(1);
  });
}
