/**
 * profile.json: the one description of a capture that users script against (docs/capture-format.md lists
 * every field). Written by runCapture (capture/engines/run-capture.ts) after whichever engine ran, through
 * writeProfile (atomic: a temporary file in the same folder, then rename, so a reader never sees half a file);
 * read by everything else through readProfile, which is tolerant: extra fields are kept and ignored, an
 * older version is upgraded, a missing or mistyped field is a one-line UserError naming the file and field.
 *
 * Units: every duration and time is in microseconds and its name ends in `_us`; every size is in MiB
 * (`_mib`). Shape: a common part every engine fills, one part per mode (`step`; a `trace` part is left to
 * the engine that adds that mode) and one part per engine (`kvm`, `qemu`), each present only where it applies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/atomic-write.js';
import { messageOf, UserError } from '../../src/errors.js';
import { PROFILE_FILE } from './folder.js';
import { checkValue, PROFILE_SCHEMA, type Problem } from './profile-schema.js';

export const PROFILE_FORMAT = 'boot-trace-profile';
/** Version 1: the unversioned profiles before this module (phases/guest/steps at the top, mixed units). */
export const PROFILE_VERSION = 2;

export type CaptureMode = 'run' | 'step' | 'trace';
export type Clock = 'host' | 'steps';

/**
 * Why a capture ended. 'panic': the kernel printed `Kernel panic - not syncing` (the detail carries the line).
 * FAILURE_REASONS make the command exit non-zero.
 */
export const STOP_REASONS = [
  'shutdown', 'reset', 'panic', 'halt', 'timeout', 'max-steps', 'trace-until', 'interrupted',
  'internal-error', 'fail-entry', 'system-event', 'unhandled-exit',
] as const;
export type StopReason = (typeof STOP_REASONS)[number];

/** Reasons that mean the guest did not end the way a boot should: the capture exits non-zero. */
export const FAILURE_REASONS: ReadonlySet<StopReason> = new Set(['panic', 'internal-error', 'fail-entry', 'unhandled-exit']);

export interface ProfileExit {
  reason: StopReason;
  /** One line: what was seen (the kernel's power-off/reset/panic line, the emulation failure, the step limit...). */
  detail: string;
  /** The vCPU's rip at the stop, `0x` hex; null where the engine does not see registers (QEMU run mode). */
  rip: string | null;
  /** `rip` named by the symbol table (`machine_restart + 12 in section .text`); null with rip. */
  symbol: string | null;
  /** Reason 'interrupted': the signal that stopped the capture (SIGINT, SIGTERM, SIGHUP), else null. */
  signal: string | null;
}

/** The guest's `free -m` table, read from console.log once after any engine (analyzers/guest-memory.ts). */
export interface ProfileGuestMemory {
  total_mib: number;
  used_mib: number;
  free_mib: number;
  available_mib: number | null;
}

/** Step mode: every executed instruction is a trace.log line. */
export interface StepPart {
  steps: number;
  steps_per_second: number;
  trace_lines: number;
  /** Loading the symbol table the lines are named from. */
  symbols_us: number;
  /** --trace-from: the spec, its address, and when stepping began (us on the console clock); null: stepped from the first instruction. */
  trace_from: {
    spec: string;
    address: string;
    reached_us: number | null;
    /** KVM: what caught it: the DR0 breakpoint ('hw'), the software trap ('sw': a fallback unless asked for), null: never reached. */
    by?: 'hw' | 'sw' | null;
    /** KVM: --trace-from-trap, what was armed ('auto': both). */
    trap?: 'auto' | 'hw' | 'sw';
    /** KVM: why no software trap could be armed under 'auto' (a bzImage decompressing itself), else null. */
    note?: string | null;
  } | null;
  /** --trace-until as given (a symbol, address or marker:STAGE), or null. */
  trace_until: string | null;
}

/** The KVM engine's own figures. */
export interface KvmPart {
  /** KVM_RUN returns (every single step is one in step mode). */
  exits: number;
  block_irq: boolean;
  /** When the vCPU loop stopped, on the console clock (us since VM creation): compare with console.log's last line. */
  stop_us?: number;
  /** Step mode: every single-step fallback taken (capture/engines/kvm/debug/step-watchdog.ts); null in run mode. */
  step_watchdog?: KvmStepWatchdog | null;
}

/** The step watchdog's counts; `gaps`: the first 20 as `lost|late 0x<expected> -> 0x<found> at step N`. */
export interface KvmStepWatchdog {
  mode: 'auto' | 'always';
  rearm_emulated: number;
  rearm_tf_clear: number;
  lost: number;
  late: number;
  rearm_always: number;
  gaps: string[];
}

