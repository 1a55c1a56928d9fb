/**
 * The statistics of `boot-trace benchmark`: mean, sample standard deviation, min, median, max of a set of
 * boot times, the change in percent between configurations, and per-stage means over runs.
 *
 * The SD is the sample SD (n - 1 in the denominator): ten boots are a sample of all boots. libguestfs'
 * boot-benchmark computed the variance with `variance = (x - mean)^2` inside its loop, keeping only the
 * last run's term; here the squared deviations are summed over all runs.
 *
 *   describeSample([100, 110, 120])   // { n: 3, mean: 110, sd: 10, min: 100, median: 110, max: 120 }
 *   percentChange(110, 99)            // -10
 */

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
 * boot-benchmark-range flags a change of 1% or more: below that, the runs of one configuration differ
 * among themselves by about as much.
 */
export const SIGNIFICANT_CHANGE_PCT = 1;

export function isSignificantChange(pct: number | null, threshold = SIGNIFICANT_CHANGE_PCT): boolean {
  return pct !== null && Math.abs(pct) >= threshold;
}

export interface StageMean {
  name: string;
  /** Mean duration over the runs that have the stage. */
  mean_ms: number;
  /** Mean start over the same runs. */
  mean_start_ms: number;
  /** Runs that had the stage (a stage can be missing from a run that stopped early). */
  runs: number;
}

/**
 * Per-stage means over runs: each run is a list of {name, start_us, duration_us} (the stages analyzer's
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
    .map(([name, a]) => ({ name, mean_ms: meanOrNull(a.dur)! / 1000, mean_start_ms: meanOrNull(a.start)! / 1000, runs: a.dur.length }))
    .sort((x, y) => x.mean_start_ms - y.mean_start_ms || y.mean_ms - x.mean_ms || x.name.localeCompare(y.name));
}

/** Rounds milliseconds for output to microseconds (3 decimals), without float noise. */
export const roundMs = (v: number): number => Math.round(v * 1000) / 1000;
