/**
 * Kernel files an attacker or a bad download could hand to `symbols` and `capture` (issue 15): >= 10,000
 * mutated setup headers, ELF and program/section headers and compressed payloads in process, then a sample
 * of refused ones through the CLI (one line, exit 1, no stack trace, nothing written to --out).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HDR } from '../capture/boot/bzimage.js';
import { loadKernelImage } from '../capture/boot/kernel-image.js';
import { decompressKernel } from '../capture/kernel/decompress.js';
import { cachedKernels } from '../capture/kernel/discover.js';
import { UserError } from '../src/errors.js';
import { buildGuests, haveCc } from './elf-fixture.js';
import { fuzzKernelHeaders, kernelBases } from './fuzz/kernel-fuzz.js';
import { runCli } from './helpers.js';

const kernel = cachedKernels().at(-1);

describe('kernel header fuzz', () => {
  it('12,000 mutated kernel files: capture\'s loader and the symbols decoder return whole results or a UserError', async (ctx) => {
    if (!haveCc()) ctx.skip('no cc to build the small vmlinux-like ELF: apt-get install gcc');
    if (!kernel) ctx.skip('no Debian kernel in the cache: scripts/setup.sh downloads one');
    const real = readFileSync(kernel!.path);
    const setup = Buffer.from(real.subarray(0, (real[HDR.setupSects]! + 1) * 512));
    const { vmlinux } = await decompressKernel(kernel!.path);
    const bases = kernelBases(buildGuests()!.high, setup, real, vmlinux);
    // gzip at least; xz, lzma, zstd and lz4 when their tools are installed (scripts/setup.sh installs them).
    expect(bases.map((b) => b.name)).toContain('bzImage-gzip');
    const c = await fuzzKernelHeaders(12_000, 1, bases);
    expect(c.inputs).toBe(12_000);
    expect({ crashes: c.crashes, hangs: c.hangs, wrong: c.wrong }, c.failures.join('\n\n')).toEqual({ crashes: 0, hangs: 0, wrong: 0 });
    // The mutations reach past the first checks: many files still load, and many payloads still decompress.
    expect(c.outcomes.loaded).toBeGreaterThan(1000);
    expect(c.outcomes.decompressed).toBeGreaterThan(1000);
  }, 300_000);

  it('refused kernels through the CLI: symbols and capture print one line, exit 1, write nothing', (ctx) => {
    if (!kernel) ctx.skip('no Debian kernel in the cache: scripts/setup.sh downloads one');
    if (!existsSync('/dev/kvm')) ctx.skip('no /dev/kvm: capture --engine kvm cannot be driven');
    const real = readFileSync(kernel!.path);
    const dir = mkdtempSync(join(tmpdir(), 'bt-fuzz-kernel-'));
    // One per check of the loader: the fields a corrupt or hostile file gets wrong.
    const cases: [string, (b: Buffer) => void][] = [
      ['boot-flag', (b) => b.writeUInt16LE(0x1234, HDR.bootFlag)],
      ['no-hdrs', (b) => b.write('XXXX', HDR.header, 'latin1')],
      ['old-protocol', (b) => b.writeUInt16LE(0x0201, HDR.version)],
      ['no-64-bit-entry', (b) => b.writeUInt16LE(0, HDR.xloadflags)],
      ['payload-past-end', (b) => b.writeUInt32LE(0x7fffffff, HDR.payloadLength)],
      ['init-size-0', (b) => b.writeUInt32LE(0, HDR.initSize)],
      ['setup-sects-255', (b) => (b[HDR.setupSects] = 255, b.writeUInt32LE(0x7fffffff, HDR.payloadOffset))],
      ['truncated', () => {}],
    ];
    for (const [name, mutate] of cases) {
      const b = Buffer.from(name === 'truncated' ? real.subarray(0, 0x300) : real);
      mutate(b);
      // The loader refuses it in process first: the CLI must say so in one line.
      expect(() => loadKernelImage(b, name), name).toThrow(UserError);
      const file = join(dir, `${name}.bzImage`);
      writeFileSync(file, b);
      const out = join(dir, `out-${name}`);
      for (const args of [['symbols', file], ['capture', '--kernel', file, '--engine', 'kvm', '--timeout', '5', '--out', out]]) {
        const r = runCli(args);
        expect(r.status, `${name}: ${args[0]}: ${r.stderr}`).toBe(1);
        expect(r.stderr.trim().split('\n'), `${name}: ${args[0]}`).toHaveLength(1);
        expect(r.stderr, `${name}: ${args[0]}`).toMatch(new RegExp(`^boot-trace: .*${name}\\.bzImage.*: `));
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      }
      expect(existsSync(out), `${name}: capture created --out for a refused kernel`).toBe(false);
    }
  });
});