/** The QEMU engine's own figures. */
export interface QemuPart {
  accel: 'kvm' | 'tcg';
  version: string;
  args: string[];
  /** QEMU's exit status / the signal that ended it. */
  status: number | null;
  signal: string | null;
  /** Step mode: the gdbstub session (docs/qemu-engine.md). */
  gdbstub: {
    sstep_flags: number; step_packet: string; packets_sent: number; bad_packets: number; stop_replies_with_rip: number;
    /** Steps answered without executing anything (rip unchanged, and the instruction there cannot repeat in place): no line. */
    no_progress_steps: number;
    breakpoint: 'hw' | 'sw' | null;
  } | null;
}

/** Trace mode (capture/engines/qemu-trace/, docs/whole-boot.md): the whole-boot recording. */
export interface TracePart {
  granularity: 'function' | 'block' | 'instruction';
  /** The recording's file name in the capture folder. */
  file: string;
  recording_mib: number;
  records: number;
  /** Guest instructions recorded (the instructions clock at the end). */
  instructions: number;
  /** How the plugin compressed its record frames (zlib, zstd, none); null without its end frame. */
  compression: string | null;
  /** Host time the plugin's vCPU thread waited for its writer, taken out of the host clock; null without its end frame. */
  excluded_us: number | null;
  /** Where recording started: `startup_64 (physical alias) (1000000)`, `firmware`, or the --trace-from given. */
  start: string;
  until: string | null;
  max_steps: number | null;
  /** The plugin's end frame's reason (exit, until, max-steps), or null when QEMU died before it wrote one. */
  plugin_end: string | null;
  /** Why the recording is not whole (src/trace/recording/decode.ts), or null. */
  cut: string | null;
  /** The plugin API of the build QEMU loaded: 1 (QEMU 7.2), 4 (QEMU 10: registers at system call entry). */
  plugin_api: number;
  /** System call entries read from the registers (plugin API 4), or null. */
  syscall_entries: number | null;
  /**
   * The QEMU that ran: its binary, what chose it (capture/engines/qemu-trace/qemu-choice.ts: setting,
   * BOOT_TRACE_QEMU, qemu10-cache, PATH) and its version line. Absent in profiles written before it.
   */
  qemu?: { binary: string; chosen_by: string; version: string };
}

/** Where the inputs came from and what preparing them cost (capture/setup.ts). */
export interface CaptureSetup {
  engine: { asked: string; chosen: string; reason: string; probe_us: number | null; probe_cached: boolean | null };
  kernel: { path: string; source: string };
  decompress: { mode: 'host' | 'guest' | 'none'; format: string | null; duration_us: number; cached: boolean; booted: string };
  initrd: { path: string | null; source: 'argument' | 'appliance' | 'none'; workload: string | null };
  symbols: { source: 'system-map' | 'kallsyms' | 'elf-symtab' | 'none'; file: string | null; count: number | null; duration_us: number };
  cmdline_source: 'argument' | 'default' | 'default+append';
  /** Host microseconds per preparation step (find_kernel, read_kernel, engine_probe, decompress, symbols, appliance...). */
  steps_us: Record<string, number>;
}

export interface Profile {
  format: typeof PROFILE_FORMAT;
  version: number;
  engine: string;
  mode: CaptureMode;
  /** The trace's clock: host microseconds, or the instruction index ('steps', step mode only). */
  clock: Clock;
  /** The file the engine booted. */
  kernel: string;
  initrd: string | null;
  cmdline: string;
  memory_mib: number;
  /** --timeout, in microseconds like every duration here; null in an upgraded version-1 profile (it had none). */
  timeout_us: number | null;
  /** Host microseconds per engine phase, in the order they ran, and `total`. */
  phases_us: Record<string, number>;
  /** BOOT_TIME:<stage>:<ns> console lines: the guest's own clock, converted to microseconds; first of each stage. */
  guest_markers_us: Record<string, number>;
  exit: ProfileExit;
  console_lines: number;
  /** The engine process's peak resident set (this VMM's, or QEMU's); null if it could not be measured. */
  peak_rss_mib: number | null;
  peak_rss_source: 'self' | 'rusage' | 'vmhwm' | null;
  guest_memory: ProfileGuestMemory | null;
  /** Present in step mode, null otherwise. */
  step: StepPart | null;
  setup: CaptureSetup | null;
  kvm?: KvmPart;
  qemu?: QemuPart;
  /** Trace mode only. */
  trace?: TracePart;
}

/**
 * Write `profile` as pretty JSON, atomically. Errors name `file`, never the temporary name.
 * Throws UserError when the folder cannot be written.
 */
