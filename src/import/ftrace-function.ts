/**
 * ftrace's `function` tracer (Documentation/trace/ftrace.rst): one event per traced function entry.
 *             bash-1977  [000] .... 17284.993652: sys_close <-system_call_fastpath
 *           <idle>-0     [001] d.h.   230.859933: do_timer <-tick_do_update_jiffies64.part.0
 * (older kernels have no flags column; `trace-cmd report` adds `( pid)` of the tgid.) Times are seconds, taken to
 * microseconds. Other events in the buffer (`irq_handler_entry: ...`), stack traces (` => fn`) and the
 * `# ...` header are skipped. All CPUs go into one stream, in the order the file lists them.
 */
import type { ImportSink, LineImporter } from './sink.js';
import { secondsToUs, splitSymOffset } from './sink.js';

const LINE = /^\s*.+?-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:[\w.]{4,5}\s+)?(\d+)\.(\d+):\s+(\S+)(\s+<-\S+)?/;

export function importFtraceFunction(sink: ImportSink): LineImporter {
  return {
    line(text, lineNo) {
      const m = LINE.exec(text);
      if (!m) {
        if (/^\s*=>|<stack trace>|^\s*-{3,}|CPU \d+ buffer started/.test(text)) sink.skipped++;
        else sink.malformed(lineNo, text);
        return;
      }
      // An event that is not a function entry (`sched_switch: prev_comm=...`): no instruction to place.
      if (!m[4]) {
        sink.skipped++;
        return;
      }
      const t = secondsToUs(m[1]!, m[2]!);
      if (!sink.usableTime(t, lineNo, text)) return;
      const { name, offset } = splitSymOffset(m[3]!);
      sink.event(t, name, offset, lineNo);
    },
    end() {},
  };
}
