/**
 * The engine interface: what every capture engine takes and gives back. An engine boots `kernel`, writes
 * console.log (and trace.log or a recording in its modes) into `outDir`, and says how the boot went; it
 * never writes profile.json and never reads its own console back: capture/engines/record.ts does both,
 * once, after any engine. Adding an engine: a folder under capture/engines/ with an object of this type,
 * and one line in registry.ts (docs/architecture.md, "Where to add"). Options only one engine has (QEMU's
 * accelerator, the gdbstub's step flags, a plugin's granularity) are not in the request: the engine's
 * factory takes them (qemuRunEngine(settings), qemuStepEngine(settings)). A new mode's figures get a mode
 * part beside `step` (e.g. `trace: TracePart | null` in EngineOutcome, Profile and profile-schema.ts).
 */
import type { CaptureMode, Clock, KvmPart, ProfileExit, QemuPart, StepPart, TracePart } from '../output/profile.js';

export interface EngineRequest {
  /** The file to boot (absolute): an ELF vmlinux, a bzImage or the demo guest. */
  kernel: string;
  initrd?: string;
  /** Symbols for naming addresses (System.map, nm output, kallsyms dump or ELF); default: the engine's own lookup. */
  systemMap?: string;
  cmdline: string;
  memoryMiB: number;
  mode: CaptureMode;
  /** Step mode's trace clock; always 'host' in other modes. */
  clock: Clock;
  timeoutS: number;
  /** An empty folder (prepareOutDir). */
  outDir: string;
  /** Step mode: stop after this many instructions (undefined: no limit). */
  maxSteps?: number;
  /** Step mode: run freely to this symbol or address, then step. */
  traceFrom?: string;
  /** Step mode: stop at this symbol, address or marker:STAGE. */
  traceUntil?: string;
  /** KVM step mode: catch --trace-from with the DR0 breakpoint ('hw'), a trap in guest code ('sw'), or both ('auto', default). */
  traceFromTrap?: 'auto' | 'hw' | 'sw';
  /** KVM step mode: set single-step again after instructions that lose it ('auto', default) or after every step ('always'). */
  stepRearm?: 'auto' | 'always';
  /** Step mode: no interrupts while stepping. */
  blockIrq: boolean;
  /** Trace mode: function (default), block or instruction (docs/whole-boot.md). */
  granularity?: string;
  /** Copy the guest's console lines to stderr as they arrive. */
  echo: boolean;
  /** Show progress on stderr (a TTY). */
  progress: boolean;
  /** Aborted on Ctrl-C (or by a caller such as benchmark): the engine stops, writes its files, exit reason 'interrupted'. */
  signal: AbortSignal;
}

/** What an engine reports; record.ts turns it into profile.json with the common after-engine figures. */
export interface EngineOutcome {
  /** The command line as booted (an engine may add to it: QEMU step mode adds `nokaslr`). */
  cmdline: string;
  /** Host microseconds per phase, in the order they ran, and `total`. */
  phases_us: Record<string, number>;
  /** From the console recorder's BOOT_TIME markers, converted to microseconds. */
  guest_markers_us: Record<string, number>;
  /** Without `signal`: record.ts adds which signal interrupted the capture. */
  exit: Omit<ProfileExit, 'signal'>;
  console_lines: number;
  peak_rss_mib: number | null;
  peak_rss_source: 'self' | 'rusage' | 'vmhwm' | null;
  /** Step mode's figures (null in other modes). */
  step: StepPart | null;
  /** The engine's own part of the profile, under its name. */
  part: { kvm: KvmPart } | { qemu: QemuPart };
  /** Trace mode's figures (capture/engines/qemu-trace/). */
  trace?: TracePart;
}

export interface CaptureEngine {
  /** The --engine value. */
  readonly name: 'kvm' | 'qemu';
  /** The --mode values this engine does; several engines may share a name with different modes. */
  readonly modes: readonly CaptureMode[];
  /** The kernel command line used when --cmdline is not given (--append adds to it). */
  readonly defaultCmdline: string;
  /** Refuse, with a one-line UserError, options this engine cannot honour; called before anything boots. */
  check?(request: Omit<EngineRequest, 'outDir' | 'signal'>): void;
  run(request: EngineRequest): Promise<EngineOutcome>;
}

/** ns (BOOT_TIME markers as the guest prints them) to the profile's microseconds. */
export function markersToUs(ns: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(ns)) out[k] = v / 1000;
  return out;
}
