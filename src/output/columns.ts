/**
 * How the trace analyzers' rows look as tables: one definition for their own commands and for `summary`.
 * Time headings carry the trace's unit (src/output/clock.ts): "time (us)", or "time (instructions)" (without decimals) for a trace
 * on the instruction clock. CSV and JSON keep the `_us` field names whatever the clock (a stable schema):
 * the command's stderr warning says when they hold steps.
 */
import type { FirstCallRow } from '../../analyzers/first-calls.js';
import type { HotFunctionRow } from '../../analyzers/hot-functions.js';
import type { SyscallRow, SyscallSummaryRow } from '../../analyzers/syscalls.js';
import { showCount, showUs, type Column } from './write.js';

/** 'us' or 'steps' (instruction counts: --clock instructions, or capture --clock steps): what a time column holds. */
export type TimeUnit = 'us' | 'steps' | 'blocks';

/** The unit in a time heading: "us", or "instructions" for a count (one name for both clocks' counts). */
export const unitHeading = (unit: TimeUnit): string => (unit === 'steps' ? 'instructions' : unit);

/** How a time cell shows: microseconds to the nanosecond, counts as whole numbers (no decimals on a count). */
export const showTime = (unit: TimeUnit): ((v: unknown) => string) => (unit === 'us' ? showUs : showCount);

/** What one trace event is: a line of a text trace, a record of a whole-boot recording. */
export type EventWord = 'lines' | 'records';

export const hotFunctionColumns = (unit: TimeUnit = 'us', events: EventWord = 'lines'): Column<HotFunctionRow>[] => [
  { key: 'function', header: 'function' },
  { key: 'time_us', header: `time (${unitHeading(unit)})`, show: showTime(unit) },
  { key: 'percent', header: '%', show: (v) => (v as number).toFixed(2) },
  { key: 'lines', header: events, show: showCount },
];

export const firstCallColumns = (unit: TimeUnit = 'us'): Column<FirstCallRow>[] => [
  { key: 'first_us', header: `first (${unitHeading(unit)})`, show: showTime(unit) },
  { key: 'function', header: 'function' },
];

export const syscallColumns = (unit: TimeUnit = 'us'): Column<SyscallRow>[] => [
  { key: 'time_us', header: `time (${unitHeading(unit)})`, show: showTime(unit) },
  { key: 'syscall', header: 'syscall' },
  { key: 'duration_us', header: `duration (${unitHeading(unit)})`, show: showTime(unit) },
  { key: 'user_address', header: 'from' },
];

export const syscallSummaryColumns = (unit: TimeUnit = 'us'): Column<SyscallSummaryRow>[] => [
  { key: 'syscall', header: 'syscall' },
  { key: 'count', header: 'count' },
  { key: 'total_us', header: `total (${unitHeading(unit)})`, show: showTime(unit) },
  { key: 'mean_us', header: `mean (${unitHeading(unit)})`, show: showTime(unit) },
  { key: 'max_us', header: `max (${unitHeading(unit)})`, show: showTime(unit) },
];
