/**
 * What the timeline and the Chrome export need from a capture's console.log (`<t_us> <text>` lines):
 *   - BOOT_TIME:<stage>:<ns> markers (the demo guest and init scripts print them);
 *   - initcalls, from initcall_debug lines:
 *       `[    0.512345] calling  virtio_mmio_init+0x0/0x1000 [virtio_mmio] @ 1`
 *       `[    0.512399] initcall virtio_mmio_init+0x0/0x1000 [virtio_mmio] returned 0 after 52 usecs`
 *   - a few well-known kernel lines as milestones (banner, freeing init memory, running /init, panic).
 * Kept minimal on purpose: analyzers/stages.ts and analyzers/initcalls.ts are the full console analyzers.
 */
import { readFileSync } from 'node:fs';
import { UserError, messageOf } from '../errors.js';

export interface ConsoleMarker { name: string; t: number; /** guest-reported ns, for BOOT_TIME markers */ ns?: number }
export interface ConsoleSpan { name: string; start: number; end: number; /** kernel-reported duration */ usecs?: number }
export interface ConsoleEvents {
  markers: ConsoleMarker[];
  /** Notable kernel lines (banner, init, panic). */
  milestones: ConsoleMarker[];
  initcalls: ConsoleSpan[];
  lines: number;
  /** Host time of the last line. */
  end: number;
}

const LINE = /^(\d+(?:\.\d+)?) (.*)$/;
const MARKER = /BOOT_TIME:([^:\s]+):(\d+)/g;
const CALLING = /calling {2}([^\s+]+)\+0x[0-9a-f]+\/0x[0-9a-f]+/;
const RETURNED = /initcall ([^\s+]+)\+0x[0-9a-f]+\/0x[0-9a-f]+.* returned -?\d+ after (\d+) usecs/;
const MILESTONES: Array<[RegExp, string]> = [
  [/Linux version /, 'Linux version'],
  [/Freeing unused kernel\b.*memory/, 'free init memory'],
  [/Run (\S+) as init process/, 'run init'],
  [/Kernel panic/, 'kernel panic'],
  [/reboot: /, 'reboot'],
];

export function readConsoleEvents(path: string): ConsoleEvents {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`${path}: cannot read console log (${messageOf(err)})`);
  }
  return parseConsoleEvents(text);
}

export function parseConsoleEvents(text: string): ConsoleEvents {
  const out: ConsoleEvents = { markers: [], milestones: [], initcalls: [], lines: 0, end: 0 };
  const open = new Map<string, number>();
  const seenMarker = new Set<string>();
  for (const raw of text.split('\n')) {
    const m = LINE.exec(raw);
    if (!m) continue;
    out.lines++;
    const t = Number(m[1]);
    const body = m[2]!;
    out.end = Math.max(out.end, t);
    for (const mk of body.matchAll(MARKER)) {
      // The first occurrence of a stage wins, as in capture/output/console-log.ts.
      if (seenMarker.has(mk[1]!)) continue;
      seenMarker.add(mk[1]!);
      out.markers.push({ name: mk[1]!, t, ns: Number(mk[2]) });
    }
    const c = CALLING.exec(body);
    if (c) open.set(c[1]!, t);
    const r = RETURNED.exec(body);
    if (r) {
      const start = open.get(r[1]!);
      open.delete(r[1]!);
      const usecs = Number(r[2]);
      out.initcalls.push({ name: r[1]!, start: start ?? t - usecs, end: t, usecs });
    }
    for (const [re, name] of MILESTONES) {
      const mm = re.exec(body);
      if (mm) {
        out.milestones.push({ name: mm[1] ? `${name} ${mm[1]}` : name, t });
        break;
      }
    }
  }
  return out;
}
