/**
 * The small things a new user meets first (issue 13, item 9): `summary --format`, `--top` values that are
 * not row counts, and error messages that name the user's file, never our temporary one.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, sample } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'boot-trace-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('summary --format', () => {
  it('takes table, csv and json like every analyzer', () => {
    const trace = sample('syscalls.log');
    const json = runCli(['summary', trace, '--format', 'json']);
    expect(json.status, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['trace', 'events', 'functions', 'syscalls_total', 'clock', 'hot_functions', 'first_calls', 'syscalls']);
    expect(doc.syscalls_total).toBe(4);
    const csv = runCli(['summary', trace, '--format', 'csv', '--top', '1']);
    expect(csv.status, csv.stderr).toBe(0);
    expect(csv.stdout).toBe('# hot_functions\nfunction,time_us,percent,lines\n[user],11,20,6\n\n# first_calls\nfirst_us,function\n102,entry_SYSCALL_64\n\n# syscalls\nsyscall,count,total_us,mean_us,max_us\nwrite,1,24,24,24\n');
    const table = runCli(['summary', trace, '--format', 'table']);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/\nSystem calls \(4 in all, per call, most total time first\)\nsyscall +count +total \(us\) +mean \(us\) +max \(us\)\n/);
    const bad = runCli(['summary', trace, '--format', 'xml']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/Argument: format, Given: "xml", Choices: "table", "csv", "json"/);
  });
});

describe('--top', () => {
  const cases: string[][] = [
    ['hot-functions', sample('syscalls.log')], ['summary', sample('syscalls.log')], ['first-calls', sample('syscalls.log')],
    ['syscalls', sample('syscalls.log')], ['callees', sample('syscalls.log'), 'do_syscall_64'], ['report', sample('syscalls.log'), '-o', join(work, 'r.html')],
  ];
  for (const bad of ['abc', '-3', '2.5', '']) {
    it(`refuses --top ${JSON.stringify(bad)} in one line on every command that prints rows`, () => {
      for (const args of cases) {
        const r = runCli([...args, '--top', bad]);
        expect(r.status, `${args[0]}: ${r.stdout}`).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr.trim().split('\n'), args[0]).toEqual([`boot-trace: --top ${JSON.stringify(bad)}: not a row count (a whole number, 0 for all)`]);
      }
    });
  }

  it('keeps that many rows, 0 for all', () => {
    const rows = (args: string[]): number => runCli([...args, '--format', 'csv']).stdout.trimEnd().split('\n').length - 1;
    const trace = sample('2016-init-module.log');
    expect(rows(['hot-functions', trace, '--top', '3'])).toBe(3);
    expect(rows(['first-calls', trace, '--top', '4'])).toBe(4);
    const all = rows(['hot-functions', trace, '--top', '0']);
    expect(all).toBeGreaterThan(3);
    expect(all).toBe(readFileSync(trace, 'utf8').split('\n').filter((l) => /^\d/.test(l)).reduce((names, l) => names.add(l.split(/\s+/)[1]!.replace(/^[0-9a-f]+$/, '[addr]')), new Set<string>()).size);
    expect(rows(['first-calls', trace, '--top', '0'])).toBeGreaterThan(4);
  });
});

describe('errors name the file asked for', () => {
  it('never shows the temporary name an output is written under, and leaves nothing behind', () => {
    const missing = join(work, 'no-such-folder', 'out.json');
    for (const args of [
      ['export', sample('syscalls.log'), '--to', 'chrome', '-o', missing],
      ['flamegraph', sample('syscalls.log'), '-o', missing],
      ['report', sample('syscalls.log'), '-o', missing],
      ['export', sample('syscalls.log'), '--to', 'collapsed', '-o', work],
    ]) {
      const r = runCli(args);
      expect(r.status, args.join(' ')).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toMatch(/tmp-\d+/);
      expect(lines[0]).toMatch(new RegExp(`^boot-trace: ${args.at(-1)!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot write: (ENOENT: no such folder|EISDIR: is a folder)$`));
    }
    // A folder the user cannot write to (root can, so only checked as another user).
    if (process.getuid?.() !== 0) {
      const ro = join(work, 'read-only');
      writeFileSync(join(work, 'x'), '');
      chmodSync(work, 0o555);
      const r = runCli(['export', sample('syscalls.log'), '--to', 'chrome', '-o', join(ro, 'x.json')]);
      chmodSync(work, 0o755);
      expect(r.stderr).not.toMatch(/tmp-\d+/);
    }
    expect(readdirSync(work).filter((f) => /tmp-/.test(f))).toEqual([]);
  });
});
