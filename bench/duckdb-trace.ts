/**
 * DuckDB over a trace, the baseline a user with SQL would run instead (bench/analyzers.ts): the trace read
 * as a one-column CSV (one VARCHAR per line, no quoting, a delimiter that never occurs), the lines numbered,
 * the timestamp and the function name split out, and then
 *   hot:   self time per function with a window function (lead(t) over the line order), summed and sorted;
 *   first: each function's first line (min over the line number), in order of appearance.
 * Rows go to stdout as CSV, as the analyzers' do.
 *
 *   node dist/bench/duckdb-trace.js hot|first FILE
 */
import { DuckDBInstance } from '@duckdb/node-api';

const LINES = (file: string): string => `
  SELECT row_number() OVER () AS n, line
  FROM read_csv('${file.replace(/'/g, "''")}', columns = {'line': 'VARCHAR'}, delim = '\\x01', quote = '', escape = '',
                header = false, auto_detect = false)
  WHERE line <> '' AND NOT starts_with(line, '#')`;

const QUERIES: Record<string, (file: string) => string> = {
  hot: (file) => `
    WITH l AS (${LINES(file)}),
    e AS (SELECT n, CAST(split_part(line, ' ', 1) AS DOUBLE) AS t, split_part(line, ' ', 2) AS f FROM l),
    d AS (SELECT f, greatest(coalesce(lead(t) OVER (ORDER BY n) - t, 0), 0) AS dt FROM e)
    SELECT f AS function, sum(dt) AS time_us, count(*) AS lines FROM d GROUP BY f ORDER BY time_us DESC, lines DESC, f`,
  first: (file) => `
    WITH l AS (${LINES(file)}),
    e AS (SELECT n, split_part(line, ' ', 1) AS t, split_part(line, ' ', 2) AS f FROM l)
    SELECT f AS function, arg_min(t, n) AS first_us FROM e GROUP BY f ORDER BY min(n)`,
};

const [kind, file] = process.argv.slice(2);
const query = QUERIES[kind ?? ''];
if (!query || !file) {
  process.stderr.write('usage: node dist/bench/duckdb-trace.js hot|first FILE\n');
  process.exit(2);
}
const db = await DuckDBInstance.create(':memory:');
const connection = await db.connect();
const result = await connection.runAndReadAll(query(file));
const rows = result.getRows();
let out = '';
for (const r of rows) out += r.map(String).join(',') + '\n';
process.stdout.write(out);
