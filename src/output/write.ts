/**
 * Writes an analyzer's rows as an aligned table, CSV (fast-csv's format) or a JSON array.
 * Every analyzer goes through here, so `--format` means the same thing everywhere.
 * Default: a table when stdout is a terminal, CSV when it is piped (machines read pipes).
 */
import type { Writable } from 'node:stream';
import { CsvEncoder } from './csv.js';

export type OutputFormat = 'table' | 'csv' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'csv', 'json'];

export interface Column<R> {
  /** The row's key; also the CSV/JSON field name. */
  key: keyof R & string;
  /** The table heading. */
  header: string;
  /** How the table shows the value (CSV and JSON always get the raw value). */
  show?: (value: R[keyof R], row: R) => string;
}

export function defaultFormat(out: { isTTY?: boolean } = process.stdout): OutputFormat {
  return out.isTTY ? 'table' : 'csv';
}

export async function writeRows<R extends object>(
  rows: readonly R[],
  columns: readonly Column<R>[],
  format: OutputFormat,
  out: Writable = process.stdout,
): Promise<void> {
  const writer = rowWriter(columns, format, out);
  for (const row of rows) writer.row(row);
  await writer.end();
}

/**
 * Writes rows as they are produced, so an analyzer with one row per event (syscalls) needs no memory for
 * them in CSV and JSON. A table needs every row for its column widths, so it collects them.
 * Output goes out in blocks of ~64 KiB: one write per row would cost a system call per row.
 */
export interface RowWriter<R> {
  row(row: R): void;
  end(): Promise<void>;
}

const BLOCK = 1 << 16;

export function rowWriter<R extends object>(columns: readonly Column<R>[], format: OutputFormat, out: Writable = process.stdout): RowWriter<R> {
  // A cell the guard emptied shows as empty in a table too, whatever the column's own show() makes of null.
  const emptied = new WeakMap<object, Set<string>>();
  const shown = columns.map((c) => (c.show ? { ...c, show: (v: R[keyof R], row: R) => (emptied.get(row)?.has(c.key) ? '' : c.show!(v, row)) } : c));
  const inner = formatWriter(shown, format, out);
  const guard = valueGuard(columns, undefined, (row, key) => {
    let keys = emptied.get(row);
    if (!keys) emptied.set(row, (keys = new Set()));
    keys.add(key);
  });
  return { row: (r) => inner.row(guard(r)), end: () => inner.end() };
}

/** Keys whose numbers are durations or shares of time: never negative. */
const NON_NEGATIVE_KEY = /(?:^|_)(?:duration|time|total|mean|max|min|inclusive|self|span|sum)_us$/;

/**
 * The last line of defence for what the analyzers compute: no Infinity or NaN, no percent outside
 * [0, 100], no negative duration ever reaches the output. Analyzers reject or clamp such values where they
 * arise, with a reason per input line (docs/trace-format.md, docs/robustness.md); one that still gets here
 * is a bug, so it is written as an empty cell (JSON null) and named on stderr once per column, rather than
 * shown as if it were a measurement.
 */
export function valueGuard<R extends object>(
  columns: readonly Column<R>[],
  warn = (line: string): void => void process.stderr.write(line + '\n'),
  onEmptied?: (row: R, key: string) => void,
): (row: R) => R {
  const warned = new Set<string>();
  return (row) => {
    let fixed: R | null = null;
    for (const { key } of columns) {
      const v = row[key] as unknown;
      if (typeof v !== 'number') continue;
      const bad = !Number.isFinite(v) ? 'not a finite number'
        : key === 'percent' && (v < 0 || v > 100) ? 'a percent outside 0-100'
        : v < 0 && NON_NEGATIVE_KEY.test(key) ? 'a negative duration' : null;
      if (!bad) continue;
      fixed ??= { ...row };
      (fixed as Record<string, unknown>)[key] = null;
      onEmptied?.(fixed, key);
      if (!warned.has(key)) {
        warned.add(key);
        warn(`boot-trace: internal error: ${key} ${v} is ${bad}; written as empty (please report this with the input)`);
      }
    }
    return fixed ?? row;
  };
}

