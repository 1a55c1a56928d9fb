/**
 * QEMU's peak resident memory. Preferred: its own rusage (ru_maxrss), which GNU time reports when it
 * runs QEMU (`/usr/bin/time -f %M -o FILE qemu-system-x86_64 ...`, in KiB). Without GNU time: the
 * high-water mark VmHWM of /proc/PID/status, sampled while QEMU runs (the last sample before it exits).
 */
import { existsSync, readFileSync } from 'node:fs';

export const GNU_TIME = '/usr/bin/time';

export function haveGnuTime(path = GNU_TIME): boolean {
  return existsSync(path);
}

/** KiB from a GNU time `-f %M -o FILE` output (it may put "Command exited with non-zero status N" first). */
export function parseTimeOutput(text: string): number | null {
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) if (/^\d+$/.test(line.trim())) return Number(line.trim());
  return null;
}

/** VmHWM of a live process in bytes, or null once it is gone. */
export function readVmHwm(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The qemu-system process itself: `pid` when it is QEMU, else its first child (QEMU under GNU time). */
export function qemuPid(pid: number): number | null {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim();
    const first = children.split(/\s+/)[0];
    return first ? Number(first) : pid;
  } catch {
    return null;
  }
}
