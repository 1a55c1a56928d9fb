/**
 * The range halves a parse worker can run (range-part.ts), by kind. Imported by the worker only, and
 * each analyzer only when asked for, so a worker loads just the one it runs.
 */
import type { RangeKind, RangeVisitorFactory } from './range-part.js';

export async function rangeVisitorFactory(kind: RangeKind): Promise<RangeVisitorFactory> {
  switch (kind) {
    case 'hot-functions': {
      const { HotFunctionsRange } = await import('../../analyzers/hot-functions.js');
      return () => new HotFunctionsRange();
    }
    case 'first-calls': {
      const { FirstCallsRange } = await import('../../analyzers/first-calls.js');
      return () => new FirstCallsRange();
    }
    case 'syscalls': {
      const { SyscallsRange } = await import('../../analyzers/syscalls.js');
      return (functions) => new SyscallsRange(functions);
    }
  }
}