function formatWriter<R extends object>(columns: readonly Column<R>[], format: OutputFormat, out: Writable): RowWriter<R> {
  let pending: (string | Buffer)[] = [];
  let pendingBytes = 0;
  const push = (chunk: string | Buffer): void => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= BLOCK) flush();
  };
  const flush = (): void => {
    if (pending.length) out.write(pending.length === 1 ? pending[0]! : pending.map((c) => (typeof c === 'string' ? c : c.toString())).join(''));
    pending = [];
    pendingBytes = 0;
  };
  const finish = (): Promise<void> => {
    flush();
    return new Promise((resolve, reject) => out.write('', (err) => (err ? reject(err) : resolve())));
  };

  if (format === 'table') {
    const rows: R[] = [];
    return { row: (r) => void rows.push(r), end: () => (push(renderTable(rows, columns)), finish()) };
  }
  if (format === 'json') {
    // One object per line: still one JSON array, but greppable and diffable.
    let n = 0;
    return {
      row: (r) => push(`${n++ ? ',\n' : '[\n'}${JSON.stringify(r)}`),
      end: () => (push(n ? '\n]\n' : '[]\n'), finish()),
    };
  }
  // CSV: each row encoded as it comes, by fast-csv's rules (csv.ts) but without its stream per row, which
  // cost more than the analysis itself on a 200 k-row syscalls listing (docs/performance.md).
  // test/csv-output.test.ts holds the output byte for byte to fast-csv's.
  const enc = new CsvEncoder(columns.map((c) => c.key));
  enc.header();
  const written = (): void => {
    for (const block of enc.full()) out.write(block);
  };
  return {
    row: (r) => {
      enc.row(r);
      written();
    },
    end: () => {
      enc.newline();
      for (const block of enc.take()) out.write(block);
      return finish();
    },
  };
}

export function renderTable<R extends object>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cells = rows.map((row) =>
    columns.map((c) => {
      const v = row[c.key];
      return c.show ? c.show(v, row) : v === undefined || v === null ? '' : String(v);
    }),
  );
  // A loop, not Math.max(...cells): a table of 300 k rows would overflow the call's arguments.
  const widths = columns.map((c, i) => {
    let w = c.header.length;
    for (const r of cells) if (r[i]!.length > w) w = r[i]!.length;
    return w;
  });
  // Numbers read best right-aligned; decide per column from the first row.
  const right = columns.map((c) => rows.length > 0 && typeof rows[0]![c.key] === 'number');
  const line = (parts: string[]): string =>
    parts.map((p, i) => (right[i] ? p.padStart(widths[i]!) : p.padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  return line(columns.map((c) => c.header)) + cells.map(line).join('');
}

/** Rounds a microsecond figure for output: nanosecond resolution, no float noise like 0.30000000000000004. */
export const roundUs = (v: number): number => Math.round(v * 1000) / 1000;
/** Formats microseconds for a table: "1,234.567". */
export const showUs = (v: unknown): string => (typeof v === 'number' ? (US ??= new Intl.NumberFormat('en-US', { minimumFractionDigits: 3, maximumFractionDigits: 3 })).format(v) : String(v ?? ''));
// One formatter, made once: Number.toLocaleString with options builds one per call (13 s for a 300 k-row table).
// Made on first use, not at load: the first Intl formatter loads ICU's locale data (~15 ms), which a CSV or
// JSON output never needs (docs/performance.md, "CLI start").
let US: Intl.NumberFormat | undefined;
let COUNT: Intl.NumberFormat | undefined;
/** Formats a count for a table: "1,234". */
export const showCount = (v: unknown): string => (typeof v === 'number' ? (COUNT ??= new Intl.NumberFormat('en-US')).format(v) : String(v ?? ''));
