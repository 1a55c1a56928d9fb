/** Small text helpers shared by the SVG and HTML builders. */

const XML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for XML/HTML content and attribute values. */
export const escapeXml = (s: string): string => s.replace(/[&<>"']/g, (c) => XML[c]!);

/** Microseconds in the unit that reads best: "850 us", "12.3 ms", "2.41 s". */
export function formatUs(us: number): string {
  const a = Math.abs(us);
  if (a >= 1e6) return `${(us / 1e6).toFixed(a >= 1e7 ? 1 : 2)} s`;
  if (a >= 1e3) return `${(us / 1e3).toFixed(a >= 1e5 ? 0 : a >= 1e4 ? 1 : 2)} ms`;
  return `${a >= 100 ? Math.round(us) : us.toFixed(a >= 10 ? 1 : 2)} us`;
}

/**
 * A formatter for the ticks of one time axis: every tick in the same unit (s, ms or us, from the span's
 * largest magnitude) with the decimals the tick step needs, so an axis never reads "0.00 us ... 500 ms".
 */
export function axisFormat(t0: number, t1: number, step: number): (us: number) => string {
  const a = Math.max(Math.abs(t0), Math.abs(t1));
  const [div, unit] = a >= 1e6 ? [1e6, 's'] : a >= 1e3 ? [1e3, 'ms'] : [1, 'us'];
  const decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(step / div) + 1e-9)));
  return (us) => `${(us / div).toFixed(decimals)} ${unit}`;
}

/** A byte count: "80.0 MiB". */
export function formatBytes(b: number): string {
  if (b >= 1 << 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 1 << 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (b >= 1 << 10) return `${(b / 2 ** 10).toFixed(1)} KiB`;
  return `${b} B`;
}
