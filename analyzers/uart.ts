/**
 * The serial console's cost per character, from host line stamps. Within a burst (lines closer together
 * than a gap), the time between one line's newline and the next grows with the next line's length:
 *   dt = a + b * bytes      (b = us per character, a = the guest's own work between printks)
 * Lines that share a stamp came in one read of the pipe; together they make one point, their bytes
 * against the time since the previous stamp.
 * b is the Theil-Sen slope (median of pairwise slopes: robust to stalls and interrupts inside a burst)
 * with Sen's rank-based 95% confidence interval. libguestfs measured ~4 us/char this way on QEMU.
 * Needs host stamps (console.log or QEMU output with `<t_us> <text>` lines); dmesg stamps say when printk
 * was called, not when the bytes left the UART.
 */
import { median } from 'd3-array';
import type { ConsoleLine, ConsoleVisitor } from './console-lines.js';
import { mulberry32 } from '../src/random.js';

export interface UartOptions {
  /** Lines further apart than this (us) start a new burst. */
  gapUs?: number;
  /** Fit at most this many lines (a seeded uniform sample beyond it): the fit is O(n^2) in lines. */
  maxPoints?: number;
}

export interface UartRow {
  us_per_char: number;
  ci95_low: number;
  ci95_high: number;
  /** Lines per millisecond the UART allows at this console's mean line length. */
  lines_per_ms: number | null;
  /** Bytes the guest sent: every line's text plus its newline. */
  chars: number;
  /** us_per_char * chars: what the console cost this boot. */
  added_us: number;
  lines: number;
  /** The fitted per-line constant a (us). */
  intercept_us: number;
  bursts: number;
  /** Points in the fit: lines, or groups of lines that arrived in one read, within bursts. */
  fit_lines: number;
}

export const DEFAULT_GAP_US = 10_000;
export const DEFAULT_MAX_POINTS = 2000;

export class UartCost implements ConsoleVisitor {
  /** A uniform sample of the burst lines (reservoir sampling, seeded): memory stays bounded on any console. */
  private readonly xs: number[] = [];
  private readonly ys: number[] = [];
  /** Points seen (the sample holds at most maxPoints of them). */
  private seen = 0;
  private readonly max: number;
  private readonly rand = mulberry32(0x9e3779b9);
  /** Lines with the same stamp reached the host together (one pipe read): they are one point. */
  private groupStamp: number | null = null;
  private groupBytes = 0;
  private groupLines = 0;
  private prevStamp: number | null = null;
  private inBurst = false;
  private ended = false;
  lines = 0;
  chars = 0;
  stamped = 0;
  bursts = 0;
  private readonly gapUs: number;

  constructor(options: UartOptions = {}) {
    this.gapUs = options.gapUs ?? DEFAULT_GAP_US;
    this.max = options.maxPoints ?? DEFAULT_MAX_POINTS;
  }

  line(l: ConsoleLine): void {
    this.lines++;
    this.chars += l.bytes;
    if (l.hostUs === null) return;
    this.stamped++;
    if (l.hostUs === this.groupStamp) {
      this.groupBytes += l.bytes;
      this.groupLines++;
      return;
    }
    this.closeGroup();
    this.groupStamp = l.hostUs;
    this.groupBytes = l.bytes;
    this.groupLines = 1;
  }

  /**
   * The k lines stamped t2 went out between the previous stamp t1 and t2: one point per line on
   * average, x = their bytes / k, y = (t2 - t1) / k (per line, so the guest's per-line work a is not
   * counted as per-character cost when bigger groups have more bytes), when t2 - t1 is under the gap.
   */
  private closeGroup(): void {
    if (this.groupStamp === null) return;
    if (this.prevStamp !== null) {
      const dt = this.groupStamp - this.prevStamp;
      if (dt >= 0 && dt < this.gapUs) {
        if (!this.inBurst) this.bursts++;
        this.inBurst = true;
        this.keep(this.groupBytes / this.groupLines, dt / this.groupLines);
      } else this.inBurst = false;
    }
    this.prevStamp = this.groupStamp;
    this.groupStamp = null;
  }

