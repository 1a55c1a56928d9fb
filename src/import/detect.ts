/**
 * Which format a trace (or console) file is in, from its first DETECT_BYTES: the one place that decides, as
 * speedscope's importers do. Each format has a line test; the format with the most matching lines in the
 * head wins (the native 2016 format wins ties, so a trace with a few odd lines stays on the fast path).
 * Header comments settle it first (`# tracer: function_graph`). docs/trace-format.md lists the forms.
 */

import { closeSync, openSync, readSync } from 'node:fs';

export type FormatId =
  /** `<t> <symbol> [+ N] [in section S]` / `<t> <hex>`: the native 2016 format (src/trace/parser.ts). */
  | 'boot-trace'
  /** The same with gdb's ` of /path/objfile` after the section, or `sym+0xOFF`: src/import/gdb-2016.ts. */
  | 'gdb-2016'
  /** `perf script` output (samples, Intel PT --insn-trace / --call-trace, -F time,ip,sym): src/import/perf-script.ts. */
  | 'perf-script'
  /** ftrace `function` tracer: src/import/ftrace-function.ts. */
  | 'ftrace-function'
  /** ftrace `function_graph` with funcgraph-abstime: src/import/ftrace-graph.ts. */
  | 'ftrace-graph'
  /** QEMU `-d exec` log: src/import/qemu-exec.ts. */
  | 'qemu-exec'
  /** A kernel console / dmesg: not a trace (the console commands read it). */
  | 'console'
  | 'unknown';

export interface Detection {
  format: FormatId;
  /** What the file looks like, for one-line messages: "QEMU -d exec log (\"Trace 0: 0x... [...]\" lines)". */
  looksLike: string;
}

/** How much of the file's start decides its format. */
export const DETECT_BYTES = 4096;

