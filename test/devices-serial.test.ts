import { describe, expect, it } from 'vitest';
import { PortBus } from '../capture/devices/bus.js';
import { Serial8250 } from '../capture/devices/serial.js';
import { SERIAL_COM1_PORT, SERIAL_PORT_COUNT } from '../capture/layout.js';

const RX = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

function uart() {
  const out: number[] = [];
  const irq: boolean[] = [];
  const dev = new Serial8250({ onByte: (b) => out.push(b), setIrq: (l) => irq.push(l) });
  const inb = (off: number) => dev.read(off, 1);
  const outb = (off: number, v: number) => dev.write(off, 1, v);
  return { dev, out, irq, inb, outb };
}

/**
 * The register sequence of Linux's 8250 autoconfig() + autoconfig_16550a() (drivers/tty/serial/8250/8250_port.c)
 * for a COM port, transcribed as port accesses; returns the type the driver would decide on.
 */
function linuxAutoconfig(inb: (o: number) => number, outb: (o: number, v: number) => void): string {
  const scratch = inb(IER);
  outb(IER, 0);
  const scratch2 = inb(IER) & 0x0f;
  outb(IER, 0x0f);
  const scratch3 = inb(IER) & 0x0f;
  outb(IER, scratch);
  if (scratch2 !== 0 || scratch3 !== 0x0f) return 'none (IER test failed)';
  const saveMcr = inb(MCR);
  const saveLcr = inb(LCR);
  outb(MCR, 0x10 | 0x0a);
  const status1 = inb(MSR) & 0xf0;
  outb(MCR, saveMcr);
  if (status1 !== 0x90) return 'none (LOOP test failed)';
  outb(LCR, 0xbf);
  outb(2, 0); // EFR
  outb(LCR, 0);
  outb(FCR, 0x01);
  const kind = inb(IIR) >> 6;
  let type: string;
  if (kind === 0) type = '8250/16450';
  else if (kind === 1) type = 'unknown';
  else if (kind === 2) type = '16550';
  else {
    type = '16550A';
    // EFR with DLAB (ST16C650V1) and with LCR 0xBF (ST16C650V2 etc.): the register must not read 0.
    outb(LCR, 0x80);
    if (inb(2) === 0) type = 'ST16C650V1';
    outb(LCR, 0xbf);
    if (type === '16550A' && inb(2) === 0) type = 'EFR UART';
    // National SuperIO: the LOOP bit must not show through register 2 in bank 2.
    outb(LCR, 0);
    const m = inb(MCR);
    outb(LCR, 0xe0);
    let s2 = inb(2);
    if (!((s2 ^ m) & 0x10)) {
      outb(LCR, 0);
      outb(MCR, m ^ 0x10);
      outb(LCR, 0xe0);
      s2 = inb(2);
      outb(LCR, 0);
      outb(MCR, m);
      if ((s2 ^ m) & 0x10) type = 'NS16550A';
    }
    // TI16750: IIR bit 5 with the 64-byte FIFO bit, only with DLAB set.
    outb(LCR, 0);
    outb(FCR, 0x21);
    const st1 = inb(IIR) >> 5;
    outb(FCR, 0x01);
    outb(LCR, 0x80);
    outb(FCR, 0x21);
    const st2 = inb(IIR) >> 5;
    outb(FCR, 0x01);
    outb(LCR, 0);
    if (st1 === 6 && st2 === 7) type = '16750';
    // XScale: IER bit 6 (UUE) must not stick.
    const iersave = inb(IER);
    outb(IER, iersave & ~0x40);
    if (!(inb(IER) & 0x40)) {
      outb(IER, iersave | 0x40);
      if (inb(IER) & 0x40) type = 'XScale';
    }
    outb(IER, iersave);
  }
  outb(LCR, saveLcr);
  outb(MCR, saveMcr);
  outb(FCR, 0x01);
  outb(FCR, 0x07);
  outb(FCR, 0);
  inb(RX);
  outb(IER, 0);
  return type;
}

