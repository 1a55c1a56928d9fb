/**
 * Writes an analyzer's rows as an aligned table, CSV (through fast-csv) or a JSON array.
 * Every analyzer goes through here, so `--format` means the same thing everywhere.
 * Default: a table when stdout is a terminal, CSV when it is piped (machines read pipes).
 */
import type { Writable } from 'node:stream';
import { format as csvFormat } from 'fast-csv';

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
  // One object per line: still one JSON array, but greppable and diffable.
  if (format === 'json') return write(out, rows.length ? `[\n${rows.map((r) => JSON.stringify(r)).join(',\n')}\n]\n` : '[]\n');
  if (format === 'csv') return writeCsv(rows, columns, out);
  return write(out, renderTable(rows, columns));
}

export function renderTable<R extends object>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cells = rows.map((row) =>
    columns.map((c) => {
      const v = row[c.key];
      return c.show ? c.show(v, row) : v === undefined || v === null ? '' : String(v);
    }),
  );
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  // Numbers read best right-aligned; decide per column from the first row.
  const right = columns.map((c) => rows.length > 0 && typeof rows[0]![c.key] === 'number');
  const line = (parts: string[]): string =>
    parts.map((p, i) => (right[i] ? p.padStart(widths[i]!) : p.padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  return line(columns.map((c) => c.header)) + cells.map(line).join('');
}

function writeCsv<R extends object>(rows: readonly R[], columns: readonly Column<R>[], out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = csvFormat({ headers: columns.map((c) => c.key), includeEndRowDelimiter: true, alwaysWriteHeaders: true });
    stream.on('error', reject);
    stream.on('end', resolve);
    stream.on('data', (chunk: Buffer) => out.write(chunk));
    for (const row of rows) stream.write(columns.map((c) => row[c.key] ?? ''));
    stream.end();
  });
}

function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

/** Rounds a microsecond figure for output: nanosecond resolution, no float noise like 0.30000000000000004. */
export const roundUs = (v: number): number => Math.round(v * 1000) / 1000;
/** Formats microseconds for a table: "1,234.567". */
export const showUs = (v: unknown): string =>
  typeof v === 'number' ? v.toLocaleString('en-US', { minimumFractionDigits: 3, maximumFractionDigits: 3 }) : String(v ?? '');
