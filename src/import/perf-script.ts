/**
 * `perf script` text (tools/perf/Documentation/perf-script.txt, perf-intel-pt.txt): one event per sample line.
 *   perf 32224 15889777.194652:    1 cycles:ppp:  ffffffff8826e448 native_write_msr ([kernel.kallsyms])  (samples)
 *   date 31979 [003] 653971.670163672:  7f3bfbf4d090 _start+0x0 (/lib/.../ld-2.27.so) insn: 48 89 e7     (--insn-trace)
 *   cc1 63501.650479626: 7f5219ac27bf _int_free+0x3f   jnz 0x7f5219ac2af0                             (--insn-trace --xed)
 *   [000] 677203.751913565:  ffffffffa7046230               nopw  %ax, (%rax)                        (-F -sym: address only)
 *   ls 4142 [003] 34570.264126215:      native_write_msr                                            (--call-trace)
 *   12345.678901:  ffffffff81234567 native_safe_halt                                                   (-F time,ip,sym)
 * Times are seconds, taken to microseconds. With -g the sample line has no ip: its first callchain line
 * (`\t ffffffff8107a4a1 native_safe_halt+0x1 ([kernel.kallsyms])`) is the event; the rest of the chain is skipped.
 * A symbol of `[unknown]`, or none, leaves the bare address (symbolised with --system-map when given).
 */
import type { ImportSink, LineImporter } from './sink.js';
import { secondsToUs, splitSymOffset } from './sink.js';

// Everything up to the time: optional comm, pid[/tid], [cpu]; then `sec.frac:`.
const HEAD = /^\s*(?:.*?\s)?(?:\[\d+\]\s+)?(\d+)\.(\d{1,9}):(?=\s|$)/;
// After the time: an optional `period event:` (`1 cycles:ppp:`, `cpu-clock:`), then an address and what follows.
const EVENT = /^\s+(?:\d+\s+)?([A-Za-z][\w.:/-]*?):(?=\s|$)/;
const ADDR_REST = /^\s+([0-9a-f]{1,16})(?:(\s+)(.*))?$/;
const CHAIN = /^\s+([0-9a-f]{1,16})\s+(\S+)/;
/** Events Intel PT synthesises that carry no instruction of their own. */
const NO_IP = /^(?:cbr|psb|pwre|pwrx|exstop|mwait|evt|iflag|ptwrite)$/;

export function importPerfScript(sink: ImportSink): LineImporter {
  let pendingT: number | null = null;
  const place = (t: number, addrHex: string, gap: string | undefined, rest: string | undefined, lineNo: number): void => {
    const sym = (rest ?? '').trim().split(/\s+/)[0] ?? '';
    // perf prints the symbol one space after the address; with -F -sym, --xed's disassembly comes after a wide gap.
    const isSymbol = gap === ' ' && sym !== '' && sym !== '[unknown]';
    if (isSymbol) {
      const { name, offset } = splitSymOffset(sym);
      sink.event(t, name, offset, lineNo);
    } else sink.address(t, BigInt('0x' + addrHex), lineNo);
  };
  return {
    line(text, lineNo) {
      const head = HEAD.exec(text);
      if (!head) {
        const chain = CHAIN.exec(text);
        if (chain && pendingT !== null) {
          place(pendingT, chain[1]!, ' ', chain[2], lineNo);
          pendingT = null;
        } else if (chain || text.trim() === '') sink.skipped++;
        else sink.malformed(lineNo, text);
        return;
      }
      pendingT = null;
      const t = secondsToUs(head[1]!, head[2]!);
      if (!sink.usableTime(t, lineNo, text)) return;
      let rest = text.slice(head[0].length);
      const ev = EVENT.exec(rest);
      if (ev) {
        if (NO_IP.test(ev[1]!)) {
          sink.skipped++;
          return;
        }
        rest = rest.slice(ev[0].length);
      }
      const addr = ADDR_REST.exec(rest);
      if (addr) return place(t, addr[1]!, addr[2], addr[3], lineNo);
      const sym = rest.trim().split(/\s+/)[0] ?? '';
      if (sym === '') {
        // A sample with its ip in the callchain lines that follow (perf script -g).
        pendingT = t;
        return;
      }
      // --call-trace: the function name, indented by call depth, no address.
      const { name, offset } = splitSymOffset(sym);
      sink.event(t, name, offset, lineNo);
    },
    end() {},
  };
}
