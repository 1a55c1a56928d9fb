/**
 * Host-side kernel decompression and kallsyms decoding on the real Debian cloud kernel in
 * cacheDir('kernels'): our decoder for each format the kernel build can use (the vmlinux recompressed
 * the way scripts/Makefile.lib does it) against the format's own command-line tool as the baseline,
 * measured in the same run; then the kallsyms decode.
 *
 *   node dist/bench/kernel-decompress.js     (or: npm run bench -- kernel-decompress)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { decompressBzImage, decompressStream, sha256Hex } from '../capture/kernel/decompress.js';
import { cachedKernels } from '../capture/kernel/discover.js';
import { decodeKallsyms } from '../capture/kernel/kallsyms.js';
import { readPayload, type PayloadFormat } from '../capture/kernel/payload.js';

/** How the kernel's build compresses (scripts/Makefile.lib, scripts/xz_wrap.sh); zstd at -19, not -22 --ultra, to keep the run short. */
const RECIPES: { format: PayloadFormat; compress: [string, string[]]; decompress: [string, string[]] }[] = [
  { format: 'gzip', compress: ['gzip', ['-9', '-n', '-c']], decompress: ['gzip', ['-dc']] },
  { format: 'lz4', compress: ['lz4', ['-l', '-12', '-c']], decompress: ['lz4', ['-dc']] },
  { format: 'zstd', compress: ['zstd', ['-19', '-q', '-c']], decompress: ['zstd', ['-dcq']] },
  { format: 'xz', compress: ['xz', ['--check=crc32', '--x86', '--lzma2=dict=32MiB', '-c']], decompress: ['xz', ['-dc']] },
];

const have = (tool: string): boolean => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeOurs(data: Buffer, format: PayloadFormat, size: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const out = await decompressStream(data, format, 'bench', size);
    ms.push(performance.now() - t0);
    if (out.length !== size) throw new Error(`${format}: ${out.length} bytes, expected ${size}`);
  }
  return median(ms);
}

function timeTool(file: string, [cmd, args]: [string, string[]]): number {
  const ms: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = spawnSync('sh', ['-c', `${cmd} ${args.join(' ')} '${file}' > /dev/null`]);
    ms.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  }
  return median(ms);
}

export async function run(): Promise<string> {
  const kernel = cachedKernels().at(-1);
  const head = '## Kernels: host-side decompression and kallsyms\n\nCommand: `node dist/bench/kernel-decompress.js`.';
  if (!kernel) return `${head}\n\nNot measured: no Debian cloud kernel in the cache (\`boot-trace kernels --fetch\`).\n`;
  const buf = readFileSync(kernel.path);
  const payload = readPayload(buf, kernel.path);
  const { vmlinux } = await decompressBzImage(buf, kernel.path);
  const work = join(tmpdir(), `boot-trace-bench-${sha256Hex(buf).slice(0, 16)}`);
  mkdirSync(work, { recursive: true });
  const raw = join(work, 'vmlinux');
  if (!existsSync(raw)) writeFileSync(raw, vmlinux);
  const mb = vmlinux.length / 1e6;

  const rows: string[] = [];
  for (const r of RECIPES) {
    if (!have(r.compress[0])) {
      rows.push(`| ${r.format} | not measured: no \`${r.compress[0]}\` | | | |`);
      continue;
    }
    let file = join(work, `vmlinux.${r.format}`);
    let data: Buffer;
    if (r.format === payload.format) {
      // The kernel's own payload, exactly as shipped.
      data = payload.data;
      file = join(work, `payload.${r.format}`);
      if (!existsSync(file)) writeFileSync(file, data);
    } else {
      if (!existsSync(file)) {
        const c = spawnSync('sh', ['-c', `${r.compress[0]} ${r.compress[1].join(' ')} '${raw}' > '${file}.tmp' && mv '${file}.tmp' '${file}'`]);
        if (c.status !== 0) throw new Error(`${r.compress[0]} failed: ${c.stderr}`);
      }
      data = readFileSync(file);
    }
    const ours = await timeOurs(data, r.format, vmlinux.length);
    const tool = timeTool(file, r.decompress);
    const label = r.format === payload.format ? `${r.format} (the shipped payload)` : r.format;
    rows.push(`| ${label} | ${(data.length / 1e6).toFixed(1)} MB | ${ours.toFixed(0)} ms (${(mb / (ours / 1000)).toFixed(0)} MB/s) | ${tool.toFixed(0)} ms | ${(ours / tool).toFixed(1)}x |`);
  }

  const t0 = performance.now();
  const syms = decodeKallsyms(vmlinux, kernel.path);
  const kallsymsMs = performance.now() - t0;

  return `${head}

Kernel: ${kernel.release} (${(buf.length / 1e6).toFixed(1)} MB bzImage, ${payload.format} payload, ${mb.toFixed(1)} MB ELF vmlinux).
Each format decompresses that vmlinux; the baseline is the format's own C tool in the same run
(\`sh -c 'TOOL -dc FILE > /dev/null'\`, process start included). Median of 3.

| format | compressed | boot-trace (in process) | C tool (baseline) | ratio |
|---|---|---|---|---|
${rows.join('\n')}

kallsyms: ${syms.length.toLocaleString('en-US')} symbols located and decoded in ${kallsymsMs.toFixed(0)} ms.

For scale: the kernel's own decompressor spends about 1-2 minutes of guest time on the same LZ4 payload
under this machine's software-backed /dev/kvm (docs/kernels.md), against well under a second on the host.
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((s) => process.stdout.write(s));
}
