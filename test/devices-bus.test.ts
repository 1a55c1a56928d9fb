import { describe, expect, it } from 'vitest';
import { PortBus, type PortDevice } from '../capture/devices/bus.js';
import { Cmos } from '../capture/devices/cmos.js';
import { I8042 } from '../capture/devices/i8042.js';
import {
  CMOS_DATA_PORT,
  CMOS_INDEX_PORT,
  CMOS_PORT_COUNT,
  I8042_COMMAND_PORT,
  I8042_DATA_PORT,
  I8042_PORT_COUNT,
} from '../capture/layout.js';

class Recorder implements PortDevice {
  log: string[] = [];
  read(offset: number, size: number): number {
    this.log.push(`r${offset}/${size}`);
    return 0x40 + offset;
  }
  write(offset: number, size: number, value: number): void {
    this.log.push(`w${offset}/${size}=${value.toString(16)}`);
  }
}

describe('PortBus', () => {
  it('unclaimed reads are all ones of the access size; writes are ignored and counted', () => {
    const bus = new PortBus();
    expect(bus.read(0xcfc, 1)).toBe(0xff);
    expect(bus.read(0xcfc, 2)).toBe(0xffff);
    expect(bus.read(0xcf8, 4)).toBe(0xffffffff);
    bus.write(0xcf8, 4, 0x80000000);
    expect(bus.unclaimed.get(0xcfc)).toBe(2);
    expect(bus.unclaimed.get(0xcf8)).toBe(2);
  });

  it('routes accesses with offsets relative to the base', () => {
    const bus = new PortBus();
    const dev = new Recorder();
    bus.register(0x3f8, 8, dev, 'uart');
    expect(bus.read(0x3fd, 1)).toBe(0x45);
    bus.write(0x3f8, 1, 0x41);
    expect(dev.log).toEqual(['r5/1', 'w0/1=41']);
    expect(bus.read(0x3f7, 1)).toBe(0xff);
    expect(bus.read(0x400, 1)).toBe(0xff);
    expect(bus.nameOf(0x3ff)).toBe('uart');
    expect(bus.nameOf(0x400)).toBeUndefined();
  });

  it('rejects overlapping registrations and bad ranges', () => {
    const bus = new PortBus();
    bus.register(0x60, 5, new Recorder(), 'i8042');
    expect(() => bus.register(0x64, 1, new Recorder(), 'other')).toThrow(/overlaps i8042/);
    expect(() => bus.register(0xffff, 2, new Recorder(), 'past the end')).toThrow(/bad range/);
  });
});

describe('I8042', () => {
  it('status says output-full/input-empty, data reads 0xFF, so Linux flushes 16 bytes and gives up', () => {
    const bus = new PortBus();
    bus.register(I8042_DATA_PORT, I8042_PORT_COUNT, new I8042({ onReset: () => {} }), 'i8042');
    // i8042_flush(): read data while OBF, at most I8042_BUFFER_SIZE (16) times, then report failure.
    let reads = 0;
    while (bus.read(I8042_COMMAND_PORT, 1) & 0x01) {
      if (reads++ >= 16) break;
      expect(bus.read(I8042_DATA_PORT, 1)).toBe(0xff);
    }
    expect(reads).toBe(17);
    // kb_wait() before a reset waits for IBF (bit 1) to clear: it must already be clear.
    expect(bus.read(I8042_COMMAND_PORT, 1) & 0x02).toBe(0);
  });

  it('command 0xFE on port 0x64 requests a reset; other commands and data do not', () => {
    let resets = 0;
    const bus = new PortBus();
    const kbd = new I8042({ onReset: () => resets++ });
    bus.register(I8042_DATA_PORT, I8042_PORT_COUNT, kbd, 'i8042');
    bus.write(I8042_COMMAND_PORT, 1, 0xaa);
    bus.write(I8042_DATA_PORT, 1, 0xfe);
    expect(resets).toBe(0);
    bus.write(I8042_COMMAND_PORT, 1, 0xfe);
    expect(resets).toBe(1);
    expect(kbd.state.resets).toBe(1);
  });
});

describe('Cmos', () => {
  const at = new Date(Date.UTC(2026, 10, 23, 13, 49, 53)); // Monday
  function cmos() {
    const bus = new PortBus();
    const dev = new Cmos({ now: () => at });
    bus.register(CMOS_INDEX_PORT, CMOS_PORT_COUNT, dev, 'cmos');
    const reg = (r: number) => {
      bus.write(CMOS_INDEX_PORT, 1, r);
      return bus.read(CMOS_DATA_PORT, 1);
    };
    const set = (r: number, v: number) => {
      bus.write(CMOS_INDEX_PORT, 1, r);
      bus.write(CMOS_DATA_PORT, 1, v);
    };
    return { reg, set, bus, dev };
  }

  it('status registers have the values Linux expects', () => {
    const { reg } = cmos();
    expect(reg(0x0a)).toBe(0x26);
    expect(reg(0x0b)).toBe(0x02);
    expect(reg(0x0c)).toBe(0x00);
    expect(reg(0x0d)).toBe(0x80);
  });

  it('time registers are the clock in BCD', () => {
    const { reg } = cmos();
    expect(reg(0x00)).toBe(0x53);
    expect(reg(0x02)).toBe(0x49);
    expect(reg(0x04)).toBe(0x13);
    expect(reg(0x06)).toBe(0x02); // Monday = 2 (Sunday = 1)
    expect(reg(0x07)).toBe(0x23);
    expect(reg(0x08)).toBe(0x11);
    expect(reg(0x09)).toBe(0x26);
    expect(reg(0x32)).toBe(0x20);
  });

  it('binary and 12-hour modes follow register B', () => {
    const { reg, set } = cmos();
    set(0x0b, 0x04 | 0x02);
    expect(reg(0x00)).toBe(53);
    set(0x0b, 0x00);
    expect(reg(0x04)).toBe(0x80 | 0x01); // 13:xx = 1 PM
  });

  it('other registers are RAM starting at 0; bit 7 of the index masks NMI and is not part of it', () => {
    const { reg, set, dev } = cmos();
    expect(reg(0x10)).toBe(0);
    set(0x10, 0x5a);
    expect(reg(0x10)).toBe(0x5a);
    expect(reg(0x80 | 0x10)).toBe(0x5a);
    expect(dev.state.nmiMasked).toBe(true);
    set(0x0d, 0xff);
    expect(reg(0x0d)).toBe(0x80); // read-only
  });
});
