import { describe, expect, it } from 'vitest';
import { ConsoleRecorder, parseConsoleLine } from '../capture/output/console-log.js';

function recorder() {
  const written: string[] = [];
  const echoed: string[] = [];
  let t = 0;
  const rec = new ConsoleRecorder({ write: (s) => written.push(s), now: () => t, echo: (s) => echoed.push(s) });
  const feed = (s: string, dt = 0) => {
    for (const b of Buffer.from(s, 'utf8')) {
      t += dt;
      rec.byte(b);
    }
  };
  return { rec, written, echoed, feed, setTime: (v: number) => (t = v) };
}

describe('ConsoleRecorder', () => {
  it('stamps each line with the time its newline arrived, one decimal', () => {
    const { written, feed } = recorder();
    feed('Linux version 6.1.0\n', 7.25);
    expect(written).toEqual([`${(7.25 * 20).toFixed(1)} Linux version 6.1.0\n`]);
    expect(written[0]).toBe('145.0 Linux version 6.1.0\n');
  });

  it('strips CR from CRLF line ends and counts lines and characters', () => {
    const { rec, written, feed, setTime } = recorder();
    setTime(1000.04);
    feed('[    0.000000] Command line: console=ttyS0\r\n');
    feed('\r\n');
    expect(written).toEqual(['1000.0 [    0.000000] Command line: console=ttyS0\n', '1000.0 \n']);
    expect(rec.lines).toBe(2);
    expect(rec.chars).toBe('[    0.000000] Command line: console=ttyS0'.length);
  });

  it('keeps a partial line until flush, which closes it', () => {
    const { rec, written, echoed, feed, setTime } = recorder();
    setTime(5);
    feed('login: ');
    expect(written).toEqual([]);
    expect(rec.pending).toBe(7);
    setTime(12.345);
    rec.flush();
    expect(written).toEqual(['12.3 login: \n']);
    expect(echoed).toEqual(['login: \n']);
    rec.flush();
    expect(written.length).toBe(1);
  });

  it('decodes UTF-8 split across bytes', () => {
    const { written, feed } = recorder();
    feed('température 25°C\n');
    expect(written[0]).toBe('0.0 température 25°C\n');
  });

  it('parses BOOT_TIME markers anywhere in a line; the first occurrence of a stage wins', () => {
    const { rec, feed, setTime } = recorder();
    setTime(250000);
    feed('[    1.234567] init: BOOT_TIME:init_start:1234567000 ok\r\n');
    setTime(260000);
    feed('BOOT_TIME:userspace:1300000000 BOOT_TIME:shell:1400000001\n');
    feed('BOOT_TIME:init_start:99\n');
    feed('BOOT_TIME:broken: no digits\n');
    expect(rec.markers).toEqual({ init_start: 1234567000, userspace: 1300000000, shell: 1400000001 });
    expect(rec.markerTimes).toEqual({ init_start: 250000, userspace: 260000, shell: 260000 });
  });

  it('output lines parse back', () => {
    const { written, feed, setTime } = recorder();
    setTime(12634512.31);
    feed('a b  c\n');
    expect(parseConsoleLine(written[0]!.replace(/\n$/, ''))).toEqual({ tUs: 12634512.3, text: 'a b  c' });
    expect(parseConsoleLine('garbage')).toBeNull();
  });

  it('cuts a runaway line without newline at MAX_LINE_BYTES', () => {
    const { rec, written } = recorder();
    const n = 64 * 1024 + 10;
    for (let i = 0; i < n; i++) rec.byte(0x61);
    expect(written.length).toBe(1);
    expect(written[0]!.length).toBe('0.0 '.length + 64 * 1024 + 1);
    expect(rec.pending).toBe(10);
  });
});
