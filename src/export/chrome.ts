/**
 * Chrome trace event JSON (loads in Perfetto, chrome://tracing and speedscope), written while the stacks
 * are rebuilt: one complete event (ph "X", ts/dur in microseconds) per call, emitted when the call closes,
 * so inner calls come before their callers in the file (viewers sort by ts). Extra tracks (syscalls,
 * stages, markers, initcalls, host phases) are added after the trace.
 *   {"displayTimeUnit":"ms","otherData":{"clock":"host-stepping",...},"traceEvents":[
 *   {"name":"start_kernel","cat":"call","ph":"X","ts":10,"dur":20,"pid":1,"tid":1},
 *   ...]}
 * Times are on a binary grid (ticks.ts) so that `ts + dur` nests in float64. Calls of zero duration are
 * left out (they have no width and would tie with their neighbours). The Trace Event Format's timestamps are
 * always microseconds; `displayTimeUnit` only picks how a viewer shows them ("ms", the format's default).
 * A steps-clock trace still writes its instruction indexes as `ts`: `otherData` says so.
 */
import type { StackListener } from '../../analyzers/call-stacks.js';
import type { Clock } from '../output/clock.js';
import type { TextSink } from './sink.js';
import { onGrid, TICKS_PER_US } from './ticks.js';

/** The guest (pid 1) and the VMM (pid 2); tids are the tracks. */
export const GUEST = 1, HOST = 2;
/** Initcalls take tids 5, 6, ...: one per lane of calls that overlap without nesting (async probes). */
export const TRACKS = { stacks: 1, syscalls: 2, stages: 3, markers: 4, initcalls: 5, phases: 1 } as const;

export class ChromeTraceWriter implements StackListener {
  private first = true;
  private readonly quoted: string[] = [];
  /** Calls left out for being shorter than minDur (not counting zero-width ones). */
  shortCalls = 0;

  /**
   * @param minDur calls shorter than this (us, or the count clock's unit) are left out: their time shows as
   *   their caller's self time, and their callees are shorter still (docs/call-stacks.md, "Exports"). 0 keeps
   *   every call.
   */
  constructor(private readonly out: TextSink, private readonly names: string[], processName: string, clock: Clock, private readonly minDur = 0) {
    const unit = clock.unit === 'us' ? 'us' : clock.label;
    const floor = minDur > 0 ? { min_dur_us: minDur, left_out: `calls shorter than ${minDur} ${unit} are left out: their time is their caller's` } : {};
    const other = { clock: clock.kind, unit: clock.unit === 'us' ? 'microseconds' : `ts and dur count ${clock.label}, not microseconds`, meaning: clock.description, ...(clock.warning ? { warning: clock.warning } : {}), ...floor, exporter: 'boot-trace' };
    out.write(`{"displayTimeUnit":"ms","otherData":${JSON.stringify(other)},"traceEvents":[\n`);
    this.meta(GUEST, 0, 'process_name', processName);
    this.meta(GUEST, TRACKS.stacks, 'thread_name', 'vCPU 0 call stacks');
  }

  /** Per function id: the grid end of its last closed frame. Per depth: whether the open frame starts a tick late, and when it opened. */
  private lastEnd: number[] = [];
  private late: boolean[] = [];
  private openedAt: number[] = [];

  /**
   * A frame that opens at the instant a frame of the same function closed (a task switch closes every
   * frame and opens the next task's, often ret_from_fork or the same callers again) starts one grid tick
   * later, and so do its callees opening at that instant. Viewers turn complete events into begin/end
   * pairs; at a tie between a begin and an end of the same name speedscope takes the begin first and then
   * ends the wrong frame ("Tried to end ..."). In step traces a line of the caller separates two calls of
   * a function, so they have no such tie and their exports are unchanged.
   */
  open(fn: number, t: number, depth: number): void {
    const at = onGrid(t);
    this.late[depth] = this.lastEnd[fn] === at || (depth > 0 && this.late[depth - 1] === true && this.openedAt[depth - 1] === at);
    this.openedAt[depth] = at;
  }

  close(fn: number, start: number, end: number, depth: number): void {
    const te = onGrid(end);
    const ts = onGrid(start) + (this.late[depth] ? 1 / TICKS_PER_US : 0);
    this.lastEnd[fn] = te;
    this.late[depth] = false;
    if (te <= ts) return;
    if (te - ts < this.minDur) {
      this.shortCalls++;
      return;
    }
    let name = this.quoted[fn];
    if (name === undefined) name = this.quoted[fn] = JSON.stringify(this.names[fn]);
    this.raw(`{"name":${name},"cat":"call","ph":"X","ts":${ts},"dur":${te - ts},"pid":1,"tid":1}`);
  }

  /** Names a track (thread) of pid. */
  meta(pid: number, tid: number, kind: 'process_name' | 'thread_name', name: string): void {
    this.raw(JSON.stringify({ name: kind, ph: 'M', pid, tid, args: { name } }));
  }

  /**
   * A span on a track. One of no length on the grid (a host phase of 0 us, two BOOT_TIME markers the host
   * stamped at once) is written as an instant: a zero-length complete event that starts where the span
   * before it ends makes viewers end the wrong frame (speedscope: "Tried to end ... when ... was on the top").
   */
  span(pid: number, tid: number, cat: string, name: string, start: number, dur: number, args?: Record<string, unknown>): void {
    const ts = onGrid(start), te = onGrid(start + Math.max(0, dur));
    if (te === ts) return this.instant(pid, tid, cat, name, start, args);
    this.raw(JSON.stringify({ name, cat, ph: 'X', ts, dur: te - ts, pid, tid, ...(args ? { args } : {}) }));
  }

  /** A point in time on a track (an instant event, thread scope). */
  instant(pid: number, tid: number, cat: string, name: string, t: number, args?: Record<string, unknown>): void {
    this.raw(JSON.stringify({ name, cat, ph: 'i', s: 't', ts: onGrid(t), pid, tid, ...(args ? { args } : {}) }));
  }

  end(): void {
    this.out.write('\n]}\n');
  }

  private raw(event: string): void {
    this.out.write(this.first ? event : ',\n' + event);
    this.first = false;
  }
}
