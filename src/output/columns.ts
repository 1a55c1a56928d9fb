/**
 * How the trace analyzers' rows look as tables: one definition for their own commands and for `summary`.
 * Time headings carry the trace's unit (src/output/clock.ts): "time (us)", or "time (steps)" for a trace
 * on the instruction clock. CSV and JSON keep the `_us` field names whatever the clock (a stable schema):
 * the command's stderr warning says when they hold steps.
 */
import type { FirstCallRow } from '../../analyzers/first-calls.js';
import type { HotFunctionRow } from '../../analyzers/hot-functions.js';
import type { SyscallRow, SyscallSummaryRow } from '../../analyzers/syscalls.js';
import { showCount, showUs, type Column } from './write.js';

/** 'us' or 'steps': what a time column holds. */
export type TimeUnit = 'us' | 'steps';

export const hotFunctionColumns = (unit: TimeUnit = 'us'): Column<HotFunctionRow>[] => [
  { key: 'function', header: 'function' },
  { key: 'time_us', header: `time (${unit})`, show: showUs },
  { key: 'percent', header: '%', show: (v) => (v as number).toFixed(2) },
  { key: 'lines', header: 'lines', show: showCount },
];

export const firstCallColumns = (unit: TimeUnit = 'us'): Column<FirstCallRow>[] => [
  { key: 'first_us', header: `first (${unit})`, show: showUs },
  { key: 'function', header: 'function' },
];

export const syscallColumns = (unit: TimeUnit = 'us'): Column<SyscallRow>[] => [
  { key: 'time_us', header: `time (${unit})`, show: showUs },
  { key: 'syscall', header: 'syscall' },
  { key: 'duration_us', header: `duration (${unit})`, show: showUs },
  { key: 'user_address', header: 'from' },
];

export const syscallSummaryColumns = (unit: TimeUnit = 'us'): Column<SyscallSummaryRow>[] => [
  { key: 'syscall', header: 'syscall' },
  { key: 'count', header: 'count' },
  { key: 'total_us', header: `total (${unit})`, show: showUs },
  { key: 'mean_us', header: `mean (${unit})`, show: showUs },
  { key: 'max_us', header: `max (${unit})`, show: showUs },
];
