/**
 * The koffi bindings against the real /dev/kvm: capabilities, CPUID, memory regions, register round
 * trips, and failed ioctls named in their error (`KVM_SET_USER_MEMORY_REGION failed: EINVAL`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KvmError, KvmSystem, REQUIRED_CAPS, type KvmVm } from '../capture/kvm/kvm.js';
import * as K from '../capture/kvm/ioctls.js';
import { SREGS } from '../capture/kvm/structs.js';
import { UserError } from '../src/errors.js';
import { kvmMissing } from './capture-helpers.js';
import { describeNeeds } from './preconditions.js';

const missing = kvmMissing();

describe('KvmSystem.open without a device', () => {
  it('is a one-line UserError naming the path', () => {
    expect(() => KvmSystem.open('/nonexistent/kvm')).toThrow(UserError);
    expect(() => KvmSystem.open('/nonexistent/kvm')).toThrow('/nonexistent/kvm: no such device (is the kvm module loaded?)');
  });
});

describeNeeds(missing, 'KVM bindings (/dev/kvm)', () => {
  const open: { close(): void }[] = [];
  afterEach(() => {
    for (const o of open.splice(0).reverse()) o.close();
  });
  const system = (): KvmSystem => {
    const s = KvmSystem.open();
    open.push(s);
    return s;
  };
  const vm = (s: KvmSystem): KvmVm => {
    const v = s.createVm();
    open.push(v);
    return v;
  };

  it('has every capability the VMM requires, and single-step support in the debug mask', () => {
    const s = system();
    expect(() => s.requireCapabilities()).not.toThrow();
    for (const [cap] of REQUIRED_CAPS) expect(s.checkExtension(cap)).toBeGreaterThan(0);
    expect(s.vcpuMmapSize()).toBeGreaterThanOrEqual(4096);
    const mask = s.checkExtension(K.KVM_CAP_SET_GUEST_DEBUG2);
    if (mask > 0) expect(mask & K.KVM_GUESTDBG_SINGLESTEP).toBe(K.KVM_GUESTDBG_SINGLESTEP);
  });

  it('names a capability KVM lacks', () => {
    expect(() => system().requireCapabilities([[999_999, 'KVM_CAP_MADE_UP']])).toThrow(/KVM lacks KVM_CAP_MADE_UP/);
  });

  it('reads the supported CPUID table (growing the buffer on E2BIG)', () => {
    const cpuid = system().supportedCpuid();
    expect(cpuid.length).toBeGreaterThan(10);
    const leaf0 = cpuid.find((e) => e.function === 0)!;
    const vendor = Buffer.alloc(12);
    vendor.writeUInt32LE(leaf0.ebx, 0);
    vendor.writeUInt32LE(leaf0.edx, 4);
    vendor.writeUInt32LE(leaf0.ecx, 8);
    expect(vendor.toString('latin1')).toMatch(/^[\x20-\x7e]{12}$/);
  });

  it('maps guest memory once and shows it without copies', () => {
    const v = vm(system());
    const mem = v.addMemory(0, 0, 4 << 20);
    expect(mem.size).toBe(4 << 20);
    mem.view(0x1000, 0x1000)[0x234] = 0xab;
    expect(mem.byteAt(0x1234)).toBe(0xab);
    mem.write(0x3ffffe, Buffer.from([1, 2]));
    expect([...mem.view(0x3ffffc, 4)]).toEqual([0, 0, 1, 2]);
    expect(() => mem.write(0x3fffff, Buffer.from([1, 2]))).toThrow(RangeError);
  });

  it('names the ioctl and errno of a failure', () => {
    const v = vm(system());
    // A region whose size is not a multiple of the page size is refused.
    let err: unknown;
    try {
      v.addMemory(0, 0, 4096 + 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KvmError);
    expect((err as Error).message).toBe('KVM_SET_USER_MEMORY_REGION failed: EINVAL');
  });

  it('round-trips special and general registers of a vCPU', () => {
    const v = vm(system());
    v.setTssAddr(0xfffbd000);
    v.createIrqchip();
    const vcpu = v.createVcpu(0);
    open.push({ close: () => (vcpu.close(), vcpu.unmapRun()) });
    const sregs = vcpu.getSregs();
    sregs.writeBigUInt64LE(0x9000n, SREGS.cr3);
    vcpu.setSregs(sregs);
    expect(vcpu.getSregs().readBigUInt64LE(SREGS.cr3)).toBe(0x9000n);
    const regs = vcpu.getRegs();
    regs.rip = 0x123456n;
    regs.rsi = 0x7000n;
    vcpu.setRegs(regs);
    expect(vcpu.getRegs()).toMatchObject({ rip: 0x123456n, rsi: 0x7000n });
  });
});
