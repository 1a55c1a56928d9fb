/**
 * Model-specific registers set at boot (KVM_SET_MSRS), Firecracker's list. Only IA32_MISC_ENABLE
 * matters for Linux to boot; the rest put the syscall/sysenter MSRs and the TSC into a known zero state
 * so that runs are repeatable.
 */

export interface MsrEntry {
  index: number;
  data: bigint;
}

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_SYSCALL_MASK = 0xc0000084;
export const MSR_KERNEL_GS_BASE = 0xc0000102;

/** IA32_MISC_ENABLE bit 0: fast-strings enable (rep movs/stos in cache-line chunks). */
export const MISC_ENABLE_FAST_STRING = 1n;

export function bootMsrs(): MsrEntry[] {
  return [
    // Fast strings on, as firmware leaves it: Linux warns and its string routines' checks assume it.
    { index: MSR_IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    // 32-bit sysenter entry point: unused by a 64-bit kernel until it sets it; zero = no stale host value.
    { index: MSR_IA32_SYSENTER_CS, data: 0n },
    { index: MSR_IA32_SYSENTER_ESP, data: 0n },
    { index: MSR_IA32_SYSENTER_EIP, data: 0n },
    // syscall entry (STAR, LSTAR, CSTAR, SFMASK): the kernel programs them in syscall_init(); zero until then.
    { index: MSR_STAR, data: 0n },
    { index: MSR_LSTAR, data: 0n },
    { index: MSR_CSTAR, data: 0n },
    { index: MSR_SYSCALL_MASK, data: 0n },
    // swapgs partner: zero so the first swapgs cannot pick up garbage.
    { index: MSR_KERNEL_GS_BASE, data: 0n },
    // TSC starts at 0 at VM creation, so guest timestamps count from boot.
    { index: MSR_IA32_TSC, data: 0n },
  ];
}