// A symbol is a C identifier (with the compiler's `.isra.0`/`.cold` suffixes): a console.log line such as
// `8411203.2 BOOT_TIME:init_entry:4032873800` is not a trace line.
const NATIVE = /^\s*\d+(?:\.\d+)?[ \t]+(?:[0-9a-fA-F]{1,16}|[A-Za-z_.$][\w.$@]*(?:[ \t]+\+[ \t]*\d+)?(?:[ \t]+in section \S+)?)[ \t]*\r?$/;
const GDB_OBJFILE = /^\s*\d+(?:\.\d+)?[ \t]+\S+(?:[ \t]+\+[ \t]*\d+)?[ \t]+in section \S+ of \S/;
const SYM_HEX_OFFSET = /^\s*\d+(?:\.\d+)?[ \t]+[A-Za-z_.$][\w.$]*\+0x[0-9a-fA-F]+(?:\/0x[0-9a-fA-F]+)?(?:[ \t]+in section \S+)?[ \t]*\r?$/;
// `comm pid/tid [cpu] time: ...` or `-F time,ip,sym` lines `   1234.567890:  ffffffff81000000 sym`.
const PERF = /^\s*(?:\S.*?\s+-?\d+(?:\/\d+)?\s+(?:\[\d+\]\s+)?)?\d+\.\d{6,9}:\s+(?:\d+\s+\S+:\s+)?(?:[0-9a-f]{1,16}\s|\S)/;
const PERF_STRICT = /^\s*(?:[^\s[][^[]*?\s+)?(?:-?\d+(?:\/-?\d+)?\s+)?(?:\[\d+\]\s+)?\d+\.\d{6,9}:(?:\s|$)/;
const FTRACE_FUNCTION = /^\s*\S.*?-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d{3}\]\s+(?:[\w.]{4,5}\s+)?\d+\.\d+: \S+ <-\S+/;
const FTRACE_GRAPH = /^\s*\d+\.\d+\s+\|\s+\d+\)\s/;
const QEMU_EXEC = /^Trace (?:\d+: )?0x[0-9a-f]+ \[/;
// A console: printk stamps, or (printk time off, journals) initcall_debug lines and syslog `host kernel:` prefixes.
const DMESG = /\[ *\d+\.\d{1,9}\]|^\d+(?:\.\d+)? BOOT_TIME:|^calling {1,2}\S+ @ \d|^initcall \S+ returned|^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ kernel: /;
const SYMBOL_TABLE = /^[0-9a-fA-F]{8,16} [A-Za-z] \S+/;

interface Candidate {
  format: FormatId;
  test: RegExp;
  looksLike: string;
}

const CANDIDATES: Candidate[] = [
  { format: 'boot-trace', test: NATIVE, looksLike: 'a boot trace (`<t> <symbol> in section <s>` lines)' },
  { format: 'gdb-2016', test: GDB_OBJFILE, looksLike: "a boot trace symbolised by gdb with several object files (`... in section .text of /path`)" },
  { format: 'gdb-2016', test: SYM_HEX_OFFSET, looksLike: 'a boot trace with `symbol+0xOFFSET` names' },
  { format: 'qemu-exec', test: QEMU_EXEC, looksLike: 'a QEMU -d exec log (`Trace 0: 0x... [cs_base/pc/flags]` lines)' },
  { format: 'ftrace-graph', test: FTRACE_GRAPH, looksLike: 'an ftrace function_graph trace with funcgraph-abstime' },
  { format: 'ftrace-function', test: FTRACE_FUNCTION, looksLike: 'an ftrace function trace (`task-pid [cpu] time: func <-parent`)' },
  { format: 'perf-script', test: PERF_STRICT, looksLike: '`perf script` output' },
  { format: 'console', test: DMESG, looksLike: 'a kernel console or dmesg (`[ seconds] text` lines): read it with stages, initcalls or uart' },
  { format: 'unknown', test: SYMBOL_TABLE, looksLike: 'a symbol table (System.map, nm, kallsyms): give it to --system-map' },
];

/** The format of a file whose first bytes (up to DETECT_BYTES, latin1) are `head`. */
export function detectFormat(head: string): Detection {
  const lines = head.split('\n');
  // The last line may be cut by the window: leave it out unless it is the only one.
  if (lines.length > 1 && head.length >= DETECT_BYTES) lines.pop();
  const tracer = /^#\s*tracer:\s*(\S+)/m.exec(head);
  if (tracer) {
    if (tracer[1] === 'function_graph') {
      return /\d+\.\d+\s+\|\s+\d+\)/.test(head)
        ? { format: 'ftrace-graph', looksLike: CANDIDATES.find((c) => c.format === 'ftrace-graph')!.looksLike }
        : { format: 'unknown', looksLike: 'an ftrace function_graph trace without times: record it with `echo funcgraph-abstime > trace_options` (see docs/trace-format.md)' };
    }
    if (tracer[1] === 'function') return { format: 'ftrace-function', looksLike: CANDIDATES.find((c) => c.format === 'ftrace-function')!.looksLike };
    return { format: 'unknown', looksLike: `an ftrace trace of the ${tracer[1]} tracer (only function and function_graph are read)` };
  }
  const votes = new Map<Candidate, number>();
  let content = 0;
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    content++;
    // A foreign shape wins over the native one on the same line (`sym+0x0` also passes the native test).
    const hit = CANDIDATES.slice(1).find((c) => c.test.test(line)) ?? (NATIVE.test(line) ? CANDIDATES[0] : undefined);
    if (hit) votes.set(hit, (votes.get(hit) ?? 0) + 1);
  }
  if (content === 0) return { format: 'boot-trace', looksLike: CANDIDATES[0]!.looksLike };
  let best: Candidate | null = null;
  let bestVotes = 0;
  for (const c of CANDIDATES) {
    const v = votes.get(c) ?? 0;
    if (v > bestVotes) {
      best = c;
      bestVotes = v;
    }
  }
  if (best && best.format === 'gdb-2016') return { format: 'gdb-2016', looksLike: best.looksLike };
  // A native trace with a few lines of the variants is still read by the variant importer (it reads both).
  if (best?.format === 'boot-trace' && CANDIDATES.some((c) => c.format === 'gdb-2016' && (votes.get(c) ?? 0) > 0)) {
    return { format: 'gdb-2016', looksLike: CANDIDATES[1]!.looksLike };
  }
  if (best) return { format: best.format, looksLike: best.looksLike };
  return { format: 'unknown', looksLike: describeUnknown(lines) };
}

/** A few words on a file in no known format: its first content line, shortened. */
function describeUnknown(lines: string[]): string {
  const first = lines.find((l) => l.trim() !== '' && !l.trimStart().startsWith('#')) ?? '';
  const shown = first.length > 60 ? `${first.slice(0, 60)}...` : first;
  if (PERF.test(first)) return `something like \`perf script\` output in a layout not read here (${JSON.stringify(shown)})`;
  return `text in no trace format read here; it starts ${JSON.stringify(shown)}`;
}

/** The format of a plain file, from its first DETECT_BYTES (the parallel reader takes only the native format). */
export function detectFile(path: string): FormatId {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(DETECT_BYTES);
    const n = readSync(fd, head, 0, head.length, 0);
    return detectFormat(head.subarray(0, n).toString('latin1')).format;
  } finally {
    closeSync(fd);
  }
}
