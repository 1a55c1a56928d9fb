/** `uart` recovers a known per-character cost from a generated console.log with noise and stalls. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UartCost, fitMeaningful, theilSen, type UartRow } from '../analyzers/uart.js';
import { cliJson, runCli, sample, testOutput } from './helpers.js';
import { feedConsole } from './console-lines-fixture.js';
import { mulberry32 } from '../src/random.js';

const rng = mulberry32;

/**
 * A console.log whose UART costs `usPerChar` per byte sent (text + "\r\n"), plus the guest's own work
 * between lines (10-40 us), Gaussian noise (sd 5 us), 3% of lines stalled by 0.5-3 ms (interrupts,
 * host preemption), bursts of 20-60 lines separated by 20-80 ms of silence.
 */
function generate(usPerChar: number, seed: number, lines = 1500, readsOf = 1): { text: string; chars: number; lines: number } {
  const rand = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
  const words = ['pci', '0000:00:01.0', 'virtio', 'calling', 'initcall', 'returned', 'after', 'usecs', 'ACPI:', 'clocksource:', 'tsc', 'e820:'];
  let t = 500_000;
  let out = '';
  let chars = 0;
  let inBurst = 0;
  // With readsOf > 1, 1..readsOf lines reach the host in one pipe read and share its stamp.
  let group: string[] = [];
  let groupLeft = 0;
  for (let i = 0; i < lines; i++) {
    const kernel = `[${(t / 1e6).toFixed(6).padStart(12)}] `;
    let body = '';
    const want = 10 + Math.floor(rand() * 120);
    while (body.length < want) body += words[Math.floor(rand() * words.length)] + ' ';
    const text = kernel + body.trimEnd();
    if (inBurst-- <= 0) {
      t += 20_000 + rand() * 60_000;
      inBurst = 20 + Math.floor(rand() * 40);
    }
    t += 10 + rand() * 30 + usPerChar * (text.length + 2) + 5 * gauss();
    if (rand() < 0.03) t += 500 + rand() * 2500;
    group.push(text);
    if (groupLeft-- <= 0 || i === lines - 1) {
      for (const g of group) out += `${t.toFixed(1)} ${g}\n`;
      group = [];
      groupLeft = Math.floor(rand() * readsOf);
    }
    chars += text.length + 1;
  }
  return { text: out, chars, lines };
}

describe('uart (analyzer)', () => {
  for (const [cost, seed] of [[4, 1], [1.5, 7], [12, 42]] as const) {
    it(`recovers ${cost} us/char within 10%, the truth inside the 95% interval`, () => {
      const g = generate(cost, seed);
      const path = join(testOutput('uart'), `generated-${cost}.log`);
      writeFileSync(path, g.text);
      const a = new UartCost();
      feedConsole(path, a, 4096);
      const res = a.result();
      if (!('row' in res)) throw new Error(res.error);
      const row = res.row;
      expect(Math.abs(row.us_per_char - cost) / cost).toBeLessThan(0.1);
      expect(row.ci95_low).toBeLessThanOrEqual(cost);
      expect(row.ci95_high).toBeGreaterThanOrEqual(cost);
      expect(row.ci95_low).toBeLessThan(row.us_per_char);
      expect(row.ci95_high).toBeGreaterThan(row.us_per_char);
      // A console with a known cost gives a fit worth quoting (its interval is narrow and above 0).
      expect(fitMeaningful(row)).toBe(true);
      expect(row.chars).toBe(g.chars);
      expect(row.lines).toBe(g.lines);
      // us_per_char is rounded to 4 decimals, added_us comes from the unrounded slope.
      expect(Math.abs(row.added_us - row.us_per_char * g.chars)).toBeLessThan(0.0001 * g.chars);
      expect(row.lines_per_ms).toBeCloseTo(1000 / ((row.us_per_char * g.chars) / g.lines), 0);
    });
  }

  it('counts lines that arrived in one read (same stamp) as one point', () => {
    const g = generate(4, 5, 1500, 4);
    const path = join(testOutput('uart'), 'generated-reads.log');
    writeFileSync(path, g.text);
    const a = new UartCost();
    feedConsole(path, a);
    const res = a.result();
    if (!('row' in res)) throw new Error(res.error);
    expect(Math.abs(res.row.us_per_char - 4) / 4).toBeLessThan(0.1);
    expect(res.row.ci95_low).toBeLessThanOrEqual(4);
    expect(res.row.ci95_high).toBeGreaterThanOrEqual(4);
    expect(res.row.fit_lines).toBeLessThan(1000);
    expect(res.row.lines).toBe(1500);
  });

  it('Theil-Sen ignores outliers that least squares would follow', () => {
    const xs = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    const ys = xs.map((x) => 2 * x + 5);
    ys[3] = 5000;
    ys[7] = -300;
    const fit = theilSen(xs, ys)!;
    expect(fit.slope).toBe(2);
    expect(fit.intercept).toBe(5);
    expect(theilSen([5, 5, 5], [1, 2, 3])).toBeNull();
  });

  it('says why when there are no host stamps', () => {
    const a = new UartCost();
    feedConsole(sample('console', 'dmesg-initcall-debug-6.1.txt'), a);
    expect(a.result()).toEqual({ error: expect.stringMatching(/no host timestamps/) });
  });
});

describe('boot-trace uart (CLI)', () => {
  const g = generate(4, 3, 800);
  const path = join(testOutput('uart'), 'generated-cli.log');
  writeFileSync(path, g.text);

  it('prints one row in JSON, CSV and a table that agree', () => {
    const [row] = cliJson<UartRow[]>(['uart', path]);
    expect(Object.keys(row!)).toEqual(['us_per_char', 'ci95_low', 'ci95_high', 'lines_per_ms', 'chars', 'added_us', 'lines', 'intercept_us', 'bursts', 'fit_lines']);
    expect(Math.abs(row!.us_per_char - 4) / 4).toBeLessThan(0.1);
    expect(row!.chars).toBe(g.chars);
    const csv = runCli(['uart', path, '--format', 'csv']).stdout.split('\n');
    expect(csv[0]).toBe('us_per_char,ci95_low,ci95_high,lines_per_ms,chars,added_us,lines');
    expect(csv[1]).toBe([row!.us_per_char, row!.ci95_low, row!.ci95_high, row!.lines_per_ms, row!.chars, row!.added_us, row!.lines].join(','));
    const table = runCli(['uart', path, '--format', 'table']).stdout.split('\n');
    expect(table[0]).toMatch(/^us\/char\s+ci95 low\s+ci95 high\s+lines\/ms\s+chars\s+added \(us\)\s+lines$/);
    expect(table[1]!.trim().split(/\s+/)).toEqual([
      row!.us_per_char.toFixed(4), row!.ci95_low.toFixed(4), row!.ci95_high.toFixed(4), row!.lines_per_ms!.toFixed(3),
      row!.chars.toLocaleString('en-US'), row!.added_us.toLocaleString('en-US', { minimumFractionDigits: 3, maximumFractionDigits: 3 }), String(row!.lines),
    ]);
  });

  it('fails in one line on a dmesg without host stamps', () => {
    const r = runCli(['uart', sample('console', 'dmesg-initcall-debug-6.1.txt')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^boot-trace: .*dmesg-initcall-debug-6\.1\.txt: no host timestamps/);
  });
});
