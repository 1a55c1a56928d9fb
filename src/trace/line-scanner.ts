/**
 * The host side of the reader's WebAssembly fast path (wasm/line-scanner.ts, built by `npm run build` into
 * dist/src/trace/wasm/line-scanner.wasm): one instance per FunctionTable (scannerFor), its memory's fixed
 * regions as typed arrays. What the fast path accepts, and why it exists, is in wasm/line-scanner.ts and docs/performance.md.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';

/** Why a scan stopped: it reached the end; a line it does not parse; a name it has not cached; its output is full. */
export const STOP_END = 0, STOP_OTHER = 1, STOP_NEW_NAME = 2, STOP_FULL = 3;

interface Exports {
  memory: WebAssembly.Memory;
  INPUT: WebAssembly.Global; INPUT_BYTES: WebAssembly.Global; EVENTS: WebAssembly.Global;
  OUT_TIME: WebAssembly.Global; OUT_FN: WebAssembly.Global; OUT_OFFSET: WebAssembly.Global; OUT_ADDR: WebAssembly.Global;
  STATUS: WebAssembly.Global; MEMORY_BYTES: WebAssembly.Global;
  STOP_END: WebAssembly.Global; STOP_OTHER: WebAssembly.Global; STOP_NEW_NAME: WebAssembly.Global; STOP_FULL: WebAssembly.Global;
  setTail(a: bigint, b: bigint, c: number): void;
  scan(start: number, end: number, maxLineBytes: number): number;
  learn(start: number, end: number, hash: number, id: number): number;
}

/** The compiled module; null once it failed to compile here (see wasmModule). */
let compiled: WebAssembly.Module | null | undefined;

/**
 * The compiled module, compiled once per thread, or null where this machine's V8 cannot run it: it uses
 * WebAssembly SIMD, which V8 compiles only on a CPU with SSE4.1 (`node --no-enable-sse4-1` shows the
 * failure: "Wasm SIMD unsupported"); the reader then parses every line in TypeScript. Run from the sources
 * (vitest), the build's copy is used, and refused when it is older than its source (a test would test the
 * last build, not the code).
 * @throws UserError naming the file when the build has not made it (an install without `npm run build`)
 */
function wasmModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  const fromSources = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(fromSources ? '../../dist/src/trace/wasm/line-scanner.wasm' : './wasm/line-scanner.wasm', import.meta.url));
  if (!existsSync(file)) throw new UserError(`${file}: the trace reader's WebAssembly fast path is missing; run \`npm run build\``);
  if (fromSources) {
    const source = fileURLToPath(new URL('./wasm/line-scanner.ts', import.meta.url));
    if (statSync(source).mtimeMs > statSync(file).mtimeMs) throw new UserError(`${file}: older than ${source}; run \`npm run build\``);
  }
  try {
    compiled = new WebAssembly.Module(readFileSync(file));
  } catch (err) {
    if (!(err instanceof WebAssembly.CompileError)) throw err;
    compiled = null;
  }
  return compiled;
}

const TAIL = Buffer.from(' in section .text\n', 'latin1');

/** One instance of the fast path: copy lines to `input`, scan, read the events from the columns. */
export class LineScanner {
  private readonly wasm: Exports;
  /**
   * The input region (offset INPUT of the memory) in two halves: lines from elsewhere are copied to the
   * first (at most copyBytes at a time), and a reader reads straight into the second (readRegion), whose
   * chunks are scanned where they lie (a copy of every byte cost ~8% of the parse).
   */
  readonly copyRegion: Uint8Array;
  readonly inputBase: number;
  readonly copyBytes: number;
  readonly readRegion: Buffer;
  /** The event columns of the last scan (time in us, function id, offset or -1, bare address or 0). */
  readonly time: Float64Array;
  readonly fn: Int32Array;
  readonly offset: Int32Array;
  readonly addr: Float64Array;
  /** [0] where the scan stopped (a memory offset), [1] why, [2] a new name's hash (the cache's), [3] its start, [4] its end. */
  readonly status: Int32Array;
  /** The whole memory, for handing a new name's bytes to the FunctionTable. */
  readonly bytes: Uint8Array;

  constructor(module: WebAssembly.Module) {
    this.wasm = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
    const w = this.wasm;
    const buffer = w.memory.buffer;
    const g = (x: WebAssembly.Global): number => x.value as number;
    if (buffer.byteLength < g(w.MEMORY_BYTES)) throw new Error('line-scanner.wasm: its memory is smaller than its layout');
    // The stop codes are written in both languages (here they are constants of the parser's loop): one check.
    if (g(w.STOP_END) !== STOP_END || g(w.STOP_OTHER) !== STOP_OTHER || g(w.STOP_NEW_NAME) !== STOP_NEW_NAME || g(w.STOP_FULL) !== STOP_FULL) {
      throw new Error('line-scanner.wasm: its stop codes are not the host\'s (src/trace/line-scanner.ts)');
    }
    this.inputBase = g(w.INPUT);
    this.copyBytes = g(w.INPUT_BYTES) / 2;
    this.copyRegion = new Uint8Array(buffer, this.inputBase, this.copyBytes);
    this.readRegion = Buffer.from(buffer, this.inputBase + this.copyBytes, this.copyBytes);
    const events = g(w.EVENTS);
    this.time = new Float64Array(buffer, g(w.OUT_TIME), events);
    this.fn = new Int32Array(buffer, g(w.OUT_FN), events);
    this.offset = new Int32Array(buffer, g(w.OUT_OFFSET), events);
    this.addr = new Float64Array(buffer, g(w.OUT_ADDR), events);
    this.status = new Int32Array(buffer, g(w.STATUS), 8);
    this.bytes = new Uint8Array(buffer);
    w.setTail(TAIL.readBigUInt64LE(0), TAIL.readBigUInt64LE(8), TAIL.readUInt16LE(16));
  }

  /** Scans the lines in memory [start, end) (end just past an LF); returns the number of events. */
  scan(start: number, end: number, maxLineBytes: number): number {
    return this.wasm.scan(start, end, maxLineBytes);
  }

  /** Caches name -> id for memory [start, end) with the hash the scan reported; false when the cache is full. */
  learn(start: number, end: number, hash: number, id: number): boolean {
    return this.wasm.learn(start, end, hash, id) !== 0;
  }
}

const scanners = new WeakMap<object, LineScanner>();

/**
 * The fast path of the parsers that share one function table: its cache maps names to that table's
 * ids, and one instance serves every range a thread parses (a new instance would relearn every name).
 * Null where the module cannot run (wasmModule).
 */
export function scannerFor(functions: object): LineScanner | null {
  let sc = scanners.get(functions);
  if (!sc) {
    const module = wasmModule();
    if (!module) return null;
    scanners.set(functions, (sc = new LineScanner(module)));
  }
  return sc;
}
