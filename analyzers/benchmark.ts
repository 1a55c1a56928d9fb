/**
 * The statistics of `boot-trace benchmark`: mean, sample standard deviation, min, median, max of a set of
 * boot times, the change in percent between configurations with Welch's t-test for it, and per-stage means
 * and SDs over runs.
 *
 * The SD is the sample SD (n - 1 in the denominator): ten boots are a sample of all boots. libguestfs'
 * boot-benchmark computed the variance with `variance = (x - mean)^2` inside its loop, keeping only the
 * last run's term; here the squared deviations are summed over all runs.
 *
 *   describeSample([100, 110, 120])   // { n: 3, mean: 110, sd: 10, min: 100, median: 110, max: 120 }
 *   percentChange(110, 99)            // -10
 *   welchTest([100, 110, 120], [130, 140, 150]).p   // 0.0213 (t = -3.674, df = 4)
 */
import jStat from 'jstat';

export interface SampleStats {
  n: number;
  mean: number;
  /** Sample SD (n - 1); null with fewer than two values. */
  sd: number | null;
  min: number;
  median: number;
  max: number;
}

/** Statistics of a non-empty list of numbers. */
export function describeSample(values: readonly number[]): SampleStats {
  const n = values.length;
  if (n === 0) throw new Error('describeSample: no values');
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  let squares = 0;
  for (const v of values) squares += (v - mean) * (v - mean); // summed, not overwritten
  const sorted = Float64Array.from(values).sort(); // typed arrays sort numerically
  const mid = n >> 1;
  const median = n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n, mean, sd: n > 1 ? Math.sqrt(squares / (n - 1)) : null, min: sorted[0]!, median, max: sorted[n - 1]! };
}

/** Mean of a list, or null when it is empty (a figure some runs did not report). */
export function meanOrNull(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Change of `value` against `base` in percent; null when the base is 0 (no meaningful ratio). */
export function percentChange(base: number, value: number): number | null {
  if (base === 0) return null;
  return ((value - base) / base) * 100;
}

/**
 * Welch's two-sample t-test (unequal variances, Welch-Satterthwaite degrees of freedom), two-sided: how
 * likely a difference of means at least this large is when both configurations boot equally fast. It fits
 * the benchmark's small samples (3-10 runs of each) where a fixed threshold does not: boot-benchmark-range
 * flagged every change of 1% or more, and a +2.5% change at 3 runs with an SD of 150-210 ms is noise
 * (p ~ 0.7). Welch, Biometrika 34 (1947); the t distribution's CDF is jstat's (npm `jstat`: one
 * package with no dependencies, where the first choice pulled in 214).
 *
 * @returns t, df and the two-sided p-value, or null when either sample has fewer than two runs (no SD).
 *   When both SDs are 0, p is 0 for different means and 1 for equal ones.
 */
export function welchTest(a: readonly number[], b: readonly number[]): { t: number; df: number; p: number } | null {
  if (a.length < 2 || b.length < 2) return null;
  const x = describeSample(a), y = describeSample(b);
  const va = x.sd! ** 2 / a.length, vb = y.sd! ** 2 / b.length;
  const diff = x.mean - y.mean;
  if (va + vb === 0) return { t: diff === 0 ? 0 : Math.sign(diff) * Infinity, df: a.length + b.length - 2, p: diff === 0 ? 1 : 0 };
  const t = diff / Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  return { t, df, p: Math.min(1, 2 * jStat.studentt.cdf(-Math.abs(t), df)) };
}

/** The level below which a p-value marks a change as significant (the usual 5%). */
export const SIGNIFICANCE_LEVEL = 0.05;

export function isSignificant(p: number | null, level = SIGNIFICANCE_LEVEL): boolean {
  return p !== null && p < level;
}

export interface StageMean {
  name: string;
  /** Mean duration over the runs that have the stage. */
  mean_ms: number;
  /** Sample SD of the duration over those runs; null with fewer than two. */
  sd_ms: number | null;
  /** Mean start over the same runs. */
  mean_start_ms: number;
  /** Runs that had the stage (a stage can be missing from a run that stopped early). */
  runs: number;
}

/**
 * Per-stage means and SDs over runs: each run is a list of {name, start_us, duration_us} (the stages analyzer's
 * rows). Stages keep the order of their first appearance sorted by mean start.
 */
export function stageMeans(runs: readonly (readonly { name: string; start_us: number; duration_us: number }[])[]): StageMean[] {
  const acc = new Map<string, { start: number[]; dur: number[] }>();
  for (const rows of runs) {
    for (const r of rows) {
      let a = acc.get(r.name);
      if (!a) acc.set(r.name, (a = { start: [], dur: [] }));
      a.start.push(r.start_us);
      a.dur.push(r.duration_us);
    }
  }
  return [...acc]
    .map(([name, a]) => {
      const d = describeSample(a.dur);
      return { name, mean_ms: d.mean / 1000, sd_ms: d.sd === null ? null : d.sd / 1000, mean_start_ms: meanOrNull(a.start)! / 1000, runs: a.dur.length };
    })
    .sort((x, y) => x.mean_start_ms - y.mean_start_ms || y.mean_ms - x.mean_ms || x.name.localeCompare(y.name));
}

/** Rounds milliseconds for output to microseconds (3 decimals), without float noise. */
export const roundMs = (v: number): number => Math.round(v * 1000) / 1000;
