/**
 * The three answers a whole-boot recording gives at the end of `boot-trace capture --mode trace` (and
 * in `boot-trace summary CAPTURE_DIR`): the hottest functions, when the boot's milestones first ran,
 * and the system calls by kind, all from one pass over the recording, on the host clock.
 */
import { FirstCalls } from '../../analyzers/first-calls.js';
import { HotFunctions } from '../../analyzers/hot-functions.js';
import { Syscalls } from '../../analyzers/syscalls.js';
import { allOf } from '../trace/multi-visitor.js';
import { readRecordingTrace } from '../trace/recording/read.js';

/** First calls that mark where a Linux boot is: kernel C entry to userspace's last system call. */
export const MILESTONES = [
  'start_kernel', 'rest_init', 'kernel_init', 'do_initcalls', 'populate_rootfs', 'free_initmem', 'run_init_process',
  '__x64_sys_execve', '__x64_sys_mount', '__x64_sys_reboot',
];

export function wholeBootAnswers(recording: string, top = 10): string[] {
  const hot = new HotFunctions();
  const first = new FirstCalls();
  let syscalls: Syscalls | undefined;
  // QEMU 10 recordings name each call's process (processes.ts); count calls per process as they end.
  const processes = new Map<number, string>();
  const perProcess = new Map<string, number>();
  const r = readRecordingTrace(recording, (functions) => allOf(hot, first, (syscalls = new Syscalls(functions, (call) => {
    const p = processes.get(call.time_us);
    if (p !== undefined) perProcess.set(p, (perProcess.get(p) ?? 0) + 1);
  }))), { processes });
  syscalls!.finish();
  const ms = (us: number): string => `${(us / 1000).toFixed(1)} ms`;
  const out: string[] = [];
  const rows = hot.rows(r.functions, top);
  out.push('', `Hottest functions (self time, host clock; ${r.lines.toLocaleString('en-US')} records, ${r.recording.header.granularity} granularity)`);
  for (const h of rows) out.push(`  ${h.percent.toFixed(2).padStart(6)}%  ${ms(h.time_us).padStart(10)}  ${h.function}`);
  const firsts = new Map(first.rows(r.functions).map((f) => [f.function, f.first_us]));
  out.push('', 'Milestones (first call, host clock since QEMU started)');
  for (const m of MILESTONES) {
    const t = firsts.get(m);
    if (t !== undefined) out.push(`  ${ms(t).padStart(10)}  ${m}`);
  }
  const summary = syscalls!.summary();
  const calls = summary.reduce((n, s) => n + s.count, 0);
  out.push('', `System calls (${calls.toLocaleString('en-US')} calls of ${summary.length} kinds; count and total time, by count)`);
  const byCount = [...summary].sort((a, b) => b.count - a.count || a.syscall.localeCompare(b.syscall));
  for (const s of byCount.slice(0, top)) out.push(`  ${String(s.count).padStart(6)}  ${s.syscall.padEnd(20)} total ${ms(s.total_us)}`);
  // The rest in a few lines, so every kind (e.g. the one reboot) is there.
  let line = ' ';
  for (const s of byCount.slice(top)) {
    const item = ` ${s.count} ${s.syscall}`;
    if (line.length + item.length > 100) {
      out.push(line);
      line = ' ';
    }
    line += item;
  }
  if (line.trim()) out.push(line);
  if (perProcess.size > 0) {
    out.push('', 'System calls by process (registers read at each entry: QEMU 10)');
    for (const [p, n] of [...perProcess].sort((a, b) => b[1] - a[1])) out.push(`  ${String(n).padStart(6)}  ${p}`);
  }
  return out;
}
