/**
 * A one-line progress display on stderr (rate, percent, ETA), shown only when stderr is a TTY, so piped
 * and CI output stays clean. Redrawn at most 4 times a second (BOOT_TRACE_PROGRESS_MS sets the interval: tests set
 * 0 so a short run still draws, whatever the machine's speed).
 *
 *   trace.log: 42.0% 1,234,567 lines, 2,345,678 lines/s, 160 MB/s          (reading: bytes known)
 *   capture: 12,288 steps, 1,130 steps/s, 61.4% of 20,000, ETA 7 s         (stepping: a count to reach)
 */
export class Progress {
  private readonly enabled: boolean;
  private readonly started = performance.now();
  private lastDraw = 0;
  private drawn = false;
  private readonly everyMs = Number(process.env.BOOT_TRACE_PROGRESS_MS ?? 250);

  /**
   * @param unit what `count` counts ("lines", "steps", "records")
   * @param countTotal the count that ends the work (e.g. --max-steps), for percent and ETA when bytes are unknown;
   *   0 or Infinity when there is none
   */
  constructor(private readonly label: string, enabled?: boolean, private readonly unit = 'lines', private readonly countTotal = 0) {
    this.enabled = enabled ?? Boolean(process.stderr.isTTY);
  }

  /** @param done bytes consumed so far; @param total bytes in all (0 if unknown); @param count lines or steps */
  update(done: number, total: number, count: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < this.everyMs) return;
    this.lastDraw = now;
    process.stderr.write(`\r\x1b[K${this.line(done, total, count, (now - this.started) / 1000)}`);
    this.drawn = true;
  }

  /** The text of one progress line after `secs` seconds (what update() draws). */
  line(done: number, total: number, count: number, secs: number): string {
    const s = secs || 1e-9;
    const rate = count / s;
    const n = (v: number): string => Math.round(v).toLocaleString('en-US');
    if (total <= 0 && this.countTotal > 0 && Number.isFinite(this.countTotal)) {
      const left = rate > 0 ? (this.countTotal - count) / rate : Infinity;
      return `${this.label}: ${n(count)} ${this.unit}, ${n(rate)} ${this.unit}/s, ${((100 * count) / this.countTotal).toFixed(1)}% of ${n(this.countTotal)}, ETA ${eta(left)}`;
    }
    const pct = total > 0 ? ` ${((100 * done) / total).toFixed(1)}%` : '';
    const mb = done > 0 ? `, ${(done / 1e6 / s).toFixed(0)} MB/s` : '';
    const left = total > 0 && done > 0 ? `, ETA ${eta(((total - done) / done) * s)}` : '';
    return `${this.label}:${pct} ${n(count)} ${this.unit}, ${n(rate)} ${this.unit}/s${mb}${left}`;
  }

  done(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** Seconds left as "7 s", "3 min 05 s", "1 h 02 min"; "?" before a rate is known. */
export function eta(secs: number): string {
  if (!Number.isFinite(secs) || secs < 0) return '?';
  const s = Math.round(secs);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
