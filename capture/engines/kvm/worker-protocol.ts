/**
 * What capture.ts and its vCPU worker (vcpu-worker.ts) send each other, and the files (named in
 * capture/output/folder.ts): the worker writes console.log; in step mode it records trace.log's events and
 * the main thread formats and writes them (trace-channel.ts).
 */
import type { StopReason } from './exits.js';
import type { StepWatchdogCounts, RearmMode } from './debug/step-watchdog.js';
import type { Clock, Mode, TraceFromTrap } from './run-loop.js';
import type { TraceChannel } from './trace-channel.js';

export interface WorkerRequest {
  kernelPath: string;
  memoryMiB: number;
  cmdline: string;
  initrdPath?: string;
  systemMap?: string;
  mode: Mode;
  clock: Clock;
  blockIrq: boolean;
  maxSteps: number;
  outDir: string;
  echo: boolean;
  control: SharedArrayBuffer;
  /** Step mode: where the worker records trace.log's events for the main thread (trace-channel.ts). */
  trace?: TraceChannel;
  /** Step mode: run to a hardware breakpoint at this linear address first (run-loop.ts). */
  traceFrom?: bigint;
  /** Step mode: stop when this address is reached. */
  traceUntil?: bigint;
  /** Stop when the console shows BOOT_TIME:<this stage>. */
  untilMarker?: string;
  /** How --trace-from is caught (run-loop.ts). */
  traceFromTrap?: TraceFromTrap;
  /** When single-step is set again (debug/step-watchdog.ts). */
  rearm?: RearmMode;
}

export interface WorkerResult {
  phases: Record<string, number>;
  symbolsUs: number;
  guest: Record<string, number>;
  reason: StopReason;
  detail: string;
  rip: string;
  symbol: string;
  steps: number;
  exits: number;
  consoleLines: number;
  traceLines: number;
  cmdline: string;
  /** With traceFrom: host microseconds since VM creation when stepping began. */
  windowStartUs?: number;
  /** Host microseconds since VM creation when the vCPU loop stopped (console.log's clock). */
  stopUs: number;
  traceFromBy?: 'hw' | 'sw' | null;
  traceFromNote?: string;
  watchdog?: StepWatchdogCounts;
}

export type WorkerMessage =
  | { type: 'ready'; tid: number; runAddr: number; runSize: number }
  | { type: 'done'; result: WorkerResult }
  | { type: 'error'; message: string; user: boolean };

export { CONSOLE_FILE, TRACE_FILE } from '../../output/folder.js';
