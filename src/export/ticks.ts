/**
 * Timestamps for the viewers, on a grid that float64 adds exactly.
 *
 * A viewer computes an event's end as `ts + dur` in binary floating point. With decimal timestamps
 * (0.1 us from capture, 3 decimals after rounding) that sum is off by an ulp often enough that children
 * "end after" their parents (2,823 of 19,863 calls on a 200 k-step start_kernel window), and speedscope
 * then refuses the file. On a grid of 2^-10 us (~1 ns, the resolution the exports always had) every value
 * is a binary fraction: a start, an end, their difference and their sum are all exact in float64 (below
 * 2^43 us, ~100 days), so rounding the ends of every frame onto the grid keeps each child inside its
 * parent in the viewer's arithmetic, not only in decimal. JSON's shortest round-trip form of such a value
 * parses back to the same double.
 */

/** Grid points per microsecond (a power of two, so the grid is exact in binary). */
export const TICKS_PER_US = 1024;

/** `v` rounded to the grid; monotonic, so rounding keeps every order and containment. */
export const onGrid = (v: number): number => Math.round(v * TICKS_PER_US) / TICKS_PER_US;
