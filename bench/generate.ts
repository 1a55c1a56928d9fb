/**
 * Generates a realistic single-step boot trace for benchmarks: kernel-like function names (a few
 * thousand), `name + offset` lines, bare user addresses, and a system call every ~50 events, in the
 * 2016 traces' timestamp style (microseconds with 7 decimals). Deterministic for a given seed.
 *
 *   node dist/bench/generate.js LINES [FILE]    (no FILE: stdout)
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const SUBSYSTEMS = ['ext4', 'blk_mq', 'tcp', 'udp', 'ip', 'sched', 'rcu', 'mm', 'vfs', 'kmem_cache', 'pci', 'acpi', 'virtio',
  'irq', 'tick', 'hrtimer', 'page', 'folio', 'filemap', 'jbd2', 'security', 'cgroup', 'kobject', 'sysfs', 'devtmpfs', 'tty',
  'serial8250', 'uart', 'console', 'printk', 'kthread', 'workqueue', 'mutex', 'spin', 'percpu', 'slab', 'bio', 'scsi', 'ata'];
const VERBS = ['init', 'alloc', 'free', 'lookup', 'insert', 'remove', 'flush', 'submit', 'complete', 'wakeup', 'enqueue', 'dequeue',
  'lock', 'unlock', 'read', 'write', 'open', 'release', 'map', 'unmap', 'update', 'probe', 'register', 'start', 'stop'];
const OBJECTS = ['', '_page', '_inode', '_entry', '_task', '_queue', '_request', '_buffer', '_node', '_range', '_irq', '_timer'];
const SYSCALLS = ['read', 'write', 'openat', 'close', 'mmap', 'brk', 'newfstatat', 'ioctl', 'getdents64', 'execve', 'mount', 'clone'];

/** A small, fast, seeded PRNG (mulberry32): the same trace every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

/** Writes `lines` trace lines to fd in ~1 MiB blocks. */
export function generateTrace(lines: number, fd: number, seed = 42): void {
  const random = rng(seed);
  const names = functionNames(3000);
  // Hot functions are hot: a skewed pick makes the profile look like a real one.
  const pick = (): string => names[Math.floor(names.length * random() ** 3)]!;
  let t = 1000000;
  let chunk = '';
  const out = (s: string): void => {
    chunk += s;
    if (chunk.length > 1 << 20) {
      writeSync(fd, chunk, null, 'latin1');
      chunk = '';
    }
  };
  const stamp = (): string => {
    t += 0.3 + random() * 1.7;
    return t.toFixed(7);
  };
  let userAddr = 0x401000;
  for (let i = 0; i < lines; ) {
    if (i % 50 === 0) {
      // A system call: user code, the entry, the handler, some kernel work, back to user.
      userAddr = 0x401000 + Math.floor(random() * 0x8000);
      const sys = SYSCALLS[Math.floor(random() * SYSCALLS.length)]!;
      out(`${stamp()} ${userAddr.toString(16)}\n`);
      out(`${stamp()} entry_SYSCALL_64 in section .text\n`);
      out(`${stamp()} do_syscall_64 + 40 in section .text\n`);
      out(`${stamp()} __x64_sys_${sys} in section .text\n`);
      i += 4;
      continue;
    }
    if (i % 50 === 45) {
      out(`${stamp()} ${(userAddr + 2).toString(16)}\n`);
      i++;
      continue;
    }
    const name = pick();
    out(random() < 0.3 ? `${stamp()} ${name} in section .text\n` : `${stamp()} ${name} + ${Math.floor(random() * 900)} in section .text\n`);
    i++;
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
