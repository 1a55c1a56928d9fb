/**
 * The 2016 trace format with what gdb and other tools add to it (docs/trace-format.md):
 *   100.0 usb_probe_interface in section .text of /build/vmlinux      (gdb `info symbol`, several objfiles)
 *   101.5 usb_probe_interface + 12 in section .text of /build/vmlinux
 *   12 vmx_vmenter+0x2                                                 (kernel %pS / perf notation)
 *   104.0 ffffffffc0a01000                                             (a bare address)
 * `sym+0xOFF` is folded into `sym` with its offset, as `sym + N` is. Plain 2016 lines read as natively.
 */
import type { ImportSink, LineImporter } from './sink.js';
import { splitSymOffset } from './sink.js';

const LINE = /^\s*(\d+(?:\.\d+)?)[ \t]+(\S+)(?:[ \t]+\+[ \t]*(\d+))?(?:[ \t]+in section \S+(?: of \S.*?)?)?[ \t]*$/;
const HEX = /^[0-9a-fA-F]{1,16}$/;

export function importGdb2016(sink: ImportSink): LineImporter {
  return {
    line(text, lineNo) {
      const m = LINE.exec(text);
      if (!m) return sink.malformed(lineNo, text);
      const t = Number(m[1]);
      if (!sink.usableTime(t, lineNo, text)) return;
      const token = m[2]!;
      if (m[3] === undefined && HEX.test(token) && !/ in section /.test(text)) return sink.address(t, BigInt('0x' + token), lineNo);
      const { name, offset } = splitSymOffset(token);
      const extra = m[3] === undefined ? 0 : Number(m[3]);
      if (!Number.isSafeInteger(extra)) return sink.malformed(lineNo, text);
      sink.event(t, name, offset + extra, lineNo);
    },
    end() {},
  };
}
