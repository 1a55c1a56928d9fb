/**
 * Builds tiny freestanding x86-64 ELF files with the machine's `cc` for the ELF and symbol tests:
 * a low-linked one (VMA = LMA = 0x200000) and one linked like vmlinux (VMA 0xffffffff81000000,
 * LMA 0x1000000). Returns null when there is no cc (the tests then skip with a warning).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GUEST_C = `
int counter = 5;
long table[64];
__attribute__((noinline)) static int helper(int x) { return x * 3 + counter; }
__attribute__((noinline)) int compute(int x) { int s = 0; for (int i = 0; i < x; i++) s += helper(i); return s; }
void _start(void) { table[1] = compute(10); for (;;) __asm__ volatile("hlt"); }
`;

const HIGH_LDS = `
ENTRY(_start)
SECTIONS {
  . = 0xffffffff81000000;
  .text : AT(0x1000000) { *(.text*) }
  . = ALIGN(4096);
  .data : AT(ADDR(.data) - 0xffffffff80000000) { *(.data*) }
  .bss : AT(ADDR(.bss) - 0xffffffff80000000) { *(.bss*) *(COMMON) }
}
`;

export function haveCc(): boolean {
  return spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
}

let cached: { low: Buffer; high: Buffer; dir: string } | null | undefined;

/** Build both guests once per test file; null without cc. */
export function buildGuests(): { low: Buffer; high: Buffer; dir: string } | null {
  if (cached !== undefined) return cached;
  if (!haveCc()) return (cached = null);
  const dir = join(tmpdir(), `boot-trace-elf-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'guest.c'), GUEST_C);
  writeFileSync(join(dir, 'high.lds'), HIGH_LDS);
  const common = ['-O1', '-ffreestanding', '-fno-pic', '-fno-asynchronous-unwind-tables', '-fno-stack-protector',
    '-mno-red-zone', '-nostdlib', '-static', '-no-pie', '-Wl,--build-id=none'];
  execFileSync('cc', [...common, '-Wl,-Ttext=0x200000', '-o', join(dir, 'low.elf'), join(dir, 'guest.c')]);
  execFileSync('cc', [...common, '-mcmodel=kernel', '-T', join(dir, 'high.lds'), '-o', join(dir, 'high.elf'), join(dir, 'guest.c')]);
  cached = { low: readFileSync(join(dir, 'low.elf')), high: readFileSync(join(dir, 'high.elf')), dir };
  return cached;
}

/** `nm` output for a built file (for cross-checking symbol values), or null without nm. */
export function nm(file: string, args: string[] = []): string | null {
  const r = spawnSync('nm', [...args, file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}
