/**
 * Is the vCPU halted for good? With the in-kernel irqchip a guest HLT never exits to user space: KVM
 * parks the vCPU until an interrupt comes. A guest that halts with interrupts off (RFLAGS.IF = 0, as
 * Linux's stop_this_cpu does after `poweroff -f` without a power-off method, "reboot: System halted")
 * never wakes, and the capture would wait out its --timeout. So the capture thread kicks the vCPU out
 * of KVM_RUN now and then (a probe) and this decides from what it sees:
 *   - KVM_GET_MP_STATE = HALTED and IF = 0: halted for good -> stop with 'halt'.
 *   - HALTED with IF = 1: idle, waiting for a timer tick -> go on.
 *   - KVM without KVM_GET_MP_STATE: the byte before RIP is HLT (0xF4; RIP is past a HLT that KVM has
 *     completed) and IF = 0 -> 'halt' only when two probes in a row see the same RIP (one could catch the
 *     vCPU just after some other instruction ending in an 0xF4 byte).
 * Pure over its inputs; test/halt-detect.test.ts feeds it probe sequences.
 */

/** RFLAGS.IF: interrupts enabled. */
export const RFLAGS_IF = 0x200n;
export const HLT_OPCODE = 0xf4;
/** How often the capture thread probes a running vCPU (ms): a halt is reported at most this late. */
export const HALT_PROBE_MS = 250;

export interface HaltProbe {
  /** KVM_GET_MP_STATE, or null when the ioctl is refused. */
  mpState: number | null;
  rip: bigint;
  rflags: bigint;
  /** The guest byte at RIP - 1 through the guest's page tables, or -1 when unmapped (asked only when needed). */
  byteBeforeRip: () => number;
}

export type HaltVerdict = { halted: false; waiting: boolean } | { halted: true; detail: string };

/** KVM_MP_STATE_HALTED (<linux/kvm.h>). */
const MP_STATE_HALTED = 3;

export class HaltDetector {
  /** RIP of the previous probe that saw an HLT byte with IF = 0 (fallback path only). */
  private suspectRip: bigint | null = null;

  /** Decide from one probe (see the file comment). `waiting`: halted with interrupts on, i.e. idle. */
  probe(p: HaltProbe): HaltVerdict {
    const irqsOff = (p.rflags & RFLAGS_IF) === 0n;
    if (p.mpState !== null) {
      this.suspectRip = null;
      if (p.mpState !== MP_STATE_HALTED) return { halted: false, waiting: false };
      if (irqsOff) return { halted: true, detail: 'HLT with interrupts off (KVM_GET_MP_STATE: halted, RFLAGS.IF = 0)' };
      return { halted: false, waiting: true };
    }
    if (!irqsOff || p.rip === 0n || p.byteBeforeRip() !== HLT_OPCODE) {
      this.suspectRip = null;
      return { halted: false, waiting: false };
    }
    if (this.suspectRip === p.rip) return { halted: true, detail: 'HLT with interrupts off (RIP after a HLT, RFLAGS.IF = 0, in two probes)' };
    this.suspectRip = p.rip;
    return { halted: false, waiting: false };
  }
}
