import type { TraceVisitor } from './parser.js';

/** Feeds one pass over a trace to several analyzers. */
export function allOf(...visitors: TraceVisitor[]): TraceVisitor {
  return {
    event(t, fn, offset, addr) {
      for (const v of visitors) v.event(t, fn, offset, addr);
    },
  };
}