  /** Algorithm R: the i-th burst line replaces a random kept one with probability max/i. */
  private keep(x: number, y: number): void {
    this.seen++;
    if (this.xs.length < this.max) {
      this.xs.push(x);
      this.ys.push(y);
      return;
    }
    const j = Math.floor(this.rand() * this.seen);
    if (j < this.max) {
      this.xs[j] = x;
      this.ys[j] = y;
    }
  }

  /** The fit, or a reason why there is none. */
  result(): { row: UartRow } | { error: string } {
    if (!this.ended) this.closeGroup();
    this.ended = true;
    if (this.stamped === 0) return { error: 'no host timestamps (needs `<t_us> <text>` lines, as in console.log)' };
    const fit = theilSen(this.xs, this.ys);
    if (!fit) return { error: `${this.seen} lines in bursts, with too few different lengths to fit (try a larger --gap-us)` };
    const meanBytes = this.chars / this.lines;
    return {
      row: {
        us_per_char: r4(fit.slope),
        // A cost per character is never negative: a low end below 0 only says the interval is wide (fitMeaningful).
        ci95_low: r4(Math.max(0, fit.low)),
        ci95_high: r4(fit.high),
        lines_per_ms: fit.slope > 0 ? r3(1000 / (fit.slope * meanBytes)) : null,
        chars: this.chars,
        added_us: r3(fit.slope * this.chars),
        lines: this.lines,
        intercept_us: r3(fit.intercept),
        bursts: this.bursts,
        fit_lines: this.seen,
      },
    };
  }
}

/**
 * Whether a fit says anything (docs/console-analyzers.md): its 95% interval excludes 0 and is no wider than the
 * estimate itself (about +-50%). A console with few bursts, or bursts whose delays are the guest's own work and
 * not the UART (a whole boot under TCG), gives an interval like 0-7.9 around 0.6 us/char: no figure to quote.
 */
export function fitMeaningful(row: Pick<UartRow, 'us_per_char' | 'ci95_low' | 'ci95_high'>): boolean {
  return row.ci95_low > 0 && row.us_per_char > 0 && row.ci95_high - row.ci95_low <= row.us_per_char;
}

/** The sentence saying a fit is not meaningful, for stderr and the report. */
export function fitNote(row: Pick<UartRow, 'us_per_char' | 'ci95_low' | 'ci95_high'>): string {
  return `the fit is not meaningful: its 95% interval (${row.ci95_low.toFixed(2)} to ${row.ci95_high.toFixed(2)} us/char) is wider than the estimate (${row.us_per_char.toFixed(2)}) or reaches 0, so this console does not show what a character costs`;
}

export interface Fit {
  slope: number;
  intercept: number;
  low: number;
  high: number;
}

/**
 * Theil-Sen slope with Sen's (1968) 95% interval: the slopes ranked (N - C)/2 and (N + C)/2, where
 * C = 1.96 * sqrt(Var S) and Var S is Kendall's variance corrected for tied x values.
 */
export function theilSen(xs: readonly number[], ys: readonly number[]): Fit | null {
  const n = xs.length;
  let count = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (xs[i] !== xs[j]) count++;
  if (count < 3) return null;
  const slopes = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const xi = xs[i]!;
    const yi = ys[i]!;
    for (let j = i + 1; j < n; j++) {
      const dx = xs[j]! - xi;
      if (dx !== 0) slopes[k++] = (ys[j]! - yi) / dx;
    }
  }
  slopes.sort();
  const slope = count % 2 ? slopes[(count - 1) / 2]! : (slopes[count / 2 - 1]! + slopes[count / 2]!) / 2;
  const ties = new Map<number, number>();
  for (const x of xs) ties.set(x, (ties.get(x) ?? 0) + 1);
  let varS = n * (n - 1) * (2 * n + 5);
  for (const t of ties.values()) varS -= t * (t - 1) * (2 * t + 5);
  const c = 1.96 * Math.sqrt(varS / 18);
  const at = (i: number): number => slopes[Math.min(count - 1, Math.max(0, i))]!;
  const intercept = median(xs.map((x, i) => ys[i]! - slope * x)) ?? 0;
  return { slope, intercept, low: at(Math.floor((count - c) / 2)), high: at(Math.ceil((count + c) / 2)) };
}


const r4 = (v: number): number => Math.round(v * 1e4) / 1e4;
const r3 = (v: number): number => Math.round(v * 1e3) / 1e3;
