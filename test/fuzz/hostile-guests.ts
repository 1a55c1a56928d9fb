/**
 * Hostile test guests: tiny freestanding x86-64 programs that do what a broken or malicious guest does to
 * a VMM. Each is built with the machine's `cc` at first use into cacheDir('guest', 'hostile-<hash>') (as
 * capture/guest/build.ts builds the demo guest), linked at physical 0x1000000 and entered there in 64-bit
 * mode by the KVM engine, with the first 4 GiB identity-mapped (capture/boot/page-tables.ts) and RAM below
 * 256 MiB, so 0x20000000 and up is no memory at all: MMIO.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { cacheDir } from '../../src/cache.js';
import { CLI, ROOT } from './paths.js';

export interface HostileGuest {
  name: string;
  /** What it does, for test names. */
  does: string;
  /** GNU assembler source; `_start` is the entry. */
  source: string;
  /** --timeout for its capture, seconds. */
  timeout: number;
  /** The stop reasons (profile.json exit.reason) it may end with. */
  stops: string[];
  /** How long the capture may take, seconds (its timeout and start-up, or less when it should stop by itself). */
  within: number;
}

/** The i8042 reset (port 0x64, command 0xfe): how a guest that is done asks to end, and a named stop. */
const RESET = `
	mov	$0xfe, %al
	out	%al, $0x64
9:	jmp	9b
`;

export const HOSTILE_GUESTS: HostileGuest[] = [
  {
    name: 'every-port',
    does: 'reads and writes every I/O port at 8, 16 and 32 bits, then 64 KiB of rep outsb/insb on the serial port',
    source: `
_start:
	mov	$0x1800000, %rsp
	xor	%edx, %edx
1:	inb	%dx, %al
	inw	%dx, %ax
	inl	%dx, %eax
	xor	%eax, %eax
	cmp	$0x64, %edx		/* 0 to the i8042 command port is harmless, but keep the reset for the end */
	je	2f
	outb	%al, %dx
	outw	%ax, %dx
	outl	%eax, %dx
2:	inc	%edx
	cmp	$0x10000, %edx
	jne	1b
	mov	$0x3f8, %dx
	mov	$0x1000000, %rsi
	mov	$65536, %rcx
	rep outsb
	mov	$0x3f8, %dx
	mov	$0x1900000, %rdi
	mov	$65536, %rcx
	rep insb
${RESET}`,
    timeout: 60,
    stops: ['reset'],
    within: 60,
  },
  {
    name: 'serial-flood',
    does: 'writes "A" to the serial port forever, never a newline',
    source: `
_start:
	mov	$0x3f8, %dx
	mov	$0x41, %al
1:	outb	%al, %dx
	jmp	1b
`,
    timeout: 4,
    stops: ['timeout'],
    within: 15,
  },
  {
    name: 'unmapped-mmio',
    does: 'reads and writes 64 KiB of physical addresses where there is no memory, and the IOAPIC/HPET/LAPIC pages',
    source: `
_start:
	mov	$0x1800000, %rsp
	mov	$0x20000000, %rax
	mov	$0x20010000, %rcx
1:	mov	(%rax), %rbx
	mov	%rbx, (%rax)
	movb	%bl, 3(%rax)
	add	$64, %rax
	cmp	%rcx, %rax
	jne	1b
	mov	$0xfec00000, %rax
	mov	(%rax), %ebx
	movl	$0xffffffff, (%rax)
	mov	$0xfed00000, %rax
	mov	(%rax), %ebx
	movl	$0xffffffff, 0x10(%rax)
	mov	$0xfee00000, %rax
	mov	0x20(%rax), %ebx
${RESET}`,
    timeout: 60,
    stops: ['reset'],
    within: 60,
  },
  {
    name: 'triple-fault',
    does: 'loads an empty IDT and executes ud2: #UD, #GP, #DF, triple fault',
    source: `
_start:
	lidt	idt(%rip)
	ud2
	.balign 16
idt:	.word	0
	.quad	0
`,
    timeout: 30,
    stops: ['shutdown'],
    within: 15,
  },
  {
    name: 'hlt-if0',
    does: 'clears IF and halts: nothing can wake it',
    source: `
_start:
	cli
	hlt
1:	jmp	1b
`,
    timeout: 10,
    stops: ['halt'],
    within: 5,
  },
  {
    name: 'endless-loop',
    does: 'jumps to itself forever',
    source: `
_start:
1:	jmp	1b
`,
    timeout: 3,
    stops: ['timeout'],
    within: 15,
  },
];

const CFLAGS = ['-nostdlib', '-static', '-no-pie', '-Wl,--build-id=none', '-Wl,-Ttext=0x1000000', '-Wl,-z,noexecstack'];

/** The guest's ELF, built at first use; throws with cc's first error line if it does not build. */
export function buildHostileGuest(g: HostileGuest): string {
  const source = `\t.text\n\t.globl _start\n${g.source}`;
  const hash = createHash('sha256').update(source).update(CFLAGS.join(' ')).digest('hex').slice(0, 16);
  const dir = cacheDir('guest', `hostile-${hash}`);
  const elf = join(dir, `${g.name}.elf`);
  if (existsSync(elf)) return elf;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `${g.name}.S`);
  writeFileSync(src, source);
  const tmp = `${elf}.tmp-${process.pid}`;
  const r = spawnSync(process.env.CC || 'cc', [...CFLAGS, '-o', tmp, src], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`cannot build hostile guest ${g.name}: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n')[0]}`);
  renameSync(tmp, elf);
  return elf;
}

/** Every file under `dir`, recursively, relative to it. */
export function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Files of the repository (outside dependencies, builds and test output) changed since `since` (ms). */
export function repoChangedSince(since: number): string[] {
  const skip = new Set(['node_modules', '.git', 'dist', 'dist-base', 'test-output']);
  return readdirSync(ROOT, { withFileTypes: true })
    .filter((e) => !skip.has(e.name))
    .flatMap((e) => (e.isDirectory() ? files(join(ROOT, e.name)).map((f) => join(e.name, f)) : [e.name]))
    .filter((f) => statSync(join(ROOT, f)).mtimeMs > since);
}

/**
 * Captures the guest with the built CLI (`capture --kernel X.elf --engine kvm --timeout N --out DIR`) in a
 * sandbox: an empty working folder, HOME and TMPDIR, which must stay empty (`stray` lists what appeared).
 */
export function runHostileGuest(g: HostileGuest) {
  const elf = buildHostileGuest(g);
  const sandbox = mkdtempSync(join(tmpdir(), `bt-hostile-${g.name}-`));
  const [cwd, home, tmp, out] = ['cwd', 'home', 'tmp', 'out'].map((d) => join(sandbox, d)) as [string, string, string, string];
  for (const d of [cwd, home, tmp]) mkdirSync(d);
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'capture', '--kernel', elf, '--engine', 'kvm', '--timeout', String(g.timeout), '--out', out, '--no-summary'], {
    cwd, encoding: 'utf8', timeout: (g.timeout + 60) * 1000,
    // The cache stays where it is (the guest was built there); everything else a process might write to is fresh.
    env: { ...process.env, HOME: home, TMPDIR: tmp, XDG_CACHE_HOME: undefined, BOOT_TRACE_CACHE: cacheDir() },
  });
  const seconds = (Date.now() - started) / 1000;
  const profile = existsSync(join(out, 'profile.json')) ? (JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8')) as { exit: { reason: string; detail: string } }) : null;
  return { r, seconds, profile, out, stray: [cwd, home, tmp].flatMap((d) => files(d).map((f) => join(d, f))), started };
}
