/**
 * KVM ioctl request numbers, capabilities, exit reasons and guest-debug flags, named as in
 * <linux/kvm.h> (checked against the 6.1 uapi headers; see docs/kvm-facts.md).
 * Example: KVM_RUN = _IO(KVMIO=0xAE, 0x80) = 0xAE80.
 */

// System ioctls (on the /dev/kvm fd).
export const KVM_GET_API_VERSION = 0xae00;
export const KVM_CREATE_VM = 0xae01;
export const KVM_CHECK_EXTENSION = 0xae03;
export const KVM_GET_VCPU_MMAP_SIZE = 0xae04;
export const KVM_GET_SUPPORTED_CPUID = 0xc008ae05;

// VM ioctls.
export const KVM_CREATE_VCPU = 0xae41;
export const KVM_SET_USER_MEMORY_REGION = 0x4020ae46;
export const KVM_SET_TSS_ADDR = 0xae47;
export const KVM_SET_IDENTITY_MAP_ADDR = 0x4008ae48;
export const KVM_CREATE_IRQCHIP = 0xae60;
export const KVM_IRQ_LINE = 0x4008ae61;
export const KVM_CREATE_PIT2 = 0x4040ae77;

// vCPU ioctls.
export const KVM_RUN = 0xae80;
export const KVM_GET_REGS = 0x8090ae81;
export const KVM_SET_REGS = 0x4090ae82;
export const KVM_GET_SREGS = 0x8138ae83;
export const KVM_SET_SREGS = 0x4138ae84;
export const KVM_GET_MSRS = 0xc008ae88;
export const KVM_SET_MSRS = 0x4008ae89;
export const KVM_SET_FPU = 0x41a0ae8d;
export const KVM_SET_CPUID2 = 0x4008ae90;
export const KVM_SET_GUEST_DEBUG = 0x4048ae9b;
/** _IOR(KVMIO, 0x98, struct kvm_mp_state) and _IOW(KVMIO, 0x99, ...): one __u32 mp_state. */
export const KVM_GET_MP_STATE = 0x8004ae98;
export const KVM_SET_MP_STATE = 0x4004ae99;
/** _IO(KVMIO, 0xa3): the vCPU's TSC frequency in kHz, as the ioctl's return value (KVM_CAP_GET_TSC_KHZ). */
export const KVM_GET_TSC_KHZ = 0xaea3;

/** kvm_mp_state.mp_state values used here: running, or halted in HLT waiting for an interrupt. */
export const KVM_MP_STATE_RUNNABLE = 0;
export const KVM_MP_STATE_HALTED = 3;

/** The API version every KVM since 2.6.22 reports. */
export const KVM_API_VERSION = 12;

// Capabilities (KVM_CHECK_EXTENSION arguments).
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_SET_TSS_ADDR = 4;
export const KVM_CAP_EXT_CPUID = 7;
export const KVM_CAP_SET_GUEST_DEBUG = 23;
export const KVM_CAP_PIT2 = 33;
export const KVM_CAP_SET_IDENTITY_MAP_ADDR = 37;
export const KVM_CAP_SYNC_REGS = 74;
export const KVM_CAP_IMMEDIATE_EXIT = 136;
export const KVM_CAP_SET_GUEST_DEBUG2 = 195;

// Exit reasons (kvm_run.exit_reason).
export const KVM_EXIT_UNKNOWN = 0;
export const KVM_EXIT_EXCEPTION = 1;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HYPERCALL = 3;
export const KVM_EXIT_DEBUG = 4;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_IRQ_WINDOW_OPEN = 7;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_SYSTEM_EVENT = 24;

export const EXIT_REASON_NAMES: Record<number, string> = {
  0: 'UNKNOWN', 1: 'EXCEPTION', 2: 'IO', 3: 'HYPERCALL', 4: 'DEBUG', 5: 'HLT', 6: 'MMIO', 7: 'IRQ_WINDOW_OPEN',
  8: 'SHUTDOWN', 9: 'FAIL_ENTRY', 10: 'INTR', 17: 'INTERNAL_ERROR', 24: 'SYSTEM_EVENT',
};

// kvm_run.io.direction.
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

// kvm_run.system_event.type.
export const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
export const KVM_SYSTEM_EVENT_RESET = 2;
export const KVM_SYSTEM_EVENT_CRASH = 3;

// kvm_guest_debug.control.
export const KVM_GUESTDBG_ENABLE = 0x1;
export const KVM_GUESTDBG_SINGLESTEP = 0x2;
export const KVM_GUESTDBG_BLOCKIRQ = 0x100000;
export const KVM_GUESTDBG_USE_HW_BP = 0x20000;

// kvm_run.kvm_valid_regs / kvm_dirty_regs bits (x86 sync regs).
export const KVM_SYNC_X86_REGS = 0x1;
