/**
 * A small, fast, seeded pseudo-random generator (mulberry32), for results that must repeat from run to run:
 * the UART fit's sampling, generated test and benchmark inputs. Not for anything that needs real randomness.
 */
export function mulberry32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
