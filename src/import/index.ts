/**
 * Other tools' traces into the trace reader's events, one importer file per format (as speedscope's
 * src/import/ is laid out); detect.ts decides which from the first DETECT_BYTES. The native 2016 format never
 * comes here: routeTraceInput hands its bytes straight to the native TraceParser, so the hot path is unchanged.
 */
import { UserError } from '../errors.js';
import { LineSplitter } from '../../analyzers/console-lines.js';
import type { FunctionTable } from '../trace/functions.js';
import { emptyCounts, type ParseCounts, type TraceParser, type TraceVisitor } from '../trace/parser.js';
import type { SymbolTable } from '../symbols/symbol-table.js';
import { DETECT_BYTES, detectFormat, type Detection, type FormatId } from './detect.js';
import { ImportSink, type ImporterEntry, type LineImporter } from './sink.js';
import { importGdb2016 } from './gdb-2016.js';
import { importPerfScript } from './perf-script.js';
import { importFtraceFunction } from './ftrace-function.js';
import { importFtraceGraph } from './ftrace-graph.js';
import { importQemuExec } from './qemu-exec.js';

export { detectFormat, DETECT_BYTES, type Detection, type FormatId };

/** The importer of each foreign format. */
export const IMPORTERS: Partial<Record<FormatId, ImporterEntry>> = {
  'gdb-2016': importGdb2016,
  'perf-script': importPerfScript,
  'ftrace-function': importFtraceFunction,
  'ftrace-graph': importFtraceGraph,
  'qemu-exec': importQemuExec,
};

export interface RouteOptions {
  name: string;
  functions: FunctionTable;
  visitor: TraceVisitor;
  onMalformed: (line: number, text: string) => void;
  symbols?: SymbolTable | null;
  warn: (line: string) => void;
}

/** Bytes in, the right reader behind: what the trace reader pushes chunks into instead of the parser. */
export interface TraceInput {
  push(chunk: Buffer): void;
  end(): void;
  /** The counts of whichever reader ran (the native parser's, or the importer's). */
  readonly counts: ParseCounts;
  /** The format, once decided (after DETECT_BYTES or end()). */
  readonly detection: Detection | null;
}

/**
 * Holds the first DETECT_BYTES, decides the format, then sends everything to the native `parser` (the 2016
 * format) or to an importer. A file in no known format is one UserError saying what it looks like.
 */
export function routeTraceInput(parser: TraceParser, o: RouteOptions): TraceInput {
  let head: Buffer[] = [];
  let headBytes = 0;
  let target: { push(b: Buffer): void; end(): void } | null = null;
  let counts: ParseCounts = parser.counts;
  let detection: Detection | null = null;

  const decide = (): void => {
    const data = Buffer.concat(head, headBytes);
    head = [];
    detection = detectFormat(data.subarray(0, DETECT_BYTES).toString('latin1'));
    if (detection.format === 'boot-trace') target = parser;
    else {
      const entry = IMPORTERS[detection.format];
      if (!entry) throw new UserError(`${o.name}: not a boot trace: it looks like ${detection.looksLike} (see docs/trace-format.md for the formats read)`);
      counts = emptyCounts();
      target = lineTarget(entry, new ImportSink(o.functions, o.visitor, counts, o.symbols ?? null, o.onMalformed), counts, detection, o);
    }
    if (data.length > 0) target.push(data);
  };

  return {
    push(chunk) {
      if (target) return target.push(chunk);
      // Copy: the caller reuses its read buffer.
      head.push(Buffer.from(chunk));
      headBytes += chunk.length;
      if (headBytes >= DETECT_BYTES) decide();
    },
    end() {
      if (!target) decide();
      target!.end();
    },
    get counts() {
      return counts;
    },
    get detection() {
      return detection;
    },
  };
}

/** Splits bytes into lines for an importer, counting blank and `#` lines as the native reader does. */
function lineTarget(entry: ImporterEntry, sink: ImportSink, counts: ParseCounts, detection: Detection, o: RouteOptions) {
  const importer: LineImporter = entry(sink);
  const splitter = new LineSplitter((text, lineNo) => {
    counts.lines++;
    const trimmed = text.trimStart();
    if (trimmed === '') counts.blank++;
    else if (trimmed.startsWith('#')) counts.comments++;
    else importer.line(text, lineNo);
  });
  return {
    push: (b: Buffer) => splitter.push(b),
    end: () => {
      splitter.end();
      importer.end();
      o.warn(`boot-trace: ${o.name}: read as ${detection.looksLike}: ${counts.events} events${sink.skipped ? `, ${sink.skipped} lines without an instruction skipped` : ''}`);
      if (detection.format === 'qemu-exec') o.warn(`boot-trace: ${o.name}: QEMU -d exec has no clock: times are block counts (1 per block run), not microseconds`);
      if (sink.unsymbolised > 0 || (!sink.symbols && counts.events > 0 && detection.format === 'qemu-exec')) {
        o.warn(`boot-trace: ${o.name}: ${sink.symbols ? `${sink.unsymbolised} addresses outside the --system-map symbols` : 'addresses not symbolised: pass --system-map'}`);
      }
    },
  };
}

export { detectFile } from './detect.js';
