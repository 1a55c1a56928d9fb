/**
 * The CPUID the guest sees: KVM_GET_SUPPORTED_CPUID's table, edited for a single-vCPU VM on the
 * software-backed KVM of these machines (docs/kvm-facts.md#the-software-backed-kvm-of-the-ci-machines), then given to KVM_SET_CPUID2 — without that
 * call the guest gets no long mode at all.
 *
 * Caveat measured here: not every change made through KVM_SET_CPUID2 reaches the guest on PVM, so the
 * default command line also carries `noxsave`; the filter is still right for hardware KVM.
 */

/** One struct kvm_cpuid_entry2. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

// Leaf 1 ECX.
const L1_ECX_FMA = 1 << 12;
const L1_ECX_CMPXCHG16B = 1 << 13;
const L1_ECX_XSAVE = 1 << 26;
const L1_ECX_OSXSAVE = 1 << 27;
const L1_ECX_AVX = 1 << 28;
const L1_ECX_F16C = 1 << 29;
const L1_ECX_HYPERVISOR = 1 << 31;
const L1_ECX_VMX = 1 << 5;
// Leaf 1 EDX.
const L1_EDX_HTT = 1 << 28;
// Leaf 7 subleaf 0 EBX: AVX2 and the AVX-512 family, all VEX/EVEX state that lives in XSAVE areas.
const L7_EBX_XSAVE_DEPENDENT =
  (1 << 5) | (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 30) | (1 << 31);
// Leaf 7 subleaf 0 ECX: AVX512_VBMI(1), VBMI2(6), GFNI-VEX needs AVX too but GFNI itself is SSE: kept;
// VAES(9), VPCLMULQDQ(10), VNNI(11), BITALG(12), VPOPCNTDQ(14).
const L7_ECX_XSAVE_DEPENDENT = (1 << 1) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 14);
// Leaf 7 subleaf 0 EDX: AVX512_4VNNIW(2), 4FMAPS(3), VP2INTERSECT(8), AMX-BF16(22), AVX512_FP16(23), AMX-TILE(24), AMX-INT8(25).
const L7_EDX_XSAVE_DEPENDENT = (1 << 2) | (1 << 3) | (1 << 8) | (1 << 22) | (1 << 23) | (1 << 24) | (1 << 25);
// Leaf 7 subleaf 1 EAX: AVX-VNNI(4), AVX512_BF16(5).
const L7_1_EAX_XSAVE_DEPENDENT = (1 << 4) | (1 << 5);

/** What filterCpuid knows of the vCPU beyond the table. */
export interface CpuidFacts {
  /** The vCPU's TSC frequency in kHz (KVM_GET_TSC_KHZ); null or absent when unknown. */
  tscKhz?: number | null;
}

/**
 * Return an edited copy of `entries` (the input is not changed). Every edit says why. Throws nothing.
 * Leaf 0x16 (processor frequency, Intel SDM vol. 2A, CPUID) is Intel's; KVM's table carries it zeroed on
 * AMD hosts, and Linux reads it on Intel only (arch/x86/kernel/tsc.c cpu_khz_from_cpuid).
 */
export function filterCpuid(entries: readonly CpuidEntry[], facts: CpuidFacts = {}): CpuidEntry[] {
  return entries.map((orig) => {
    const e = { ...orig };
    switch (e.function) {
      case 0x1:
        // Hypervisor present (ECX bit 31): Linux then trusts CPUID leaf 0x40000000 and skips checks meant for bare metal.
        e.ecx |= L1_ECX_HYPERVISOR;
        // CMPXCHG16B: PVM cannot emulate `lock cmpxchg16b` (emulation failure: docs/kvm-facts.md);
        // with the bit clear the kernel's alternatives use the fallback code.
        e.ecx &= ~L1_ECX_CMPXCHG16B;
        // XSAVE/OSXSAVE: xsave/xrstor cannot be emulated here (emulation failure at xrstor). Without XSAVE,
        // AVX, FMA and F16C (whose register state only XSAVE can manage) must go too, or the kernel would
        // use AVX state it cannot save.
        e.ecx &= ~(L1_ECX_XSAVE | L1_ECX_OSXSAVE | L1_ECX_AVX | L1_ECX_FMA | L1_ECX_F16C);
        // No nested virtualisation is offered; hiding VMX keeps the guest from probing it.
        e.ecx &= ~L1_ECX_VMX;
        // Initial APIC id (EBX[31:24]) = 0 and one logical processor (EBX[23:16] = 1, no HTT): one vCPU,
        // whatever host CPU the table was taken from.
        e.ebx = (e.ebx & 0x0000ffff) | (1 << 16);
        e.edx &= ~L1_EDX_HTT;
        break;
      case 0x4:
        // Deterministic cache parameters: EAX[31:26] = cores per package - 1 and EAX[25:14] = threads
        // sharing this cache - 1: both 0 for a single vCPU, so the topology code sees one CPU.
        e.eax &= 0x00003fff;
        break;
      case 0x7:
        if (e.index === 0) {
          // AVX2/AVX-512/AMX need XSAVE-managed state, which was hidden above.
          e.ebx &= ~L7_EBX_XSAVE_DEPENDENT;
          e.ecx &= ~L7_ECX_XSAVE_DEPENDENT;
          e.edx &= ~L7_EDX_XSAVE_DEPENDENT;
        } else if (e.index === 1) {
          e.eax &= ~L7_1_EAX_XSAVE_DEPENDENT;
        }
        break;
      case 0xb:
      case 0x1f:
        // Extended topology: EDX is the x2APIC id of this CPU, which must match the initial APIC id 0.
        e.edx = 0;
        break;
      case 0xd:
        // XSAVE state enumeration means nothing without XSAVE; all zero says "no XSAVE features".
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0x16:
        // Base frequency in MHz (EAX), where the host's table leaves it 0 (unknown): the TSC's, as KVM runs it.
        // A guest that times itself by the TSC (the demo guest's BOOT_TIME markers) then reads the same
        // frequency whatever the host CPU's vendor; with 0 it could only guess.
        if (e.eax === 0 && facts.tscKhz) e.eax = Math.round(facts.tscKhz / 1000);
        break;
    }
    // Keep every register an unsigned 32-bit value (the bit operations above yield signed ones).
    e.eax >>>= 0;
    e.ebx >>>= 0;
    e.ecx >>>= 0;
    e.edx >>>= 0;
    return e;
  });
}
