/**
 * A 16550A UART (8250 family) at COM1, as much of it as Linux's 8250 driver and earlyprintk use.
 * Transmission is instantaneous: a byte written to THR goes straight to `onByte` and THR is empty again
 * at once, so LSR always reads THRE|TEMT (0x60) plus DR when host input is waiting.
 *
 * Registers (offset from the base port; DLAB = LCR bit 7):
 *   0  RBR (read) / THR (write); DLL when DLAB      4  MCR  modem control (LOOP = bit 4)
 *   1  IER interrupt enable (low 4 bits); DLM w/ DLAB  5  LSR  line status
 *   2  IIR (read) / FCR (write)                      6  MSR  modem status
 *   3  LCR line control                              7  SCR  scratch
 *
 * Interrupts: the line is the OR of the enabled pending sources; `setIrq` is called only when that
 * level changes (KVM_IRQ_LINE is edge-like: raise on 0->1, lower on 1->0). As on QEMU's and
 * Firecracker's UARTs, MCR.OUT2 does not gate the line.
 * The THR-empty interrupt follows 8250 semantics: it becomes pending when THR empties or when IER.THRI
 * is switched on while THR is empty, and is cleared by reading IIR while it is the reported source,
 * by writing THR, or by clearing IER.THRI. Linux's startup checks exactly this ("THRE re-assert" test);
 * without it the tty layer would fall back to a polling timer.
 */
import type { PortDevice } from './bus.js';

export interface SerialSink {
  /** A byte the guest transmitted (not called in loopback mode). */
  onByte(byte: number): void;
  /** The interrupt line level changed. */
  setIrq(level: boolean): void;
}

// Register offsets.
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

// IER bits.
const IER_RDI = 0x01; // received data available
const IER_THRI = 0x02; // THR empty
const IER_RLSI = 0x04; // receiver line status
// IER bit 3 (modem status) is stored but never fires: no modem-status changes are generated.

// IIR values (bit 0 set = nothing pending).
const IIR_NO_INT = 0x01;
const IIR_THRI = 0x02;
const IIR_RLSI = 0x06;
const IIR_RDI = 0x04;
const IIR_FIFO_BITS = 0xc0; // "FIFOs enabled" on a 16550A: the 8250 driver's autoconfig reads these

// FCR bits.
const FCR_ENABLE_FIFO = 0x01;
const FCR_CLEAR_RCVR = 0x02;

// LCR / MCR bits.
const LCR_DLAB = 0x80;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

// LSR bits.
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

// MSR bits.
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;

/** MSR outside loopback: carrier, data set ready and clear to send asserted, as for a connected terminal. */
const MSR_CONNECTED = MSR_DCD | MSR_DSR | MSR_CTS; // 0xB0

/** Host input beyond this many waiting bytes is dropped (and flagged as overrun), like a real FIFO overflow. */
const RX_QUEUE_LIMIT = 1 << 16;

/** The register file, one field per register. */
export interface SerialState {
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  dll: number;
  dlm: number;
  fifoEnabled: boolean;
  /** THR-empty interrupt pending (see the file comment). */
  thrIpending: boolean;
  /** Overrun error latched for the next LSR read. */
  overrun: boolean;
  /** Current level of the interrupt line as last reported through setIrq. */
  irq: boolean;
}

export class Serial8250 implements PortDevice {
  readonly state: SerialState = {
    ier: 0,
    lcr: 0,
    mcr: 0,
    scr: 0,
    dll: 0x0c, // 9600 baud, the power-on default of PC firmware
    dlm: 0,
    fifoEnabled: false,
    thrIpending: false,
    overrun: false,
    irq: false,
  };
  /** Received bytes waiting in RBR/the receive FIFO (host input, or loopback). */
  private rx: number[] = [];
  private rxHead = 0;
  /** Bytes the guest transmitted (counter, for reports). */
  txBytes = 0;

  constructor(private readonly sink: SerialSink) {}

  /** Host -> guest bytes (keyboard input): they appear in RBR with LSR.DR and the RDI interrupt. */
  input(bytes: Iterable<number> | Uint8Array): void {
    for (const b of bytes) this.receive(b & 0xff);
    this.updateIrq();
  }

  /** Received bytes the guest has not read yet. */
  get pendingInput(): number {
    return this.rx.length - this.rxHead;
  }

