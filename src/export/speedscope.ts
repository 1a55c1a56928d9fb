/**
 * speedscope's evented profile (https://www.speedscope.app/file-format-schema.json), written while the
 * stacks are rebuilt: an "O" event when a frame opens, a "C" when it closes, in time order. The frame
 * table is only known at the end, so it comes after the profile (JSON objects are unordered).
 *   {"$schema":"https://www.speedscope.app/file-format-schema.json","profiles":[{"type":"evented",
 *    "name":"trace.log","unit":"${this.unit}","startValue":10,"events":[{"type":"O","at":10,"frame":0},...],
 *    "endValue":30}],"shared":{"frames":[{"name":"start_kernel"}]},"exporter":"boot-trace"}
 * `unit` follows the trace's clock (src/output/clock.ts): "microseconds", or "none" for instruction
 * steps; a clock that is not boot time says so in the profile's name, which speedscope shows on top.
 * Times are on the binary grid of ticks.ts, like the Chrome export.
 */
import type { StackListener } from '../../analyzers/call-stacks.js';
import type { Clock } from '../output/clock.js';
import type { TextSink } from './sink.js';
import { onGrid } from './ticks.js';

export const SPEEDSCOPE_SCHEMA = 'https://www.speedscope.app/file-format-schema.json';

const us = onGrid;

export class SpeedscopeWriter implements StackListener {
  private started = false;
  private first = true;
  private frameOf = new Int32Array(1024).fill(-1);
  private readonly frames: string[] = [];
  private last = 0;

  private readonly unit: 'microseconds' | 'none';

  constructor(private readonly out: TextSink, private readonly names: string[], private profileName: string, clock: Clock) {
    this.unit = clock.unit === 'us' ? 'microseconds' : 'none';
    if (clock.kind === 'host-stepping') this.profileName += ' (host time while single-stepping, not boot time)';
    else if (clock.unit !== 'us') this.profileName += ` (${clock.label}, not time)`;
  }

  open(fn: number, t: number): void {
    if (!this.started) this.header(t);
    this.event('O', t, this.frame(fn));
  }

  close(fn: number, _start: number, end: number): void {
    this.event('C', end, this.frame(fn));
  }

  /** Closes the document; `end` is the trace's last timestamp. */
  end(end: number): void {
    if (!this.started) this.header(end);
    const frames = this.frames.map((name) => `{"name":${JSON.stringify(name)}}`).join(',\n');
    this.out.write(`\n],"endValue":${us(Math.max(end, this.last))}}],\n"shared":{"frames":[\n${frames}\n]},"exporter":"boot-trace","activeProfileIndex":0}\n`);
  }

  private header(t: number): void {
    this.started = true;
    this.out.write(`{"$schema":"${SPEEDSCOPE_SCHEMA}","name":${JSON.stringify(this.profileName)},\n"profiles":[{"type":"evented","name":${JSON.stringify(this.profileName)},"unit":"${this.unit}","startValue":${us(t)},"events":[\n`);
  }

  private event(type: 'O' | 'C', t: number, frame: number): void {
    const at = us(t);
    this.last = at;
    const text = `{"type":"${type}","at":${at},"frame":${frame}}`;
    this.out.write(this.first ? text : ',\n' + text);
    this.first = false;
  }

  private frame(fn: number): number {
    if (fn >= this.frameOf.length) {
      const bigger = new Int32Array(Math.max(fn + 1, this.frameOf.length * 2)).fill(-1);
      bigger.set(this.frameOf);
      this.frameOf = bigger;
    }
    let f = this.frameOf[fn]!;
    if (f < 0) {
      f = this.frameOf[fn] = this.frames.length;
      this.frames.push(this.names[fn]!);
    }
    return f;
  }
}
