/**
 * ftrace's `function_graph` tracer with `funcgraph-abstime` (Documentation/trace/ftrace.rst), so every line
 * has its time:
 *    3288.431046 |   1)               |  do_sys_open() {
 *    3288.431047 |   1)   0.275 us    |    getname();
 *    3288.431052 |   1) + 10.150 us   |  }
 * An entry `fn() {` is an event in fn; a leaf `fn();` is an event in fn and, its duration later, an event back
 * in the caller; a closing `}` is an event back in the caller. One call stack per CPU. Times are seconds,
 * taken to microseconds. Without funcgraph-abstime there are no times: detection says so (src/import/detect.ts).
 */
import type { ImportSink, LineImporter } from './sink.js';
import { secondsToUs, splitSymOffset } from './sink.js';

const HEAD = /^\s*(\d+)\.(\d+)\s+\|\s+(\d+)\)/;
const DURATION = /(\d+(?:\.\d+)?)\s+us\s*$/;
const ENTER = /^\s*([^\s();]+)\(\)\s*\{\s*$/;
const LEAF = /^\s*([^\s();]+)\(\);\s*$/;
const EXIT = /^\s*\}/;
/** Back in the caller after a call: somewhere inside it, not at its entry (offset 0 means a call to analyzers/call-stacks.ts). */
const RETURNED = 1;

export function importFtraceGraph(sink: ImportSink): LineImporter {
  const stacks = new Map<string, string[]>();
  return {
    line(text, lineNo) {
      const h = HEAD.exec(text);
      const bar = text.lastIndexOf('|');
      if (!h || bar < h[0].length) {
        if (/==========|^\s*-{3,}|=>|^\s*\d+\)\s/.test(text) || text.trim() === '') sink.skipped++;
        else sink.malformed(lineNo, text);
        return;
      }
      const t = secondsToUs(h[1]!, h[2]!);
      if (!sink.usableTime(t, lineNo, text)) return;
      const cpu = h[3]!;
      const stack = stacks.get(cpu) ?? [];
      stacks.set(cpu, stack);
      const fn = text.slice(bar + 1);
      const middle = text.slice(h[0].length, bar);
      let m: RegExpExecArray | null;
      if ((m = ENTER.exec(fn))) {
        const { name, offset } = splitSymOffset(m[1]!);
        stack.push(name);
        sink.event(t, name, offset, lineNo);
      } else if ((m = LEAF.exec(fn))) {
        const { name, offset } = splitSymOffset(m[1]!);
        sink.event(t, name, offset, lineNo);
        const d = DURATION.exec(middle.replace(/[+!#*@$]/g, ' '));
        const caller = stack[stack.length - 1];
        if (d && caller !== undefined) sink.event(t + Number(d[1]), caller, RETURNED, lineNo);
      } else if (EXIT.test(fn)) {
        stack.pop();
        const caller = stack[stack.length - 1];
        if (caller !== undefined) sink.event(t, caller, RETURNED, lineNo);
        else sink.skipped++;
      } else sink.skipped++; // irq markers, comments in the function column
    },
    end() {},
  };
}
