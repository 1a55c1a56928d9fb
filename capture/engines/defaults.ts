/** Defaults every engine shares, so `capture` and `benchmark` cannot drift apart. */
export { DEFAULT_MEMORY_MIB } from '../layout.js';

/** Seconds before a capture is stopped (exit reason 'timeout'). */
export const DEFAULT_TIMEOUT_S = 60;