/**
 * "reason at rip (symbol): detail" for one line of a summary, the reason said once: a detail that starts with
 * the reason ("interrupted (SIGINT)") stands for both ("interrupted at 0x... (sym): interrupted (SIGINT)" repeated it).
 */
export function exitLine(exit: Pick<ProfileExit, 'reason' | 'rip' | 'symbol' | 'detail'>): string {
  const at = exit.rip !== null ? ` at ${exit.rip} (${exit.symbol ?? '?'})` : exit.symbol ? ` in ${exit.symbol}` : '';
  const detail = exit.detail ?? '';
  if (detail.toLowerCase().startsWith(String(exit.reason).toLowerCase())) return `${detail.slice(0, String(exit.reason).length)}${at}${detail.slice(String(exit.reason).length)}`;
  return `${exit.reason}${at}${detail ? `: ${detail}` : ''}`;
}

export function writeProfile(file: string, profile: Profile): void {
  writeFileAtomic(file, JSON.stringify(profile, null, 2) + '\n', 'the capture profile');
}

/**
 * Read and check a profile.json. Version 1 files are upgraded (see upgradeV1); a newer version than this
 * code knows, a file that is not JSON, or a required field missing or of the wrong type is a UserError
 * `<file>: <field>: <what is wrong>`. Fields this version does not know are kept as they are.
 */
export function readProfile(file: string): Profile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`${file}: cannot read the capture profile (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`);
  }
  return parseProfile(text, file);
}

/**
 * profile.json in `dir` as parsed JSON, or undefined when it is missing, unreadable or not a JSON object: for
 * readers that only peek at a field or two (the clock of a trace beside it) and must not fail on a profile
 * they cannot use. Not checked and not upgraded; use readProfile for the profile itself.
 */
