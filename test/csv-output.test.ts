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

  it('writes numbers as JavaScript does, on both sides of its 3-decimal fast path (csv.ts)', async () => {
    const round = (v: number): number => Math.round(v * 1000) / 1000;
    const numbers = [
      0, -0, 0.001, 0.01, 0.1, 0.5, 1, 9, 10, 99.99, 100.1, 1000003.01, 1000072.125, 1234567.891, 2 ** 31, 2 ** 32 + 0.5,
      3999999999999.999, 4e12, 4e12 + 0.5, 1e15, 1e21, 1.5e-7, 1e-7, 0.0005, 0.30000000000000004, -1.25, -0.001, 1 / 3, 2 / 3,
      Number.MAX_SAFE_INTEGER, Number.MIN_VALUE,
    ];
    // Rounded as the analyzers round (roundUs), over several magnitudes.
    for (let k = 0; k < 2000; k++) numbers.push(round(Math.exp(k / 60) * 0.37 + k / 7));
    const rows: Row[] = numbers.map((v, i) => ({ name: `n${i}`, value: v, note: i % 2 === 0 ? v : String(v) }));
    expect(await ours(rows)).toBe(await theirs(rows));
  });

  it('writes the header line alone when there are no rows, as fast-csv does', async () => {
    expect(await ours([])).toBe(await theirs([]));
  });
});
