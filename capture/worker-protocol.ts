/** What capture.ts and its vCPU worker (vcpu-worker.ts) send each other, and the files the worker writes. */
import type { StopReason } from './exits.js';
import type { Clock, Mode } from './run-loop.js';

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
}

export type WorkerMessage =
  | { type: 'ready'; tid: number; runAddr: number; runSize: number }
  | { type: 'done'; result: WorkerResult }
  | { type: 'error'; message: string; user: boolean };

export const TRACE_FILE = 'trace.log';
export const CONSOLE_FILE = 'console.log';
