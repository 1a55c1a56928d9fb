/**
 * Generates a realistic single-step boot trace for benchmarks: kernel-like function names (a few
 * thousand) on a fixed call graph, `name + offset` lines, bare user addresses, timer interrupts, and a
 * system call every ~50 events, in the 2016 traces' timestamp style (microseconds with 7 decimals).
 * Deterministic for a given seed.
 *
 *   node dist/bench/generate.js LINES [FILE]    (no FILE: stdout)
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mulberry32 } from '../src/random.js';

const SUBSYSTEMS = ['ext4', 'blk_mq', 'tcp', 'udp', 'ip', 'sched', 'rcu', 'mm', 'vfs', 'kmem_cache', 'pci', 'acpi', 'virtio',
  'irq', 'tick', 'hrtimer', 'page', 'folio', 'filemap', 'jbd2', 'security', 'cgroup', 'kobject', 'sysfs', 'devtmpfs', 'tty',
  'serial8250', 'uart', 'console', 'printk', 'kthread', 'workqueue', 'mutex', 'spin', 'percpu', 'slab', 'bio', 'scsi', 'ata'];
const VERBS = ['init', 'alloc', 'free', 'lookup', 'insert', 'remove', 'flush', 'submit', 'complete', 'wakeup', 'enqueue', 'dequeue',
  'lock', 'unlock', 'read', 'write', 'open', 'release', 'map', 'unmap', 'update', 'probe', 'register', 'start', 'stop'];
const OBJECTS = ['', '_page', '_inode', '_entry', '_task', '_queue', '_request', '_buffer', '_node', '_range', '_irq', '_timer'];
export const SYSCALLS = ['read', 'write', 'openat', 'close', 'mmap', 'brk', 'newfstatat', 'ioctl', 'getdents64', 'execve', 'mount', 'clone'];

/** The same trace every run. */
export const rng = mulberry32;

export function functionNames(count: number, random = rng(1)): string[] {
  const names = new Set<string>();
  while (names.size < count) {
    const s = SUBSYSTEMS[Math.floor(random() * SUBSYSTEMS.length)]!;
    const v = VERBS[Math.floor(random() * VERBS.length)]!;
    const o = OBJECTS[Math.floor(random() * OBJECTS.length)]!;
    const prefix = random() < 0.15 ? '__' : '';
    names.add(`${prefix}${s}_${v}${o}`);
  }
  return [...names];
}

const LEVELS = 6;
const PER_LEVEL = 500;
/** Kernel lines per system call, about: the "a system call every ~50 events". */
const LINES_PER_SYSCALL = 48;

/**
 * Writes `lines` lines of a single-step trace to fd, in ~1 MiB blocks. It follows a fixed call graph, as a
 * boot runs the same code paths over and over: user code makes a system call whose handler calls functions
 * level by level (each has 0-3 fixed callees on the next level, picked with a skew so some are hot),
 * returns land at non-zero offsets, and a timer interrupt arrives every ~997 lines. Deterministic.
 */
export function generateTrace(lines: number, fd: number, seed = 42): void {
  const random = rng(seed);
  const names = functionNames(LEVELS * PER_LEVEL, random);
  const level = (l: number): string[] => names.slice(l * PER_LEVEL, (l + 1) * PER_LEVEL);
  const callees = new Map<string, string[]>();
  for (let l = 0; l < LEVELS - 1; l++) {
    const next = level(l + 1);
    for (const f of level(l)) callees.set(f, Array.from({ length: Math.floor(random() * 4) }, () => next[Math.floor(next.length * random() ** 2)]!));
  }
  const roots = new Map(SYSCALLS.map((sys) => [sys, level(0).filter((_, i) => i % SYSCALLS.length === SYSCALLS.indexOf(sys))]));
  let t = 1000000, n = 0, budget = 0, chunk = '';
  const line = (text: string): void => {
    t += 0.3 + random() * 1.7;
    chunk += `${t.toFixed(7)} ${text}\n`;
    n++;
    budget--;
    if (chunk.length > 1 << 20) {
      writeSync(fd, chunk, null, 'latin1');
      chunk = '';
    }
  };
  const out = (text: string): void => {
    line(text);
    if (n % 997 === 0) {
      // A timer interrupt lands here and returns to the same place.
      for (const l of ['asm_sysvec_apic_timer_interrupt', 'sysvec_apic_timer_interrupt', 'tick_handle_periodic',
        'tick_handle_periodic + 40', 'sysvec_apic_timer_interrupt + 60', 'asm_sysvec_apic_timer_interrupt + 30']) line(`${l} in section .text`);
      line(text);
    }
  };
  const call = (f: string): void => {
    out(`${f} in section .text`);
    let off = 4 + Math.floor(random() * 20);
    out(`${f} + ${off} in section .text`);
    for (const c of callees.get(f) ?? []) {
      if (budget <= 0 || n >= lines) return;
      call(c);
      off += 5 + Math.floor(random() * 30);
      out(`${f} + ${off} in section .text`);
    }
  };
  while (n < lines) {
    const user = 0x401000 + Math.floor(random() * 0x8000);
    out(user.toString(16));
    out((user + 4).toString(16));
    const sys = SYSCALLS[Math.floor(random() * SYSCALLS.length)]!;
    budget = LINES_PER_SYSCALL;
    out('entry_SYSCALL_64 in section .text');
    out('do_syscall_64 + 40 in section .text');
    out(`__x64_sys_${sys} in section .text`);
    const handlers = roots.get(sys)!;
    while (budget > 6 && n < lines) call(handlers[Math.floor(handlers.length * random() ** 2)]!);
    out(`__x64_sys_${sys} + 30 in section .text`);
    out('do_syscall_64 + 80 in section .text');
    out('entry_SYSCALL_64 + 120 in section .text');
  }
  writeSync(fd, chunk, null, 'latin1');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/dist\//, '/dist/'))) {
  const lines = Number(process.argv[2] ?? 1000);
  const file = process.argv[3];
  const fd = file ? openSync(file, 'w') : 1;
  generateTrace(lines, fd);
  if (file) closeSync(fd);
}
