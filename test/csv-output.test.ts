/**
 * The CSV every analyzer writes (src/output/write.ts) is fast-csv's format, byte for byte: the rows that
 * need quoting (quote, comma, CR, LF, '|', NUL bytes), numbers, nulls and empty output are written through
 * rowWriter and through fast-csv's own formatter with the options write.ts used to pass it, and compared.
 */
import { PassThrough } from 'node:stream';
import { writeToString } from 'fast-csv';
import { describe, expect, it } from 'vitest';
import { rowWriter, type Column } from '../src/output/write.js';

type Row = { name: unknown; value: unknown; note: unknown };
const columns: Column<Row>[] = [{ key: 'name', header: 'name' }, { key: 'value', header: 'value' }, { key: 'note', header: 'note' }];

async function ours(rows: Row[]): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  const w = rowWriter(columns, 'csv', out);
  for (const r of rows) w.row(r);
  await w.end();
  return Buffer.concat(chunks).toString('utf8');
}

const theirs = (rows: Row[]): Promise<string> =>
  writeToString(rows.map((r) => columns.map((c) => r[c.key] ?? '')), { headers: columns.map((c) => c.key), includeEndRowDelimiter: true, alwaysWriteHeaders: true });

describe('CSV output', () => {
  it('is fast-csv\'s, byte for byte, on cells that need quoting and on plain ones', async () => {
    const cells = ['plain', 'a,b', 'say "hi"', 'two\nlines', 'cr\rhere', 'pipe|name', 'nul\0byte', '"', '', ' spaced ', 'é ü', 'x\r\n"y",z'];
    const numbers = [0, 1.5, -2, 1234567.891, 1e21, 0.1 + 0.2];
    const rows: Row[] = [];
    for (let i = 0; i < cells.length; i++) rows.push({ name: cells[i], value: numbers[i % numbers.length], note: cells[cells.length - 1 - i] });
    rows.push({ name: null, value: undefined, note: true });
    expect(await ours(rows)).toBe(await theirs(rows));
  });

  it('writes the header line alone when there are no rows, as fast-csv does', async () => {
    expect(await ours([])).toBe(await theirs([]));
  });
});
