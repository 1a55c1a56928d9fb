/**
 * The ground truth for the kallsyms decoder: /proc/kallsyms as the running kernel prints it, taken by
 * booting the kernel under QEMU TCG with the appliance and a workload that cats it to the console.
 * `nokaslr` fixes the addresses; kptr_restrict=0 (as root) makes the kernel print them instead of zeros.
 * The dump is cached in cacheDir('kallsyms-dumps')/<sha256 of the kernel>.txt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../src/atomic-write.js';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cacheDir } from '../../src/cache.js';
import { messageOf, UserError } from '../../src/errors.js';
import { buildAppliance } from '../appliance/appliance.js';
import { bootQemuTcg } from '../appliance/qemu-tcg.js';
import { readKernelFile, sha256Hex } from './decompress.js';

const BEGIN = '---KALLSYMS-BEGIN---';
const END = '---KALLSYMS-END---';

/**
 * gzip + base64 because the emulated UART is the bottleneck: 3.6 MB of text take ~60 s through it,
 * the ~0.9 MB of base64 about a quarter of that.
 */
export const KALLSYMS_WORKLOAD = `echo 0 > /proc/sys/kernel/kptr_restrict; echo ${BEGIN}; gzip -c /proc/kallsyms | base64; echo ${END}`;

/** /proc/kallsyms of `kernel` (a bzImage QEMU can boot), from the cache or a fresh QEMU TCG boot. */
export async function procKallsymsDump(kernel: string, opts: { timeoutMs?: number } = {}): Promise<{ text: string; cached: boolean; ms: number }> {
  const file = join(cacheDir('kallsyms-dumps'), `${sha256Hex(readKernelFile(kernel))}.txt`);
  if (existsSync(file)) return { text: readFileSync(file, 'latin1'), cached: true, ms: 0 };
  const initrd = await buildAppliance({ workload: KALLSYMS_WORKLOAD });
  const r = await bootQemuTcg({
    kernel,
    initrd,
    // quiet + loglevel=0: no kernel messages interleaved with the dump on the console.
    append: 'console=ttyS0 nokaslr panic=-1 quiet loglevel=0',
    timeoutMs: opts.timeoutMs ?? 600_000,
  });
  const text = r.console.replace(/\r\n/g, '\n');
  const b = text.indexOf(`${BEGIN}\n`);
  const e = text.indexOf(`${END}\n`);
  if (b < 0 || e < b) {
    throw new UserError(`${kernel}: no complete /proc/kallsyms dump on the QEMU console (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${text.slice(-300)}`);
  }
  let dump: string;
  try {
    dump = gunzipSync(Buffer.from(text.slice(b + BEGIN.length + 1, e).replace(/\s+/g, ''), 'base64')).toString('latin1');
  } catch (err) {
    throw new UserError(`${kernel}: the /proc/kallsyms dump from the QEMU console does not decode (${messageOf(err)})`);
  }
  writeFileAtomic(file, dump, 'the kallsyms cache', 'latin1');
  return { text: dump, cached: false, ms: r.ms };
}
