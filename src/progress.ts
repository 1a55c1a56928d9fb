/**
 * A one-line progress display on stderr (lines/s, MB/s, percent), shown only when stderr is a TTY,
 * so piped and CI output stays clean. Redrawn at most 4 times a second.
 */
export class Progress {
  private readonly enabled: boolean;
  private readonly started = performance.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly label: string, enabled?: boolean, private readonly unit = 'lines') {
    this.enabled = enabled ?? Boolean(process.stderr.isTTY);
  }

  /** @param done bytes consumed so far; @param total bytes in all (0 if unknown); @param count lines or steps */
  update(done: number, total: number, count: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 250) return;
    this.lastDraw = now;
    const secs = (now - this.started) / 1000 || 1e-9;
    const pct = total > 0 ? ` ${((100 * done) / total).toFixed(1)}%` : '';
    const mb = done > 0 ? `, ${(done / 1e6 / secs).toFixed(0)} MB/s` : '';
    process.stderr.write(`\r\x1b[K${this.label}:${pct} ${count.toLocaleString('en-US')} ${this.unit}, ${Math.round(count / secs).toLocaleString('en-US')} ${this.unit}/s${mb}`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}
