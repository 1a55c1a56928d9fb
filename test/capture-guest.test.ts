/**
 * The demo guest build: cc into a cache keyed by the sources, reused on the next call, and a binary whose
 * work functions are the loops work.h's counts describe (checked on objdump's disassembly).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { demoGuestPath, guestSourceHash } from '../capture/guest/build.js';
import { loadKernelImage } from '../capture/boot/kernel-image.js';
import { symbolsFromElf } from '../src/symbols/elf-symbols.js';
import { demoConstants } from './capture-helpers.js';
import { describeNeeds } from './preconditions.js';

const haveCc = spawnSync('cc', ['--version']).status === 0;
const haveObjdump = spawnSync('objdump', ['--version']).status === 0;

describeNeeds(haveCc ? null : 'no C compiler `cc` (apt-get install build-essential)', 'demo guest build', () => {
  const cache = mkdtempSync(join(tmpdir(), 'boot-trace-guest-'));
  const saved = process.env.BOOT_TRACE_CACHE;
  process.env.BOOT_TRACE_CACHE = cache;
  afterAll(() => {
    if (saved === undefined) delete process.env.BOOT_TRACE_CACHE;
    else process.env.BOOT_TRACE_CACHE = saved;
    rmSync(cache, { recursive: true, force: true });
  });

  it('builds once into cache/guest/<source hash>/demo.elf, leaving no temporary file, then reuses it', () => {
    const path = demoGuestPath();
    expect(path).toBe(join(cache, 'guest', guestSourceHash(), 'demo.elf'));
    const mtime = statSync(path).mtimeMs;
    expect(readdirSync(join(cache, 'guest', guestSourceHash()))).toEqual(['demo.elf']);
    expect(demoGuestPath()).toBe(path);
    expect(statSync(path).mtimeMs).toBe(mtime);
  });

  it('is a vmlinux-like ELF: kernel loaded at 16 MiB, linked high, with the named functions', () => {
    const path = demoGuestPath();
    const image = loadKernelImage(readFileSync(path), path);
    expect(image.kind).toBe('elf');
    expect(image.entry).toBe(0x1000000);
    expect(image.segments.map((s) => s.gpa).sort((a, b) => a - b)).toEqual([demoConstants().USER_BASE, 0x1000000]);
    const syms = symbolsFromElf(image.elf!)!;
    for (const name of ['start_kernel', 'work_small', 'work_medium', 'work_nested', 'entry_SYSCALL_64', 'do_syscall_64', '__x64_sys_getpid', '__x64_sys_write']) {
      expect(syms.resolve(name), name).toBeGreaterThanOrEqual(0xffffffff81000000n);
    }
    // The user code has no symbol: it shows as a bare address.
    expect(syms.describe(BigInt(demoConstants().USER_BASE))).toBe(demoConstants().USER_BASE!.toString(16));
  });

  it('has work functions shaped as work.h counts them', (ctx) => {
    if (!haveObjdump) ctx.skip('`objdump` not found (apt-get install binutils)');
    const c = demoConstants();
    const dis = (fn: string): string[] => {
      const out = spawnSync('objdump', ['-d', `--disassemble=${fn}`, demoGuestPath()], { encoding: 'utf8' }).stdout;
      return out.split('\n').filter((l) => /^\s*[0-9a-f]+:\t/.test(l)).map((l) => l.split('\t')[2]!.trim().replace(/\s+/g, ' '));
    };
    const loop = (iters: number): RegExp[] => [new RegExp(`^mov \\$0x${iters.toString(16)},%ecx$`), /^dec %ecx$/, /^jne /];
    const small = dis('work_small');
    expect(small).toHaveLength(4);
    loop(c.WORK_SMALL_ITERS!).forEach((re, i) => expect(small[i]).toMatch(re));
    expect(small[3]).toBe('ret');
    const medium = dis('work_medium');
    loop(c.WORK_MEDIUM_ITERS!).forEach((re, i) => expect(medium[i]).toMatch(re));
    const nested = dis('work_nested');
    expect(nested).toHaveLength(3 + c.WORK_NESTED_SMALL_CALLS! + 1);
    loop(c.WORK_NESTED_ITERS!).forEach((re, i) => expect(nested[i]).toMatch(re));
    expect(nested.filter((l) => /^call .*<work_small>$/.test(l))).toHaveLength(c.WORK_NESTED_SMALL_CALLS!);
  });
});
