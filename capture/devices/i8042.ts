/**
 * The i8042 keyboard controller, present only as the PC's reset line: `outb 0xFE -> 0x64` ("pulse
 * output line 0", wired to CPU reset) is how Linux reboots with reboot=k and what some firmware paths
 * use. There is no keyboard or mouse behind it.
 *
 * Linux's probe must give up fast: i8042_flush() drains the output buffer while the status says OBF and
 * declares "No controller found" after 16 reads. So status reads OBF=1 (output full) with IBF=0 (input
 * empty, so kb_wait() before a reset write never spins), and the data port reads 0xFF forever.
 * Offsets: 0 = data port 0x60, 4 = status/command port 0x64 (the device spans 0x60..0x64).
 */
import type { PortDevice } from './bus.js';

export interface I8042Sink {
  /** The guest asked for a CPU reset (command 0xFE). */
  onReset(): void;
}

const DATA = 0;
const STATUS_COMMAND = 4;
/** Status register: OBF (bit 0) set, IBF (bit 1) clear; see the file comment. */
export const I8042_STATUS = 0x01;
/** Command 0xFE: pulse output port bit 0 low = CPU reset. */
export const I8042_CMD_RESET = 0xfe;

export interface I8042State {
  /** Last command byte written to 0x64 (for reports). */
  lastCommand: number;
  /** Reset requests seen. */
  resets: number;
}

export class I8042 implements PortDevice {
  readonly state: I8042State = { lastCommand: -1, resets: 0 };

  constructor(private readonly sink: I8042Sink) {}

  read(offset: number, _size: number): number {
    switch (offset) {
      case DATA:
        return 0xff;
      case STATUS_COMMAND:
        return I8042_STATUS;
      default:
        return 0xff; // 0x61..0x63 are other devices on a PC; nothing here
    }
  }

  write(offset: number, _size: number, value: number): void {
    if (offset !== STATUS_COMMAND) return; // data bytes for a keyboard that is not there
    const cmd = value & 0xff;
    this.state.lastCommand = cmd;
    if (cmd === I8042_CMD_RESET) {
      this.state.resets++;
      this.sink.onReset();
    }
  }
}
