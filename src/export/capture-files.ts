/**
 * The files of a capture folder, as `boot-trace capture --out DIR` writes them:
 *   DIR/trace.log     the single-step trace (docs/trace-format.md)
 *   DIR/recording.btr a whole-boot recording (--mode trace, docs/whole-boot.md), read by the same reader
 *   DIR/console.log   `<t_us> <text>` lines from the serial port (capture/console.ts)
 *   DIR/profile.json  host phases (us), guest BOOT_TIME stages (ns), exit, step and memory figures
 * Given a trace file, its folder is searched for the other two. Every part is optional except what the
 * command needs; parsing is tolerant (an unknown field is ignored, a bad one is reported and skipped).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError, messageOf } from '../errors.js';

export interface CaptureProfile {
  phases?: Record<string, number>;
  guest?: Record<string, number>;
  exit?: { reason?: string; rip?: string; symbol?: string; detail?: string };
  clock?: 'host' | 'steps';
  [key: string]: unknown;
}

export interface CaptureFiles {
  dir: string;
  trace?: string;
  console?: string;
  profile?: string;
}

/** Finds the capture's files from a folder or a trace file inside one. */
export function captureFiles(input: string): CaptureFiles {
  let isDir = false;
  try {
    isDir = statSync(input).isDirectory();
  } catch (err) {
    if (input !== '-') throw new UserError(`${input}: cannot open: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : messageOf(err)}`);
  }
  const dir = isDir ? input : input === '-' ? '.' : dirname(input);
  const here = (name: string): string | undefined => (existsSync(join(dir, name)) ? join(dir, name) : undefined);
  let trace: string | undefined = isDir ? undefined : input;
  if (isDir) trace = here('trace.log') ?? here('trace.log.gz') ?? here('recording.btr'); // recording.btr: --mode trace
  // A console and profile beside an unrelated trace file would mislead: only a capture's own trace.log
  // (or a trace named like it) takes them.
  const own = isDir || /^(?:trace\.log(\.gz)?|recording\.btr)$/.test(basename(input));
  return { dir, trace, console: own ? here('console.log') : undefined, profile: own ? here('profile.json') : undefined };
}

export function readProfile(path: string): CaptureProfile {
  try {
    const p = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error('not a JSON object');
    return p as CaptureProfile;
  } catch (err) {
    throw new UserError(`${path}: not a capture profile (${messageOf(err)})`);
  }
}

export interface HostPhase {
  name: string;
  /** Microseconds on the trace/console clock (0 = just after KVM_CREATE_VM); the phases before it are negative. */
  start: number;
  duration: number;
}

/**
 * Host phases laid end to end in the order profile.json lists them (the order they ran). The trace and
 * console clocks start right after vm_create (capture/vm.ts), so it and the phases before it get negative
 * start times.
 */
export function hostPhases(profile: CaptureProfile): HostPhase[] {
  const phases = profile.phases ?? {};
  const names = Object.keys(phases).filter((n) => n !== 'total' && typeof phases[n] === 'number');
  const upTo = names.indexOf('vm_create');
  const zeroAt = names.slice(0, upTo + 1).reduce((s, n) => s + phases[n]!, 0);
  let t = -zeroAt;
  return names.map((name) => {
    const phase = { name, start: t, duration: phases[name]! };
    t += phases[name]!;
    return phase;
  });
}
