/**
 * The benchmark's statistics on numbers worked out by hand (see the comments), including the sum of
 * squares libguestfs' boot-benchmark got wrong (it kept only the last run's squared deviation).
 */
import { describe, expect, it } from 'vitest';
import { describeSample, isSignificant, welchTest, percentChange, stageMeans } from '../analyzers/benchmark.js';

describe('describeSample', () => {
  it('odd count: [18, 10, 14, 12, 16] -> mean 14, SD sqrt(40/4) = 3.16228, median 14', () => {
    // deviations -4 -2 0 2 4 -> squares 16 4 0 4 16 -> sum 40 -> variance 40 / (5 - 1) = 10
    const s = describeSample([18, 10, 14, 12, 16]);
    expect(s).toMatchObject({ n: 5, mean: 14, min: 10, median: 14, max: 18 });
    expect(s.sd).toBeCloseTo(Math.sqrt(10), 12);
    expect(s.sd).toBeCloseTo(3.16228, 5);
  });

  it('sums the squared deviations (libguestfs overwrote them: its variance would be 16/4 = 4 here)', () => {
    const s = describeSample([18, 10, 14, 12, 16]);
    expect(s.sd! ** 2 * 4).toBeCloseTo(40, 9);
    expect(s.sd! ** 2).not.toBeCloseTo(4, 3);
  });

  it('even count: [3, 1, 4, 2] -> median (2 + 3) / 2 = 2.5, SD sqrt(5/3) = 1.29099', () => {
    // mean 2.5; squares 0.25 2.25 2.25 0.25 (for 3 1 4 2) -> sum 5 -> variance 5/3
    const s = describeSample([3, 1, 4, 2]);
    expect(s).toMatchObject({ n: 4, mean: 2.5, min: 1, median: 2.5, max: 4 });
    expect(s.sd).toBeCloseTo(1.29099, 5);
  });

  it('one value: SD is null (undefined for a sample of one), the rest is that value', () => {
    expect(describeSample([812.5])).toEqual({ n: 1, mean: 812.5, sd: null, min: 812.5, median: 812.5, max: 812.5 });
  });

  it('equal values: SD 0', () => {
    expect(describeSample([7, 7, 7]).sd).toBe(0);
  });

  it('refuses an empty list', () => {
    expect(() => describeSample([])).toThrow(/no values/);
  });

  it('does not reorder its input', () => {
    const v = [3, 1, 2];
    describeSample(v);
    expect(v).toEqual([3, 1, 2]);
  });
});

describe('percentChange', () => {
  it('computes (value - base) / base in percent', () => {
    expect(percentChange(200, 210)).toBeCloseTo(5, 12);
    expect(percentChange(200, 150)).toBeCloseTo(-25, 12);
    expect(percentChange(0, 5)).toBeNull();
  });
});

describe("Welch's t-test in place of the 1% rule", () => {
  it('matches published values: Wikipedia\'s "Welch\'s t-test" example 1 (t = -2.46, df = 24.99, p = 0.021)', () => {
    const a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
    const a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
    const r = welchTest(a1, a2)!;
    expect(r.t).toBeCloseTo(-2.46, 2);
    expect(r.df).toBeCloseTo(24.99, 2);
    expect(r.p).toBeCloseTo(0.021, 3);
  });

  it("agrees with R's t.test(c(100,110,120), c(130,140,150)): t = -3.6742, df = 4, p = 0.02131", () => {
    const r = welchTest([100, 110, 120], [130, 140, 150])!;
    expect(r.t).toBeCloseTo(-3.6742, 4);
    expect(r.df).toBeCloseTo(4, 10);
    expect(r.p).toBeCloseTo(0.02131, 5);
    expect(isSignificant(r.p)).toBe(true);
  });

  it("calls the issue's +2.5% at 3 runs with SDs of 150 and 210 ms noise, which the 1% rule flagged", () => {
    const base = [5850, 6000, 6150], other = [5940, 6150, 6360];
    expect(percentChange(describeSample(base).mean, describeSample(other).mean)).toBeCloseTo(2.5, 10);
    const r = welchTest(base, other)!;
    expect(r.p).toBeGreaterThan(0.3);
    expect(isSignificant(r.p)).toBe(false);
  });

  it('needs two runs on each side; equal samples give p = 1, constant different ones p = 0', () => {
    expect(welchTest([1], [1, 2])).toBeNull();
    expect(welchTest([5, 5, 5], [5, 5, 5])!.p).toBe(1);
    expect(welchTest([5, 5, 5], [6, 6, 6])!.p).toBe(0);
    expect(isSignificant(null)).toBe(false);
  });
});

describe('stageMeans', () => {
  it('averages each stage over the runs that have it, sorted by mean start', () => {
    const means = stageMeans([
      [{ name: 'kernel', start_us: 1000, duration_us: 4000 }, { name: 'firmware', start_us: 0, duration_us: 1000 }],
      [{ name: 'kernel', start_us: 1200, duration_us: 5000 }, { name: 'firmware', start_us: 0, duration_us: 1200 }, { name: 'userspace', start_us: 6200, duration_us: 300 }],
    ]);
    expect(means).toEqual([
      { name: 'firmware', mean_ms: 1.1, sd_ms: expect.closeTo(Math.sqrt(0.02), 12), mean_start_ms: 0, runs: 2 },
      { name: 'kernel', mean_ms: 4.5, sd_ms: expect.closeTo(Math.sqrt(0.5), 12), mean_start_ms: 1.1, runs: 2 },
      { name: 'userspace', mean_ms: 0.3, sd_ms: null, mean_start_ms: 6.2, runs: 1 },
    ]);
  });
});
