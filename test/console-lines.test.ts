/** The console reader: line shapes, both clocks, CRLF, truncation, chunk boundaries, split messages. */
import { describe, expect, it } from 'vitest';
import { ConsoleParser, type ConsoleLine, type ConsoleMessage } from '../analyzers/console-lines.js';
import { sample } from './helpers.js';
import { feedConsole } from './console-lines-fixture.js';

function parse(text: string | Buffer, chunkSize = 1 << 16): { lines: ConsoleLine[]; messages: ConsoleMessage[]; parser: ConsoleParser } {
  const lines: ConsoleLine[] = [];
  const messages: ConsoleMessage[] = [];
  const parser = new ConsoleParser({ line: (l) => lines.push(l), message: (m) => messages.push(m) });
  const data = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  for (let i = 0; i < data.length; i += chunkSize) parser.push(data.subarray(i, i + chunkSize));
  parser.end();
  return { lines, messages, parser };
}

describe('console lines', () => {
  it('reads a host stamp, a dmesg stamp, or both, when the whole file is in the `<t_us> <text>` form', () => {
    const { messages, parser } = parse('1234.5 [    0.512345] calling  foo+0x0/0x10 @ 1\n1300 [    2.000001] dmesg after a host stamp\n99 BOOT_TIME:ready:5\n');
    expect(messages).toEqual([
      { lineNo: 1, hostUs: 1234.5, kernelUs: 512345, text: 'calling  foo+0x0/0x10 @ 1' },
      { lineNo: 2, hostUs: 1300, kernelUs: 2000001, text: 'dmesg after a host stamp' },
      { lineNo: 3, hostUs: 99, kernelUs: null, text: 'BOOT_TIME:ready:5' },
    ]);
    expect(parser.form).toBe('host-stamped');
  });

  // Issue 12: a line that merely starts with digits is not a host timestamp unless the whole file is in that form.
  it('takes no host stamps from a file that is not wholly in that form', () => {
    const { messages, parser } = parse('1234.5 [    0.512345] calling  foo+0x0/0x10 @ 1\n[    2.000001] plain dmesg\n99 bottles\nno stamp at all\n');
    expect(messages).toEqual([
      { lineNo: 1, hostUs: null, kernelUs: 512345, text: 'calling  foo+0x0/0x10 @ 1' },
      { lineNo: 2, hostUs: null, kernelUs: 2000001, text: 'plain dmesg' },
      { lineNo: 3, hostUs: null, kernelUs: null, text: '99 bottles' },
      { lineNo: 4, hostUs: null, kernelUs: null, text: 'no stamp at all' },
    ]);
    expect(parser.form).toBe('plain');
    expect(parser.counts).toMatchObject({ hostStamped: 0, kernelStamped: 2, prefixed: 1 });
    // A caller that wrote the file itself may say it is a console.log.
    const lines: ConsoleLine[] = [];
    const own = new ConsoleParser({ line: (l) => lines.push(l) }, { hostStamps: true });
    own.push(Buffer.from('10 a\n20 b\nnot stamped\n'));
    own.end();
    expect(lines.map((l) => l.hostUs)).toEqual([10, 20, null]);
  });

  it('takes a raw-dmesg level prefix and a printk caller id off', () => {
    const { messages } = parse('<7>[   12.000100][    T1] calling  bar+0x0/0x20 @ 1\n');
    expect(messages[0]).toMatchObject({ kernelUs: 12000100, text: 'calling  bar+0x0/0x20 @ 1' });
  });

  it('counts the bytes the guest sent per line (UTF-8, plus the newline, minus host stamp and CR)', () => {
    const { lines } = parse('10.0 abc\r\n20.0 °C\r\n\r\n');
    expect(lines.map((l) => [l.hostUs, l.text, l.bytes])).toEqual([[10, 'abc', 4], [20, '°C', 4], [null, '', 1]]);
  });

  it('keeps a truncated last line, and gives the same events at every chunk size', () => {
    const text = '1.0 [    0.000001] a\r\n2.0 [    0.000002] b\n3.0 [    0.0000';
    const events = (size?: number) => {
      const { lines, messages } = parse(text, size);
      return { lines, messages };
    };
    const whole = events();
    expect(whole.messages.map((m) => m.text)).toEqual(['a', 'b', '[    0.0000']);
    expect(whole.lines[2]).toEqual({ lineNo: 3, hostUs: 3, text: '[    0.0000', bytes: 12 });
    for (const size of [1, 2, 3, 7]) expect(events(size)).toEqual(whole);
    // A multi-byte character split between chunks still decodes.
    expect(parse('5.0 température\n', 1).messages[0]!.text).toBe('température');
  });

  it('strips terminal escapes (SeaBIOS and the kernel reset the terminal) from messages only', () => {
    const { lines, messages } = parse('7.0 \x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\n');
    expect(messages[0]!.text).toBe('SeaBIOS (version 1.16.2)');
    expect(lines[0]!.bytes).toBe(Buffer.byteLength('\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)') + 1);
  });

  it('puts a message cut by another CPU\'s output back together, in the order the messages started', () => {
    const { messages, parser } = parse(
      '10.0 [    3.246088] initcall ata_init+0x0/0x31e [libata] returned 0 af[    3.246090] calling  sd_mod_init+0x0/0x1000 [sd_mod] @ 100\n' +
        '11.0 ter 5988 usecs\n' +
        '12.0 BOOT_TIME:mou[    3.249871] random: crng init done\n' +
        '13.0 nts_done:3250000000\n' +
        '14.0 [    3.300000] next\n',
    );
    expect(messages).toEqual([
      { lineNo: 1, hostUs: 11, kernelUs: 3246088, text: 'initcall ata_init+0x0/0x31e [libata] returned 0 after 5988 usecs' },
      { lineNo: 1, hostUs: 10, kernelUs: 3246090, text: 'calling  sd_mod_init+0x0/0x1000 [sd_mod] @ 100' },
      { lineNo: 3, hostUs: 13, kernelUs: null, text: 'BOOT_TIME:mounts_done:3250000000' },
      { lineNo: 3, hostUs: 12, kernelUs: 3249871, text: 'random: crng init done' },
      { lineNo: 5, hostUs: 14, kernelUs: 3300000, text: 'next' },
    ]);
    expect(parser.counts.joined).toBe(2);
  });

  it('leaves a cut message as it is when the next line has its own stamp', () => {
    const { messages } = parse('[    1.000000] Probing EDD... o[    2.000000] Linux version 6.1\n[    2.000001] Command line: x\n');
    expect(messages.map((m) => [m.kernelUs, m.text])).toEqual([[1000000, 'Probing EDD... o'], [2000000, 'Linux version 6.1'], [2000001, 'Command line: x']]);
  });

  it('reads every sample the same way one byte at a time', () => {
    for (const name of ['dmesg-initcall-debug-6.1.txt', 'console-boot-time.log', 'console-truncated-crlf.log', 'console-interleaved.log']) {
      const collect = (size: number) => {
        const out: unknown[] = [];
        feedConsole(sample('console', name), { line: (l) => out.push(l), message: (m) => out.push(m) }, size);
        return out;
      };
      const whole = collect(1 << 16);
      expect(whole.length).toBeGreaterThan(10);
      expect(collect(1)).toEqual(whole);
    }
  });
});
