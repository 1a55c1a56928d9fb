/**
 * Chrome trace event JSON (loads in Perfetto and chrome://tracing), written while the stacks are rebuilt:
 * one complete event (ph "X", ts/dur in microseconds) per call, emitted when the call closes, so inner
 * calls come before their callers in the file (viewers sort by ts). Extra tracks (syscalls, stages,
 * markers, initcalls, host phases) are added after the trace by `track()`.
 *   {"traceEvents":[
 *   {"name":"start_kernel","cat":"call","ph":"X","ts":10,"dur":20,"pid":1,"tid":1},
 *   ...]}
 */
import type { StackListener } from '../../analyzers/call-stacks.js';
import type { TextSink } from './sink.js';

/** The guest (pid 1) and the VMM (pid 2); tids are the tracks. */
export const GUEST = 1, HOST = 2;
export const TRACKS = { stacks: 1, syscalls: 2, stages: 3, markers: 4, initcalls: 5, phases: 1 } as const;

/** Microseconds with nanosecond resolution, as short as JSON allows. */
const us = (v: number): number => Math.round(v * 1000) / 1000;

export class ChromeTraceWriter implements StackListener {
  private first = true;
  private readonly quoted: string[] = [];

  constructor(private readonly out: TextSink, private readonly names: string[], processName: string) {
    out.write('{"displayTimeUnit":"ns","traceEvents":[\n');
    this.meta(GUEST, 0, 'process_name', processName);
    this.meta(GUEST, TRACKS.stacks, 'thread_name', 'vCPU 0 call stacks');
  }

  open(): void {}

  close(fn: number, start: number, end: number): void {
    let name = this.quoted[fn];
    if (name === undefined) name = this.quoted[fn] = JSON.stringify(this.names[fn]);
    this.raw(`{"name":${name},"cat":"call","ph":"X","ts":${us(start)},"dur":${us(end - start)},"pid":1,"tid":1}`);
  }

  /** Names a track (thread) of pid. */
  meta(pid: number, tid: number, kind: 'process_name' | 'thread_name', name: string): void {
    this.raw(JSON.stringify({ name: kind, ph: 'M', pid, tid, args: { name } }));
  }

  /** A span on a track. */
  span(pid: number, tid: number, cat: string, name: string, start: number, dur: number, args?: Record<string, unknown>): void {
    this.raw(JSON.stringify({ name, cat, ph: 'X', ts: us(start), dur: us(Math.max(0, dur)), pid, tid, ...(args ? { args } : {}) }));
  }

  /** A point in time on a track (an instant event, thread scope). */
  instant(pid: number, tid: number, cat: string, name: string, t: number, args?: Record<string, unknown>): void {
    this.raw(JSON.stringify({ name, cat, ph: 'i', s: 't', ts: us(t), pid, tid, ...(args ? { args } : {}) }));
  }

  end(): void {
    this.out.write('\n]}\n');
  }

  private raw(event: string): void {
    this.out.write(this.first ? event : ',\n' + event);
    this.first = false;
  }
}
