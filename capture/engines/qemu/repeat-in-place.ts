/**
 * Whether one x86-64 instruction can complete and leave rip where it was, from its bytes:
 *
 *   canRepeatInPlace(Buffer.from('f3ab', 'hex'))   // rep stosd: true (one step per iteration)
 *   canRepeatInPlace(Buffer.from('ebfe', 'hex'))   // jmp . : true
 *   canRepeatInPlace(Buffer.from('4889c7', 'hex')) // mov rdi, rax: false
 *
 * The QEMU step engine asks this when a step reports the same rip as the step before: QEMU 7.2's
 * gdbstub now and then answers a single-step without executing anything, and only these instructions
 * can genuinely come back to their own address in one step. The forms recognised:
 * - a string instruction (ins, outs, movs, cmps, stos, lods, scas) with a rep/repe/repne prefix (f3/f2):
 *   each iteration is one step at the same rip;
 * - a direct jmp, jcc, loop/jrcxz or call whose target is the instruction itself (`eb fe`,
 *   `e9 fb ff ff ff`, `75 fe`, `0f 85 fa ff ff ff`, `e2 fe`, `e8 fb ff ff ff`).
 * Indirect jumps (`jmp *%rax` to itself) are not recognised: their target is not in the bytes.
 */

/** Legacy prefixes: operand/address size, segment overrides, lock, repne, rep. */
const LEGACY_PREFIXES = new Set([0x66, 0x67, 0x2e, 0x3e, 0x26, 0x64, 0x65, 0x36, 0xf0, 0xf2, 0xf3]);
/** ins, outs, movs, cmps, stos, lods, scas (byte and word/dword/qword forms). */
const STRING_OPCODES = new Set([0x6c, 0x6d, 0x6e, 0x6f, 0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf]);
/** The longest x86 instruction: reading this many bytes from rip always covers one. */
export const MAX_INSTRUCTION_BYTES = 15;

/** True when the instruction at the start of `code` can execute and leave rip unchanged (see above). */
export function canRepeatInPlace(code: Uint8Array): boolean {
  let i = 0;
  let rep = false;
  while (i < code.length && i < MAX_INSTRUCTION_BYTES && LEGACY_PREFIXES.has(code[i]!)) {
    if (code[i] === 0xf2 || code[i] === 0xf3) rep = true;
    i++;
  }
  // A REX prefix (40-4f) only counts right before the opcode, which is where it is looked for.
  if (i < code.length && (code[i]! & 0xf0) === 0x40) i++;
  if (i >= code.length) return false;
  const op = code[i]!;
  if (STRING_OPCODES.has(op)) return rep;
  // Short forms: opcode, rel8. jmp (eb), jcc (70-7f), loopne/loope/loop/jrcxz (e0-e3).
  if (op === 0xeb || (op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3)) {
    return i + 1 < code.length && signed8(code[i + 1]!) === -(i + 2);
  }
  // Near forms: jmp/call rel32 (e9, e8), jcc rel32 (0f 80-8f). A 66 prefix does not shorten these in
  // 64-bit mode on Intel, and no compiler emits it; rel32 is assumed.
  if (op === 0xe9 || op === 0xe8) return i + 4 < code.length && readI32(code, i + 1) === -(i + 5);
  if (op === 0x0f && i + 1 < code.length && (code[i + 1]! & 0xf0) === 0x80) {
    return i + 5 < code.length && readI32(code, i + 2) === -(i + 6);
  }
  return false;
}

function signed8(b: number): number {
  return b >= 0x80 ? b - 0x100 : b;
}

function readI32(code: Uint8Array, at: number): number {
  return (code[at]! | (code[at + 1]! << 8) | (code[at + 2]! << 16) | (code[at + 3]! << 24)) | 0;
}
