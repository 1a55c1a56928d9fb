/**
 * The port-I/O bus: a KVM_EXIT_IO for port P of size S goes to the device registered over P, as
 * `read(P - base, S)` / `write(P - base, S, value)`. Like the PC's ISA bus, a port nobody claims reads
 * as all ones ("floating bus") and swallows writes; Linux's probes take 0xFF to mean "no device".
 *
 * Example: `bus.register(0x3f8, 8, serial, 'serial COM1')`, then an `outb 0x3f8` exit calls
 * `serial.write(0, 1, byte)`.
 */

/** A device on the port bus. `offset` is relative to the device's base port; `size` is 1, 2 or 4. */
export interface PortDevice {
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}

interface Claim {
  base: number;
  length: number;
  dev: PortDevice;
  name: string;
}

/** The value an unclaimed port reads as: all ones of the access size. */
export function allOnes(size: number): number {
  return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
}

export class PortBus {
  /** One slot per port (0..0xFFFF): a direct index, because serial output costs one exit per byte. */
  private readonly slots: (Claim | undefined)[] = new Array(0x10000);
  private readonly claims: Claim[] = [];
  /** Accesses to unclaimed ports, by port, so the VMM can report what the guest probed. */
  readonly unclaimed = new Map<number, number>();

  register(base: number, length: number, dev: PortDevice, name: string): void {
    if (!Number.isInteger(base) || !Number.isInteger(length) || base < 0 || length < 1 || base + length > 0x10000) {
      throw new RangeError(`port bus: bad range for ${name}: base 0x${base.toString(16)}, length ${length}`);
    }
    for (let p = base; p < base + length; p++) {
      const other = this.slots[p];
      if (other) {
        throw new RangeError(`port bus: ${name} at 0x${base.toString(16)} overlaps ${other.name} at 0x${other.base.toString(16)}`);
      }
    }
    const claim: Claim = { base, length, dev, name };
    this.claims.push(claim);
    for (let p = base; p < base + length; p++) this.slots[p] = claim;
  }

  read(port: number, size: number): number {
    const c = this.slots[port & 0xffff];
    if (c === undefined) {
      this.noteUnclaimed(port);
      return allOnes(size);
    }
    return c.dev.read(port - c.base, size);
  }

  write(port: number, size: number, value: number): void {
    const c = this.slots[port & 0xffff];
    if (c === undefined) {
      this.noteUnclaimed(port);
      return;
    }
    c.dev.write(port - c.base, size, value);
  }

  /** The name of the device claiming `port`, or undefined (for exit reports). */
  nameOf(port: number): string | undefined {
    return this.slots[port & 0xffff]?.name;
  }

  /** The registered devices, in registration order. */
  devices(): readonly { base: number; length: number; name: string }[] {
    return this.claims.map(({ base, length, name }) => ({ base, length, name }));
  }

  private noteUnclaimed(port: number): void {
    this.unclaimed.set(port, (this.unclaimed.get(port) ?? 0) + 1);
  }
}