describe('Serial8250 registers', () => {
  it('IER reads back its low 4 bits only', () => {
    const { inb, outb } = uart();
    outb(IER, 0xff);
    expect(inb(IER)).toBe(0x0f);
    outb(IER, 0x05);
    expect(inb(IER)).toBe(0x05);
  });

  it('DLAB switches offsets 0 and 1 to the divisor latch without touching THR/IER', () => {
    const { inb, outb, out } = uart();
    outb(IER, 0x01);
    outb(LCR, 0x83);
    outb(0, 0x01);
    outb(1, 0x00);
    expect(inb(0)).toBe(0x01);
    expect(inb(1)).toBe(0x00);
    expect(out).toEqual([]); // a divisor write is not a transmitted byte
    outb(LCR, 0x03);
    expect(inb(IER)).toBe(0x01);
    expect(inb(LCR)).toBe(0x03);
  });

  it('LSR is THRE|TEMT, plus DR while input waits', () => {
    const { dev, inb } = uart();
    expect(inb(LSR)).toBe(0x60);
    dev.input([0x41, 0x42]);
    expect(inb(LSR)).toBe(0x61);
    expect(inb(RX)).toBe(0x41);
    expect(inb(LSR)).toBe(0x61);
    expect(inb(RX)).toBe(0x42);
    expect(inb(LSR)).toBe(0x60);
  });

  it('MSR reads 0xB0 outside loopback and follows MCR inside it', () => {
    const { inb, outb } = uart();
    expect(inb(MSR)).toBe(0xb0);
    outb(MCR, 0x10 | 0x0a);
    expect(inb(MSR) & 0xf0).toBe(0x90);
    outb(MCR, 0x10 | 0x0f);
    expect(inb(MSR)).toBe(0xf0);
  });

  it('scratch register holds any byte', () => {
    const { inb, outb } = uart();
    for (const v of [0x00, 0x55, 0xaa, 0xff]) {
      outb(SCR, v);
      expect(inb(SCR)).toBe(v);
    }
  });

  it('bytes written to THR reach onByte in order; loopback keeps them on the chip', () => {
    const { inb, outb, out, dev } = uart();
    for (const c of Buffer.from('ok\n')) outb(0, c);
    expect(Buffer.from(out).toString()).toBe('ok\n');
    outb(MCR, 0x10);
    outb(0, 0x5a);
    expect(out.length).toBe(3);
    expect(inb(LSR) & 1).toBe(1);
    expect(inb(RX)).toBe(0x5a);
    expect(dev.txBytes).toBe(3);
  });

  it('IIR reports FIFO bits 0xC0 only while FCR enabled them', () => {
    const { inb, outb } = uart();
    expect(inb(IIR)).toBe(0x01);
    outb(FCR, 0x01);
    expect(inb(IIR)).toBe(0xc1);
    outb(FCR, 0x00);
    expect(inb(IIR)).toBe(0x01);
  });
});

describe('Serial8250 interrupts', () => {
  it('THRI: raised when enabled, IIR read acknowledges it, re-enabling re-asserts (Linux THRE test)', () => {
    const { inb, outb, irq } = uart();
    outb(IER, 0x02);
    expect(irq).toEqual([true]);
    const iir1 = inb(IIR);
    expect(iir1 & 0x0f).toBe(0x02);
    expect(irq).toEqual([true, false]);
    expect(inb(IIR) & 0x0f).toBe(0x01); // acknowledged: nothing pending now
    outb(IER, 0);
    outb(IER, 0x02);
    const iir = inb(IIR);
    // serial8250_startup marks UART_BUG_THRE when iir1 had an interrupt but the re-enabled one does not.
    const bugThre = (iir1 & 1) === 0 && (iir & 1) !== 0;
    expect(bugThre).toBe(false);
    expect(iir & 0x0f).toBe(0x02);
    expect(irq).toEqual([true, false, true, false]);
  });

  it('THRI: a THR write raises it again (the byte leaves at once); clearing IER drops it', () => {
    const { inb, outb, irq } = uart();
    outb(IER, 0x02);
    inb(IIR);
    expect(irq.at(-1)).toBe(false);
    outb(0, 0x41);
    expect(irq.at(-1)).toBe(true);
    outb(IER, 0);
    expect(irq.at(-1)).toBe(false);
    outb(0, 0x42);
    expect(irq.at(-1)).toBe(false);
  });

  it('RDI: input raises it, has priority over THRI, and drops when the FIFO is drained', () => {
    const { dev, inb, outb, irq } = uart();
    outb(IER, 0x03);
    dev.input(Buffer.from('x'));
    expect(inb(IIR) & 0x0f).toBe(0x04);
    expect(inb(RX)).toBe(0x78);
    expect(irq.at(-1)).toBe(true); // THRI still pending
    expect(inb(IIR) & 0x0f).toBe(0x02);
    expect(irq.at(-1)).toBe(false);
  });

  it('setIrq is called only on level changes', () => {
    const { outb, irq } = uart();
    outb(IER, 0x02);
    outb(0, 0x41);
    outb(0, 0x42);
    expect(irq).toEqual([true]);
  });
});

describe('Serial8250 as Linux probes it', () => {
  it('autoconfig decides 16550A and leaves the UART quiet', () => {
    const { inb, outb, out, irq } = uart();
    expect(linuxAutoconfig(inb, outb)).toBe('16550A');
    expect(out).toEqual([]);
    expect(inb(IER)).toBe(0);
    expect(irq.at(-1) ?? false).toBe(false);
  });

  it('serial8250_do_startup: LSR is not 0xFF and enabling THRI shows an interrupt at once (no UART_BUG_TXEN)', () => {
    const { inb, outb } = uart();
    expect(linuxAutoconfig(inb, outb)).toBe('16550A');
    expect(inb(LSR)).not.toBe(0xff);
    outb(IER, 0x02);
    const lsr = inb(LSR);
    const iir = inb(IIR);
    outb(IER, 0);
    const bugTxen = (lsr & 0x40) !== 0 && (iir & 0x01) !== 0;
    expect(bugTxen).toBe(false);
  });

  it('is reachable through the port bus at COM1', () => {
    const { dev, out } = uart();
    const bus = new PortBus();
    bus.register(SERIAL_COM1_PORT, SERIAL_PORT_COUNT, dev, 'serial');
    const type = linuxAutoconfig(
      (o) => bus.read(SERIAL_COM1_PORT + o, 1),
      (o, v) => bus.write(SERIAL_COM1_PORT + o, 1, v),
    );
    expect(type).toBe('16550A');
    bus.write(0x3f8, 1, 0x48);
    expect(out).toEqual([0x48]);
    expect(bus.read(0x3fd, 1)).toBe(0x60);
  });
});
