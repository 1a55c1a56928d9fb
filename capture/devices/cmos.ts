/**
 * The MC146818 CMOS/RTC at ports 0x70 (index; bit 7 masks NMI) and 0x71 (data). Linux reads the
 * wall-clock time from it at boot and checks the status registers:
 *   0x0A = 0x26  update-in-progress clear, 32.768 kHz time base, 1024 Hz periodic rate
 *   0x0B = 0x02  24-hour mode, BCD, no interrupts enabled
 *   0x0C = 0x00  no interrupt flags
 *   0x0D = 0x80  "valid RAM and time" (bit 7); a 0xFF here sets bit 6, which Linux WARNs about
 * Time registers come from the clock passed in (UTC), encoded as 0x0B says (BCD unless DM, bit 2);
 * every other register is plain RAM that starts at 0.
 */
import type { PortDevice } from './bus.js';

const INDEX = 0;
const DATA = 1;

const REG_SECONDS = 0x00;
const REG_MINUTES = 0x02;
const REG_HOURS = 0x04;
const REG_WEEKDAY = 0x06;
const REG_DAY = 0x07;
const REG_MONTH = 0x08;
const REG_YEAR = 0x09;
const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;
/** Century, where PC firmware (and QEMU) keeps it. */
const REG_CENTURY = 0x32;

const B_24H = 0x02;
const B_BINARY = 0x04;
const A_UIP = 0x80;

export interface CmosOptions {
  /** The wall clock the RTC shows; defaults to the host's. */
  now?: () => Date;
}

export interface CmosState {
  /** Selected register (0..127). */
  index: number;
  /** NMI disabled by the last index write (bit 7); recorded, not acted on. */
  nmiMasked: boolean;
  /** The 128 bytes of CMOS RAM (status registers included; time registers are computed on read). */
  ram: Uint8Array;
}

export class Cmos implements PortDevice {
  readonly state: CmosState;
  private readonly now: () => Date;

  constructor(o: CmosOptions = {}) {
    this.now = o.now ?? (() => new Date());
    const ram = new Uint8Array(128);
    ram[REG_A] = 0x26;
    ram[REG_B] = B_24H;
    ram[REG_C] = 0x00;
    ram[REG_D] = 0x80;
    this.state = { index: 0, nmiMasked: false, ram };
  }

  read(offset: number, _size: number): number {
    if (offset === INDEX) return this.state.index; // write-only on real chips; harmless to echo
    if (offset !== DATA) return 0xff;
    const reg = this.state.index;
    const t = this.timeRegister(reg);
    if (t !== undefined) return t;
    if (reg === REG_C) {
      // Interrupt flags clear on read.
      const v = this.state.ram[REG_C]!;
      this.state.ram[REG_C] = 0;
      return v;
    }
    return this.state.ram[reg]!;
  }

  write(offset: number, _size: number, value: number): void {
    const v = value & 0xff;
    if (offset === INDEX) {
      this.state.index = v & 0x7f;
      this.state.nmiMasked = (v & 0x80) !== 0;
      return;
    }
    if (offset !== DATA) return;
    const reg = this.state.index;
    switch (reg) {
      case REG_A:
        this.state.ram[REG_A] = v & ~A_UIP; // UIP is read-only (and never set: updates are instant)
        return;
      case REG_C:
      case REG_D:
        return; // read-only status
      default:
        // Time registers are derived from the clock; writes (setting the RTC) are dropped.
        if (this.timeRegister(reg) !== undefined) return;
        this.state.ram[reg] = v;
    }
  }

  private timeRegister(reg: number): number | undefined {
    let value: number;
    const d = this.now();
    switch (reg) {
      case REG_SECONDS:
        value = d.getUTCSeconds();
        break;
      case REG_MINUTES:
        value = d.getUTCMinutes();
        break;
      case REG_HOURS:
        return this.hours(d.getUTCHours());
      case REG_WEEKDAY:
        value = d.getUTCDay() + 1; // 1 = Sunday
        break;
      case REG_DAY:
        value = d.getUTCDate();
        break;
      case REG_MONTH:
        value = d.getUTCMonth() + 1;
        break;
      case REG_YEAR:
        value = d.getUTCFullYear() % 100;
        break;
      case REG_CENTURY:
        value = Math.floor(d.getUTCFullYear() / 100);
        break;
      default:
        return undefined;
    }
    return this.encode(value);
  }

  /** Hours in the mode register B selects: 24-hour, or 12-hour with bit 7 = PM. */
  private hours(h: number): number {
    if (this.state.ram[REG_B]! & B_24H) return this.encode(h);
    const pm = h >= 12;
    const h12 = h % 12 === 0 ? 12 : h % 12;
    return this.encode(h12) | (pm ? 0x80 : 0);
  }

  private encode(v: number): number {
    if (this.state.ram[REG_B]! & B_BINARY) return v;
    return ((Math.floor(v / 10) % 10) << 4) | v % 10;
  }
}
