/**
 * Which process made each system call, from the 'Y' frame of a QEMU 10 recording (the registers at
 * entry_SYSCALL_64: rax, CR3; execve's file name from guest memory; kernel_execve's file name).
 *
 * A process is its address space: CR3, the page-table root. It is named by the program it runs:
 * - exec (execve, or kernel_execve for /init and the kernel's modprobe helper) gives the next new address
 *   space the name of the last file exec'd before it appears (a shell tries several paths; the last try is
 *   the one that worked);
 * - a new address space with no exec pending is a fork child: it has its parent's name, the process that
 *   last called clone, fork, vfork or clone3;
 * - until then, or with no such call, `[unknown]`.
 * Busybox applets re-exec themselves as /proc/self/exe; those keep that name (the file name is all the
 * plugin reads; argv[0] is not read).
 * Source of the numbers: arch/x86/entry/syscalls/syscall_64.tbl (execve 59, clone 56, fork 57, vfork 58, exit 60, exit_group 231, clone3 435).
 */
import type { SyscallEntry } from './format.js';

const EXECVE = 59;
const EXIT = 60;
const EXIT_GROUP = 231;
const FORKS = new Set([56, 57, 58, 435]);
export const UNKNOWN_PROCESS = '[unknown]';

/** For each system call entry (kind 0), in order: the process name (see the file comment). */
export function processNames(entries: readonly SyscallEntry[]): Map<number, string> {
  // Keyed by the entry's instruction count: unique per entry, and equal to the entry record's.
  const byInstructions = new Map<number, string>();
  const names = new Map<number, string>();
  let pendingExec: string | null = null;
  let execCaller: number | null = null;
  let lastForker: string | null = null;
  for (const e of entries) {
    if (e.kind === 1) {
      pendingExec = e.path || pendingExec;
      execCaller = null;
      continue;
    }
    let name = names.get(e.cr3);
    if (name === undefined) {
      name = pendingExec ?? lastForker ?? UNKNOWN_PROCESS;
      names.set(e.cr3, name);
      // The exec worked: the caller's old address space is gone, and its page-table root may come back
      // as another process's.
      if (pendingExec !== null && execCaller !== null && execCaller !== e.cr3) names.delete(execCaller);
      pendingExec = null;
      execCaller = null;
    }
    byInstructions.set(e.instructions, name);
    if (e.nr === EXECVE && e.path) {
      pendingExec = e.path;
      execCaller = e.cr3;
    }
    if (FORKS.has(e.nr)) lastForker = name;
    // exit and exit_group: this address space ends with the call (a thread's exit leaves others: rare here).
    if (e.nr === EXIT || e.nr === EXIT_GROUP) names.delete(e.cr3);
  }
  return byInstructions;
}
