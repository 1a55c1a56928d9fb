/**
 * What the timeline and the Chrome export need from a capture's console.log, on the host clock:
 *   - BOOT_TIME:<stage>:<ns> markers (capture/output/console-log.ts BOOT_TIME_MARKER; first of each stage);
 *   - initcalls, paired by the initcalls analyzer (analyzers/initcalls.ts) so the export and the
 *     `initcalls` command agree: fed the console's messages with the kernel's clock taken off, the analyzer
 *     starts each initcall at the host time of its `calling` line and keeps the kernel's own duration;
 *   - a few well-known kernel lines as milestones (banner, freeing init memory, running /init, panic, reboot).
 * The file is read through the capture folder's one console reader (readCaptureConsole).
 */
import { Initcalls } from '../../analyzers/initcalls.js';
import type { ConsoleLine, ConsoleMessage } from '../../analyzers/console-lines.js';
import { BOOT_TIME_MARKER, KERNEL_PANIC } from '../../capture/output/console-log.js';
import { readCaptureConsole } from '../../capture/output/folder.js';

export interface ConsoleMarker { name: string; t: number; /** guest-reported ns, for BOOT_TIME markers */ ns?: number }
export interface ConsoleSpan { name: string; start: number; end: number; /** kernel-reported duration */ usecs?: number }
export interface ConsoleEvents {
  markers: ConsoleMarker[];
  /** Notable kernel lines (banner, init, panic). */
  milestones: ConsoleMarker[];
  initcalls: ConsoleSpan[];
  /** Host-stamped lines. */
  lines: number;
  /** Host time of the last line. */
  end: number;
}

const MILESTONES: Array<[RegExp, string]> = [
  [/Linux version /, 'Linux version'],
  [/Freeing unused kernel\b.*memory/, 'free init memory'],
  [/Run (\S+) as init process/, 'run init'],
  [KERNEL_PANIC, 'kernel panic'],
  [/reboot: /, 'reboot'],
];

/** Events of a console.log (a capture folder or the file); throws UserError when it cannot be read. */
export async function readConsoleEvents(path: string): Promise<ConsoleEvents> {
  const out: ConsoleEvents = { markers: [], milestones: [], initcalls: [], lines: 0, end: 0 };
  const seenMarker = new Set<string>();
  const initcalls = new Initcalls();
  await readCaptureConsole(path, {
    line(l: ConsoleLine) {
      if (l.hostUs === null) return;
      out.lines++;
      out.end = Math.max(out.end, l.hostUs);
      const t = l.hostUs;
      if (l.text.includes('BOOT_TIME:')) {
        for (const mk of l.text.matchAll(BOOT_TIME_MARKER)) {
          // The first occurrence of a stage wins, as in the console recorder.
          if (seenMarker.has(mk[1]!)) continue;
          seenMarker.add(mk[1]!);
          out.markers.push({ name: mk[1]!, t, ns: Number(mk[2]) });
        }
      }
      for (const [re, name] of MILESTONES) {
        const mm = re.exec(l.text);
        if (mm) {
          out.milestones.push({ name: mm[1] ? `${name} ${mm[1]}` : name, t });
          break;
        }
      }
    },
    message(m: ConsoleMessage) {
      if (m.hostUs !== null) initcalls.message({ ...m, kernelUs: null });
    },
  });
  for (const r of initcalls.result().rows) {
    if (r.duration_us === null || r.start_us === null || r.initcall.startsWith('probe of ')) continue;
    out.initcalls.push({ name: r.initcall, start: r.start_us, end: r.start_us + r.duration_us, usecs: r.duration_us });
  }
  out.initcalls.sort((a, b) => a.start - b.start);
  return out;
}
