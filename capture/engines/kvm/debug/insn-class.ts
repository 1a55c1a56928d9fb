/**
 * What the single-step watchdog needs to know about one x86-64 instruction, from its first bytes
 * (legacy and REX prefixes skipped; Intel SDM vol. 2, opcode map A.3):
 *   'emulated'  KVM may run it through its instruction emulator, which writes RFLAGS back without the TF
 *               that KVM_GUESTDBG_SINGLESTEP set (TF is only put back while RIP still equals the RIP of the
 *               last KVM_SET_GUEST_DEBUG): control/debug register moves, CLTS, LMSW/SMSW/INVLPG and the
 *               0F 01 system group, INVD/WBINVD, string port I/O, RDPMC; and the intercepted CPUID,
 *               RDMSR/WRMSR, XSETBV (skipped through the emulator on SVM without NRIPS).
 *   'tf-clear'  the guest itself loads RFLAGS (POPF, IRET, SYSCALL/SYSRET masking, INT n delivery) and may
 *               clear TF.
 *   'shadow'    STI / MOV SS / POP SS: the trap after it is held back one instruction (interrupt shadow),
 *               so the next DEBUG exit legitimately comes one instruction late.
 *   'branch'    may move RIP anywhere (jumps, calls, returns, loops, far transfers, HLT's wake-up).
 *   'plain'     none of these: the next DEBUG exit is at most 15 bytes (one instruction) further on.
 * After 'emulated' and 'tf-clear' the run loop sets KVM_SET_GUEST_DEBUG again; see step-watchdog.ts.
 */

export type InsnClass = 'emulated' | 'tf-clear' | 'shadow' | 'branch' | 'plain';

/** The classes by number, for callers that keep a class in an int (the trace writer's address cache). */
export const INSN_CLASSES: readonly InsnClass[] = ['emulated', 'tf-clear', 'shadow', 'branch', 'plain'];

/** Longest x86 instruction (bytes). */
export const MAX_INSN_BYTES = 15;

const LEGACY_PREFIXES = new Set([0x66, 0x67, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0xf0]);

/**
 * Classify the instruction whose bytes start at `b[0]` (give up to 15; fewer when unreadable: an empty
 * or prefix-only array is 'branch', the cautious answer that never triggers a false alarm).
 */
export function classifyInsn(b: ArrayLike<number>): InsnClass {
  const i = opcodeIndex(b);
  if (i >= b.length) return 'branch';
  const op = b[i]!;
  if (op === 0x0f) {
    if (i + 1 >= b.length) return 'branch';
    const op2 = b[i + 1]!;
    if (op2 >= 0x20 && op2 <= 0x23) return 'emulated'; // mov cr/dr
    if (op2 === 0x06 || op2 === 0x08 || op2 === 0x09) return 'emulated'; // clts, invd, wbinvd
    if (op2 === 0x01 || op2 === 0x00) return 'emulated'; // system groups 6 and 7 (lgdt, lmsw, invlpg, xsetbv, ...)
    if (op2 === 0x30 || op2 === 0x32 || op2 === 0x33 || op2 === 0xa2) return 'emulated'; // wrmsr, rdmsr, rdpmc, cpuid
    if (op2 === 0x05 || op2 === 0x07 || op2 === 0x34 || op2 === 0x35) return 'tf-clear'; // syscall, sysret, sysenter, sysexit
    if (op2 >= 0x80 && op2 <= 0x8f) return 'branch'; // jcc rel32
    if (op2 === 0x0b) return 'branch'; // ud2: an exception
    return 'plain';
  }
  if (op >= 0x6c && op <= 0x6f) return 'emulated'; // ins/outs
  if (op === 0x9d || op === 0xcf) return 'tf-clear'; // popf, iret
  if (op === 0xcc || op === 0xcd || op === 0xce || op === 0xf1) return 'tf-clear'; // int3, int n, into, int1: delivery clears TF
  if (op === 0xfb || op === 0x17) return 'shadow'; // sti, pop ss
  if (op === 0x8e) {
    const modrm = b[i + 1];
    return modrm !== undefined && ((modrm >> 3) & 7) === 2 ? 'shadow' : 'plain'; // mov ss, r/m
  }
  if (op >= 0x70 && op <= 0x7f) return 'branch'; // jcc rel8
  if (op >= 0xe0 && op <= 0xe3) return 'branch'; // loop*, jrcxz
  if (op === 0xe8 || op === 0xe9 || op === 0xeb || op === 0xea || op === 0x9a) return 'branch';
  if (op === 0xc2 || op === 0xc3 || op === 0xca || op === 0xcb) return 'branch'; // ret
  if (op === 0xf4) return 'branch'; // hlt: wakes into an interrupt handler
  if (op === 0xff) {
    const modrm = b[i + 1];
    if (modrm === undefined) return 'branch';
    const reg = (modrm >> 3) & 7;
    return reg >= 2 && reg <= 5 ? 'branch' : 'plain'; // call/jmp near and far, indirect
  }
  return 'plain';
}

/**
 * Whether the instruction at b[0] accesses an I/O port (IN/OUT with an immediate port or DX, INS/OUTS;
 * Intel SDM vol. 2, opcodes E4-E7, EC-EF, 6C-6F): one the VMM usually completes after a KVM_EXIT_IO.
 */
export function isPortIo(b: ArrayLike<number>): boolean {
  const i = opcodeIndex(b);
  if (i >= b.length) return false;
  const op = b[i]!;
  return (op >= 0xe4 && op <= 0xe7) || (op >= 0xec && op <= 0xef) || (op >= 0x6c && op <= 0x6f);
}

/** Where the opcode starts: after the legacy prefixes and a REX prefix (b.length when the bytes end first). */
function opcodeIndex(b: ArrayLike<number>): number {
  let i = 0;
  while (i < b.length && i < MAX_INSN_BYTES && LEGACY_PREFIXES.has(b[i]!)) i++;
  if (i < b.length && (b[i]! & 0xf0) === 0x40) i++; // REX
  return i;
}
