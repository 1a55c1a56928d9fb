/**
 * QEMU's `-d exec` log (accel/tcg/cpu-exec.c log_cpu_exec): one line per translation block run.
 *   Trace 0: 0x7fffa0b03900 [00104004/000000023fde73b4/00000021/ff020200]        (QEMU 5.x-8.x: cs_base/pc/flags/cflags)
 *   Trace 0: 0x7f2c5c000100 [00000000/ffffffff81000000/0xb0] startup_64         (QEMU 2.x-4.x: cs_base/pc/flags)
 *   Trace 0x7f2c5c000100 [ffffffff81000000] startup_64                           (older QEMU: pc)
 * The guest pc is symbolised with --system-map (the name QEMU prints after `]` is used when there is one).
 * The log has no clock: time is the block's index (1 per block run), so hot-functions ranks by blocks run, not
 * microseconds (docs/trace-format.md). Run QEMU with `-d exec,nochain`: chained blocks are not logged.
 * Other lines (`Linking TBs ...`, `Chained ...`, other -d items) are skipped.
 */
import type { ImportSink, LineImporter } from './sink.js';

const LINE = /^Trace (?:\d+: )?0x[0-9a-f]+ \[([0-9a-fx/]+)\](?:\s+(\S+))?/;

export function importQemuExec(sink: ImportSink): LineImporter {
  let blocks = 0;
  return {
    line(text, lineNo) {
      const m = LINE.exec(text);
      if (!m) {
        if (text.startsWith('Trace ')) sink.malformed(lineNo, text);
        else sink.skipped++;
        return;
      }
      const fields = m[1]!.split('/');
      const pc = fields.length >= 3 ? fields[1]! : fields[0]!;
      if (!/^(?:0x)?[0-9a-f]{1,16}$/.test(pc)) return sink.malformed(lineNo, text);
      const t = blocks++;
      // --system-map gives function and offset; QEMU's own name (user-mode ELF symbols) gives the function only.
      if (m[2] && !sink.symbols) sink.event(t, m[2], 0, lineNo);
      else sink.address(t, BigInt(pc.startsWith('0x') ? pc : '0x' + pc), lineNo);
    },
    end() {},
  };
}
