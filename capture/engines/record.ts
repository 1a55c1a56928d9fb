/**
 * One capture through one engine, start to profile.json: make the output folder, run the engine, read its
 * console once for what every engine's profile has (the guest's `free -m`, a kernel panic), write the
 * profile. runCapture (run-capture.ts) calls this after choosing the engine; tests and benchmarks that drive
 * one engine directly call it too, so every path writes the same profile.
 */
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { ConsoleLine, ConsoleMessage } from '../../analyzers/console-lines.js';
import { GuestMemoryReader, type GuestMemory } from '../../analyzers/guest-memory.js';
import { KERNEL_PANIC } from '../output/console-log.js';
import { CONSOLE_FILE, PROFILE_FILE, prepareOutDir, readCaptureConsole, TRACE_FILE } from '../output/folder.js';
import {
  FAILURE_REASONS, PROFILE_FORMAT, PROFILE_VERSION, writeProfile, type CaptureSetup, type Profile, type ProfileExit, type ProfileGuestMemory,
} from '../output/profile.js';
import type { CaptureEngine, EngineOutcome, EngineRequest } from './engine.js';

export interface CaptureRun {
  outDir: string;
  profile: Profile;
  profileFile: string;
  consoleFile: string;
  /** Step mode. */
  traceFile?: string;
  /** The guest ended in a way that should fail the command (FAILURE_REASONS). */
  failed: boolean;
  /** The command's exit status: 0, 2 (failed) or 130 (interrupted). */
  status: number;
}

export interface RecordOptions {
  /** Empty a non-empty output folder of capture files first (prepareOutDir). */
  force?: boolean;
  setup?: CaptureSetup | null;
}

/** Run `engine` on `request` (whose outDir may exist only if empty, or with force) and write profile.json. */
export async function recordCapture(engine: CaptureEngine, request: EngineRequest, o: RecordOptions = {}): Promise<CaptureRun> {
  engine.check?.(request);
  const existed = existsSync(request.outDir);
  const outDir = prepareOutDir(request.outDir, o.force ?? false);
  let outcome: EngineOutcome;
  try {
    outcome = await engine.run({ ...request, outDir });
  } catch (err) {
    // Refused before the guest ran (a misspelt --trace-from symbol, QEMU refusing the kernel): leave no
    // empty folder behind that a later capture would have to --force.
    if (!existed) removeIfEmpty(outDir);
    throw err;
  }
  const after = await readAfterEngine(outDir, outcome.console_lines);
  const profile = buildProfile(engine, { ...request, outDir }, outcome, after, o.setup ?? null);
  const profileFile = join(outDir, PROFILE_FILE);
  writeProfile(profileFile, profile);
  const failed = FAILURE_REASONS.has(profile.exit.reason);
  const signo = profile.exit.signal !== null ? constants.signals[profile.exit.signal as NodeJS.Signals] : undefined;
  return {
    outDir,
    profile,
    profileFile,
    consoleFile: join(outDir, CONSOLE_FILE),
    ...(profile.step ? { traceFile: join(outDir, TRACE_FILE) } : {}),
    failed,
    status: profile.exit.reason === 'interrupted' ? 128 + (signo ?? constants.signals.SIGINT) : failed ? 2 : 0,
  };
}

function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    /* keep it: what matters is the engine's error */
  }
}

interface AfterEngine {
  memory: ProfileGuestMemory | null;
  /** The first `Kernel panic - not syncing` line, without its stamps. */
  panic: string | null;
}

/** The figures taken from console.log after any engine, in one pass of the one console reader. */
async function readAfterEngine(outDir: string, lines: number): Promise<AfterEngine> {
  if (lines === 0) return { memory: null, panic: null };
  const memory = new GuestMemoryReader();
  let panic: string | null = null;
  await readCaptureConsole(outDir, {
    line: (l: ConsoleLine) => memory.line(l),
    message: (m: ConsoleMessage) => {
      if (panic === null && KERNEL_PANIC.test(m.text)) panic = m.text.trim();
    },
  });
  return { memory: guestMemoryOf(memory.result()), panic };
}

/** The profile's guest_memory from the analyzer's `free -m` row (analyzers/guest-memory.ts). */
export function guestMemoryOf(m: GuestMemory | null): ProfileGuestMemory | null {
  return m ? { total_mib: m.total_mib, used_mib: m.used_mib, free_mib: m.free_mib, available_mib: m.available_mib ?? null } : null;
}

/**
 * A kernel panic decides the end: with panic=-1 the kernel restarts after it, with panic=0 it spins until
 * the timeout, and an engine sees only that. Stops the user or a limit asked for (interrupted, max-steps,
 * trace-until) and VMM failures stay as they are.
 */
function withPanic(exit: Omit<ProfileExit, 'signal'>, panic: string | null): Omit<ProfileExit, 'signal'> {
  if (panic === null || !['reset', 'shutdown', 'halt', 'timeout', 'system-event'].includes(exit.reason)) return exit;
  return { ...exit, reason: 'panic', detail: `${panic} (then: ${exit.reason}: ${exit.detail})` };
}

/** An interrupted capture names the signal that stopped it (the abort reason runCapture gives, e.g. 'SIGTERM'). */
function withSignal(exit: Omit<ProfileExit, 'signal'>, signal: AbortSignal): ProfileExit {
  const name = exit.reason === 'interrupted' && typeof signal.reason === 'string' && /^SIG[A-Z]+$/.test(signal.reason) ? signal.reason : null;
  // The KVM run loop already names SIGINT in its detail ("interrupted (SIGINT)"): name a signal once.
  return { ...exit, signal: name, ...(name && !exit.detail.includes(`(${name})`) ? { detail: `${exit.detail} (${name})` } : {}) };
}

function buildProfile(engine: CaptureEngine, r: EngineRequest, e: EngineOutcome, after: AfterEngine, setup: CaptureSetup | null): Profile {
  return {
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    engine: engine.name,
    mode: r.mode,
    clock: r.mode === 'step' ? r.clock : 'host',
    kernel: r.kernel,
    initrd: r.initrd ?? null,
    cmdline: e.cmdline,
    memory_mib: r.memoryMiB,
    timeout_us: r.timeoutS * 1_000_000,
    phases_us: e.phases_us,
    guest_markers_us: e.guest_markers_us,
    exit: withSignal(withPanic(e.exit, after.panic), r.signal),
    console_lines: e.console_lines,
    peak_rss_mib: e.peak_rss_mib === null ? null : Math.round(e.peak_rss_mib * 1000) / 1000,
    peak_rss_source: e.peak_rss_source,
    guest_memory: after.memory,
    step: e.step,
    setup,
    ...e.part,
    ...(e.trace ? { trace: e.trace } : {}),
  };
}