export function peekProfile(dir: string): Record<string, unknown> | undefined {
  try {
    const p = JSON.parse(readFileSync(join(dir, PROFILE_FILE), 'utf8')) as unknown;
    return p && typeof p === 'object' && !Array.isArray(p) ? (p as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** readProfile on text already read; `file` names it in errors. */
export function parseProfile(text: string, file: string): Profile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${messageOf(err)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${file}: not a capture profile (not a JSON object)`);
  const o = raw as Record<string, unknown>;
  let p: Record<string, unknown>;
  if (o.version === undefined && o.format === undefined) p = upgradeV1(o);
  else {
    if (o.format !== PROFILE_FORMAT) throw new UserError(`${file}: format: expected "${PROFILE_FORMAT}", found ${JSON.stringify(o.format)}`);
    if (typeof o.version !== 'number' || !Number.isInteger(o.version) || o.version < 2) {
      throw new UserError(`${file}: version: expected a whole number >= 2, found ${JSON.stringify(o.version)}`);
    }
    if (o.version > PROFILE_VERSION) {
      throw new UserError(`${file}: version ${o.version} was written by a newer boot-trace; this one reads versions 1 to ${PROFILE_VERSION}`);
    }
    p = o;
  }
  const problems = checkValue(p, PROFILE_SCHEMA, '', false);
  if (problems.length > 0) throw new UserError(`${file}: ${formatProblem(problems[0]!)}`);
  return p as unknown as Profile;
}

/**
 * Strict check of a profile object against the documented schema (profile-schema.ts): every problem,
 * including values outside a documented set. Used by the tests on every engine's output; readers use
 * readProfile, which only refuses what they cannot use.
 */
export function validateProfile(value: unknown): string[] {
  return checkValue(value, PROFILE_SCHEMA, '', true).map(formatProblem);
}

function formatProblem(p: Problem): string {
  return `${p.path || '(top level)'}: ${p.message}`;
}

/**
 * Version 1 (no `format`/`version`): `phases` (us), `guest` (ns), `steps`/`exits`/`trace_lines` at the
 * top, `peak_rss_bytes`, engine fields (`accel`, `qemu_version`, `gdbstub`...) loose, `setup` in ms.
 * Upgraded field by field; what v1 never had becomes null.
 */
export function upgradeV1(o: Record<string, unknown>): Record<string, unknown> {
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const exit = (o.exit ?? {}) as Record<string, unknown>;
  const guest = (o.guest ?? {}) as Record<string, unknown>;
  const markers: Record<string, number> = {};
  for (const [k, v] of Object.entries(guest)) if (typeof v === 'number') markers[k] = v / 1000;
  const rss = num(o.peak_rss_bytes);
  const mode = o.mode === 'step' ? 'step' : 'run';
  const engine = typeof o.engine === 'string' ? o.engine : 'kvm';
  const p: Record<string, unknown> = {
    format: PROFILE_FORMAT,
    version: 1,
    engine,
    mode,
    clock: o.clock === 'steps' ? 'steps' : 'host',
    kernel: typeof o.kernel === 'string' ? o.kernel : '',
    initrd: typeof o.initrd === 'string' ? o.initrd : null,
    cmdline: typeof o.cmdline === 'string' ? o.cmdline : '',
    memory_mib: num(o.memory_mib) ?? 0,
    timeout_us: null,
    phases_us: o.phases ?? {},
    guest_markers_us: markers,
    exit: {
      reason: typeof exit.reason === 'string' ? exit.reason : 'unknown',
      detail: typeof exit.detail === 'string' ? exit.detail : '',
      rip: typeof exit.rip === 'string' ? (exit.rip.startsWith('0x') ? exit.rip : `0x${exit.rip}`) : null,
      symbol: typeof exit.symbol === 'string' ? exit.symbol : null,
      signal: null,
    },
    console_lines: num(o.console_lines) ?? 0,
    peak_rss_mib: rss === null ? null : rss / (1024 * 1024),
    peak_rss_source: typeof o.peak_rss_source === 'string' ? o.peak_rss_source : rss === null ? null : 'self',
    guest_memory: null,
    step: mode === 'step'
      ? {
          steps: num(o.steps) ?? 0,
          steps_per_second: num(o.steps_per_second) ?? 0,
          trace_lines: num(o.trace_lines) ?? 0,
          symbols_us: num(o.symbols_us) ?? 0,
          trace_from: null,
          trace_until: null,
        }
      : null,
    setup: null,
  };
  return p;
}

/** The `[boot-profile]` lines printed on stderr at the end of a capture, the same for every engine. */
export function summaryLines(p: Profile): string[] {
  const total = p.phases_us.total ?? 0;
  const lines: string[] = [];
  for (const [name, us] of Object.entries(p.phases_us)) {
    const pct = total > 0 ? (100 * us) / total : 0;
    lines.push(`[boot-profile] ${name}: ${formatMs(us)} (${pct.toFixed(1)}%)`);
  }
  for (const [stage, us] of Object.entries(p.guest_markers_us)) lines.push(`[boot-profile] guest ${stage}: ${formatMs(us)}`);
  if (p.step) {
    const via = p.qemu?.gdbstub ? `, gdbstub, Qqemu.sstep=${p.qemu.gdbstub.sstep_flags}` : '';
    lines.push(`[boot-profile] steps: ${p.step.steps.toLocaleString('en-US')} (${Math.round(p.step.steps_per_second).toLocaleString('en-US')}/s${via})`);
    const from = p.step.trace_from;
    if (from && from.by === 'sw') {
      const why = from.trap === 'sw' ? '--trace-from-trap sw' : 'the hardware breakpoint did not fire';
      lines.push(`[boot-profile] fallback: --trace-from ${from.spec} caught by a software trap in guest code (${why})`);
    } else if (from && from.reached_us === null) {
      lines.push(`[boot-profile] --trace-from ${from.spec} was never reached: no steps recorded${from.note ? ` (${from.note})` : ''}`);
    }
    const f = p.kvm?.step_watchdog ? stepFallbackSummary(p.kvm.step_watchdog) : null;
    if (f) lines.push(`[boot-profile] fallback: ${f}`);
  }
  lines.push(`[boot-profile] exit: ${exitLine(p.exit)}`);
  return lines;
}

/** One line naming every single-step fallback the KVM engine took, or null when it took none. */
export function stepFallbackSummary(c: KvmStepWatchdog): string | null {
  const parts: string[] = [];
  if (c.rearm_always) parts.push(`single-step re-armed after every step (--step-rearm always): ${c.rearm_always}`);
  if (c.rearm_emulated) parts.push(`re-armed after ${c.rearm_emulated} instructions KVM may emulate`);
  if (c.rearm_tf_clear) parts.push(`re-armed after ${c.rearm_tf_clear} instructions that load RFLAGS`);
  if (c.lost) {
    const at = [...new Set(c.gaps.filter((g) => g.startsWith('lost ')).map((g) => g.split(' ')[1]!))].slice(0, 3);
    parts.push(`${c.lost} DEBUG exits missing: steps LOST (no trace line) from ${at.join(', ')}${c.lost > at.length ? ', ...' : ''} (single-step set again where it may have stopped; gaps in profile.json kvm.step_watchdog)`);
  }
  if (c.late) parts.push(`${c.late} DEBUG exits more than one instruction on (late, or an interrupt/exception)`);
  return parts.length ? parts.join('; ') : null;
}

function formatMs(us: number): string {
  const ms = us / 1000;
  return `${ms < 100 ? ms.toFixed(ms < 10 ? 2 : 1) : Math.round(ms)}ms`;
}