  read(offset: number, _size: number): number {
    const s = this.state;
    switch (offset) {
      case RBR_THR_DLL: {
        if (s.lcr & LCR_DLAB) return s.dll;
        const b = this.popRx();
        this.updateIrq();
        return b;
      }
      case IER_DLM:
        return s.lcr & LCR_DLAB ? s.dlm : s.ier;
      case IIR_FCR: {
        const iir = this.pendingIir();
        // Reading IIR while it reports THR-empty acknowledges that interrupt (8250 semantics).
        if (iir === IIR_THRI) {
          s.thrIpending = false;
          this.updateIrq();
        }
        return iir | (s.fifoEnabled ? IIR_FIFO_BITS : 0);
      }
      case LCR:
        return s.lcr;
      case MCR:
        return s.mcr;
      case LSR: {
        let lsr = LSR_THRE | LSR_TEMT;
        if (this.pendingInput > 0) lsr |= LSR_DR;
        if (s.overrun) {
          lsr |= LSR_OE; // cleared by reading LSR, which also ends the line-status interrupt
          s.overrun = false;
          this.updateIrq();
        }
        return lsr;
      }
      case MSR:
        return this.msr();
      case SCR:
        return s.scr;
      default:
        return 0xff;
    }
  }

  write(offset: number, _size: number, value: number): void {
    const s = this.state;
    const v = value & 0xff;
    switch (offset) {
      case RBR_THR_DLL:
        if (s.lcr & LCR_DLAB) {
          s.dll = v;
          return;
        }
        this.transmit(v);
        break;
      case IER_DLM: {
        if (s.lcr & LCR_DLAB) {
          s.dlm = v;
          return;
        }
        const before = s.ier;
        s.ier = v & 0x0f; // only the four standard enables exist on a 16550A
        if ((s.ier ^ before) & IER_THRI) {
          // Enabling THRI while THR is empty (always, here) raises it at once; disabling drops it.
          s.thrIpending = (s.ier & IER_THRI) !== 0;
        }
        break;
      }
      case IIR_FCR: {
        const enable = (v & FCR_ENABLE_FIFO) !== 0;
        // Toggling the FIFO enable clears the FIFOs on a 16550A; so does the explicit clear bit.
        if (enable !== s.fifoEnabled || v & FCR_CLEAR_RCVR) this.clearRx();
        s.fifoEnabled = enable;
        break;
      }
      case LCR:
        s.lcr = v;
        return;
      case MCR:
        s.mcr = v & 0x1f;
        break;
      case SCR:
        s.scr = v;
        return;
      default:
        return; // LSR and MSR are read-only; writes are ignored
    }
    this.updateIrq();
  }

  private transmit(byte: number): void {
    const s = this.state;
    if (s.mcr & MCR_LOOP) {
      // Loopback: the transmitter feeds the receiver and nothing leaves the chip.
      this.receive(byte);
    } else {
      this.txBytes++;
      this.sink.onByte(byte);
    }
    // Writing THR clears the THR-empty interrupt; the byte leaves instantly, so THR is empty again and
    // the interrupt is raised anew if enabled. Net effect: pending iff IER.THRI.
    s.thrIpending = (s.ier & IER_THRI) !== 0;
  }

  private msr(): number {
    const mcr = this.state.mcr;
    if (!(mcr & MCR_LOOP)) return MSR_CONNECTED;
    // Loopback wiring of a 16550: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. Linux's autoconfig writes
    // MCR = LOOP|OUT2|RTS and expects MSR & 0xF0 == 0x90.
    let msr = 0;
    if (mcr & MCR_RTS) msr |= MSR_CTS;
    if (mcr & MCR_DTR) msr |= MSR_DSR;
    if (mcr & MCR_OUT1) msr |= MSR_RI;
    if (mcr & MCR_OUT2) msr |= MSR_DCD;
    return msr;
  }

  /** The IIR source code of the highest-priority enabled pending interrupt (RLS is never pending here). */
  private pendingIir(): number {
    const s = this.state;
    if (s.ier & IER_RLSI && s.overrun) return IIR_RLSI;
    if (s.ier & IER_RDI && this.pendingInput > 0) return IIR_RDI;
    if (s.ier & IER_THRI && s.thrIpending) return IIR_THRI;
    return IIR_NO_INT;
  }

  private updateIrq(): void {
    const level = this.pendingIir() !== IIR_NO_INT;
    if (level !== this.state.irq) {
      this.state.irq = level;
      this.sink.setIrq(level);
    }
  }

  private receive(byte: number): void {
    if (this.pendingInput >= RX_QUEUE_LIMIT) {
      this.state.overrun = true;
      return;
    }
    this.rx.push(byte);
  }

  private popRx(): number {
    if (this.rxHead >= this.rx.length) return 0;
    const b = this.rx[this.rxHead++]!;
    if (this.rxHead === this.rx.length) this.clearRx();
    return b;
  }

  private clearRx(): void {
    this.rx = [];
    this.rxHead = 0;
  }
}
