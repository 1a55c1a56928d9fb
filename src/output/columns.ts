/** How the trace analyzers' rows look as tables: one definition for their own commands and for `summary`. */
import type { FirstCallRow } from '../../analyzers/first-calls.js';
import type { HotFunctionRow } from '../../analyzers/hot-functions.js';
import type { SyscallRow, SyscallSummaryRow } from '../../analyzers/syscalls.js';
import { showUs, type Column } from './write.js';

export const HOT_FUNCTION_COLUMNS: Column<HotFunctionRow>[] = [
  { key: 'function', header: 'function' },
  { key: 'time_us', header: 'time (us)', show: showUs },
  { key: 'percent', header: '%', show: (v) => (v as number).toFixed(2) },
  { key: 'lines', header: 'lines', show: (v) => (v as number).toLocaleString('en-US') },
];

export const FIRST_CALL_COLUMNS: Column<FirstCallRow>[] = [
  { key: 'first_us', header: 'first (us)', show: showUs },
  { key: 'function', header: 'function' },
];

export const SYSCALL_COLUMNS: Column<SyscallRow>[] = [
  { key: 'time_us', header: 'time (us)', show: showUs },
  { key: 'syscall', header: 'syscall' },
  { key: 'duration_us', header: 'duration (us)', show: showUs },
  { key: 'user_address', header: 'from' },
];

export const SYSCALL_SUMMARY_COLUMNS: Column<SyscallSummaryRow>[] = [
  { key: 'syscall', header: 'syscall' },
  { key: 'count', header: 'count' },
  { key: 'total_us', header: 'total (us)', show: showUs },
  { key: 'mean_us', header: 'mean (us)', show: showUs },
  { key: 'max_us', header: 'max (us)', show: showUs },
];
