/**
 * --trace-from by a trap written into guest code, for KVMs where the DR0 execute breakpoint never fires
 * (nested under QEMU TCG, whose VMRUN loads DR7 from the VMCB without arming it: docs/nested-kvm.md).
 *
 * The trap is `out 0xe9, al` (E6 E9: two bytes, changes no register or flag; port 0xE9 has no device
 * here) written over the first two bytes of the target instruction at its guest-physical address before
 * the guest runs. It fires as a KVM_EXIT_IO (out, port 0xE9, one byte) with RIP at the target. Then:
 *   1. KVM_RUN with immediate_exit set: KVM completes the pending OUT (advancing RIP past it) and returns
 *      EINTR without running the guest (Documentation/virt/kvm/api.rst, KVM_EXIT_IO: "re-enter the
 *      kernel with ... immediate_exit set to complete pending operations");
 *   2. the original bytes go back (exactly those saved);
 *   3. RIP is set back to the target, and stepping starts there: its first line is the target.
 * Any other port-0xE9 write (RIP elsewhere) is an ordinary I/O exit.
 * Works only where the code at the target is in place when the guest starts: a kernel booted as an ELF
 * (the host decompressed it). A bzImage decompresses itself over the trap.
 */

/** The trap's bytes: out 0xe9, al. */
export const TRAP_BYTES = Uint8Array.of(0xe6, 0xe9);
export const TRAP_PORT = 0xe9;

export interface PhysMemory {
  view(gpa: number, len: number): Uint8Array;
}

export class SoftwareTrap {
  private saved: Uint8Array | null = null;

  /** `linear`: the target's virtual address; `pa`: its guest-physical address. */
  constructor(readonly linear: bigint, readonly pa: number) {}

  get armed(): boolean {
    return this.saved !== null;
  }

  /** Save the target's first bytes and write the trap over them. */
  arm(mem: PhysMemory): void {
    if (this.saved) return;
    const v = mem.view(this.pa, TRAP_BYTES.length);
    this.saved = Uint8Array.from(v);
    v.set(TRAP_BYTES);
  }

  /** Put the saved bytes back (a no-op when not armed); returns whether the trap bytes were still there. */
  restore(mem: PhysMemory): boolean {
    if (!this.saved) return true;
    const v = mem.view(this.pa, TRAP_BYTES.length);
    const intact = v.every((b, i) => b === TRAP_BYTES[i]);
    v.set(this.saved);
    this.saved = null;
    return intact;
  }

  /**
   * Is this I/O exit the trap firing? (out, 1 byte, port 0xE9, RIP at the target; or just past the trap:
   * the software-backed KVM on this project's machines reports RIP after the OUT.)
   */
  fired(io: { direction: number; size: number; port: number }, rip: () => bigint): boolean {
    if (this.saved === null || io.port !== TRAP_PORT || io.direction !== 1 || io.size !== 1) return false;
    const r = rip();
    return r === this.linear || r === this.linear + BigInt(TRAP_BYTES.length);
  }
}
