/**
 * profile.json: where the VMM's own time went (host phases, microseconds, timed like the Rust VMM's boot
 * profiler), what the guest reported (BOOT_TIME markers, ns), how it ended, and how fast it stepped.
 * Written atomically (temporary file + rename) so a reader never sees half a file. The stderr summary
 * has one `[boot-profile] <phase>: <ms>ms (<percent>%)` line per phase, then the exit line.
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { StopReason } from './exits.js';
import { stepFallbackSummary, type StepWatchdogCounts } from './kvm-debug/step-watchdog.js';

/**
 * Phases in the order they are listed; `total` covers them all, from reading the kernel file to the
 * guest's stop. Besides the Rust VMM's phases: `devices` (UART, i8042, CMOS, output files) and, in step
 * mode only, `symbols` (loading the symbol table; in run mode it is loaded after the stop, untimed).
 */
export const PHASES = ['kernel_load', 'rootfs_load', 'kvm_open', 'vm_create', 'memory', 'boot_params', 'vcpu_setup', 'symbols', 'devices', 'boot_wait'] as const;

export interface Profile {
  engine: 'kvm';
  kernel: string;
  cmdline: string;
  mode: 'run' | 'step';
  clock: 'host' | 'steps';
  memory_mib: number;
  /** Host microseconds per phase, plus `total`. */
  phases: Record<string, number>;
  /** Guest-reported stage times in nanoseconds (BOOT_TIME:<stage>:<ns> console lines). */
  guest: Record<string, number>;
  /** at_us: host microseconds since VM creation when the vCPU stopped (console.log's clock). */
  exit: { reason: StopReason; rip: string; symbol: string; detail: string; at_us?: number };
  steps: number;
  steps_per_second: number;
  exits: number;
  console_lines: number;
  trace_lines: number;
  peak_rss_bytes: number;
  /** Microseconds to load the symbol table (in step mode also phases.symbols). */
  symbols_us: number;
  /** Step mode with --trace-from/--trace-until: the window asked for, and when stepping began (us since VM creation). */
  trace_window?: {
    from: string | null;
    from_address: string | null;
    until: string | null;
    reached_us: number | null;
    /** What caught --trace-from: the DR0 breakpoint ('hw') or the software trap ('sw', a fallback); null: never reached. */
    by?: 'hw' | 'sw' | null;
    /** --trace-from-trap: what was armed ('auto': both). */
    trap?: 'auto' | 'hw' | 'sw';
    note?: string;
  };
  /** Step mode: every single-step fallback taken (capture/kvm-debug/step-watchdog.ts). */
  step_watchdog?: StepWatchdogCounts;
  /** Where the kernel, initrd and symbols came from (the capture command; see capture/setup.ts). */
  [extra: string]: unknown;
}

/** Write `profile` as pretty JSON to `file` via a temporary name in the same folder. */
export function writeProfile(file: string, profile: Profile): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(profile, null, 2) + '\n');
  renameSync(tmp, file);
}

/** The stderr summary lines. */
export function summaryLines(p: Profile): string[] {
  const total = p.phases.total ?? 0;
  const lines: string[] = [];
  for (const name of [...PHASES, 'total']) {
    const us = p.phases[name];
    if (us === undefined) continue;
    const pct = total > 0 ? (100 * us) / total : 0;
    lines.push(`[boot-profile] ${name}: ${formatMs(us)} (${pct.toFixed(1)}%)`);
  }
  for (const [stage, ns] of Object.entries(p.guest)) lines.push(`[boot-profile] guest ${stage}: ${formatMs(ns / 1000)}`);
  if (p.mode === 'step') {
    lines.push(`[boot-profile] steps: ${p.steps.toLocaleString('en-US')} (${Math.round(p.steps_per_second).toLocaleString('en-US')}/s)`);
    const w = p.trace_window;
    if (w?.from !== null && w?.from !== undefined) {
      if (w.by === 'sw') {
        const why = w.trap === 'sw' ? '--trace-from-trap sw' : 'the hardware breakpoint did not fire';
        lines.push(`[boot-profile] fallback: --trace-from ${w.from} caught by a software trap in guest code (${why})`);
      }
      else if (w.by === null) lines.push(`[boot-profile] --trace-from ${w.from} was never reached: no steps recorded${w.note ? ` (${w.note})` : ''}`);
    }
    const f = p.step_watchdog ? stepFallbackSummary(p.step_watchdog) : null;
    if (f) lines.push(`[boot-profile] fallback: ${f}`);
  }
  lines.push(`[boot-profile] exit: ${p.exit.reason} at ${p.exit.rip} (${p.exit.symbol}): ${p.exit.detail}`);
  return lines;
}

function formatMs(us: number): string {
  const ms = us / 1000;
  return `${ms < 100 ? ms.toFixed(ms < 10 ? 2 : 1) : Math.round(ms)}ms`;
}
