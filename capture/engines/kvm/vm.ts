/**
 * The VM builder: a straight-line recipe of small attach_* steps, each timed into a boot-profile phase
 * (kvm_open, vm_create, memory, kernel_load, rootfs_load, boot_params, vcpu_setup) like the Rust VMM's
 * boot profiler. The result is a vCPU about to execute the kernel's 64-bit entry with RSI = zero page.
 */
import { readFileSync } from 'node:fs';
import { messageOf, UserError } from '../../../src/errors.js';
import { cmdlineLimit, encodeCmdline } from '../../boot/cmdline.js';
import { filterCpuid } from '../../boot/cpuid.js';
import { CR0_ENTRY, CR4_ENTRY, EFER_ENTRY, GDT_TABLE, IDT_TABLE, RFLAGS_ENTRY, entrySegments, gdtBytes } from '../../boot/gdt.js';
import { checkFits, loadKernelImage, type KernelImage } from '../../boot/kernel-image.js';
import { bootMsrs } from '../../boot/msrs.js';
import { writeIdentityPageTables } from '../../boot/page-tables.js';
import { buildZeroPage, DEFAULT_INITRD_ADDR_MAX, e820Map, placeInitrd } from '../../boot/zero-page.js';
import { KvmSystem, type GuestMemory, type KvmVcpu, type KvmVm } from '../../kvm/kvm.js';
import { readKernelInPlace, sniffKernel } from '../../kernel-reader.js';
import { REGS_SIZE, SREGS, decodeRegs, segmentOffset, writeDtable, writeSegment } from '../../kvm/structs.js';
import {
  BOOT_STACK_ADDR,
  CMDLINE_ADDR,
  CMDLINE_MAX_SIZE,
  GDT_ADDR,
  IDENTITY_MAP_ADDR,
  MIB,
  PAGE_TABLES_END,
  TSS_ADDR,
  ZERO_PAGE_ADDR,
} from '../../layout.js';

/** x87 control word after FNINIT (all exceptions masked, 64-bit precision, round to nearest). */
export const FPU_FCW_RESET = 0x37f;
/** MXCSR at reset: all SSE exceptions masked. */
export const MXCSR_RESET = 0x1f80;

export interface VmOptions {
  kernelPath: string;
  memoryMiB: number;
  cmdline: string;
  initrdPath?: string;
}

/** Host microseconds per phase, in the order the recipe runs them. */
export type Phases = Record<string, number>;

export interface BuiltVm {
  system: KvmSystem;
  vm: KvmVm;
  vcpu: KvmVcpu;
  mem: GuestMemory;
  image: KernelImage;
  /** Encoded command line without its NUL, as the guest sees it. */
  cmdline: string;
  initrd?: { addr: number; size: number };
  phases: Phases;
  /** performance.now() (ms) right after KVM_CREATE_VM: time zero of traces and console.log. */
  t0Ms: number;
  /** Release everything (vCPU, VM, memory, device fd). */
  close(): void;
}

/** Runs `fn` and adds its duration to `phases[name]` (microseconds). */
function timed<T>(phases: Phases, name: string, fn: () => T): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    phases[name] = (phases[name] ?? 0) + (performance.now() - start) * 1000;
  }
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UserError(`${path}: cannot read ${what} (${messageOf(err)})`);
  }
}

export function buildVm(o: VmOptions): BuiltVm {
  const phases: Phases = {};
  const memBytes = o.memoryMiB * MIB;
  // Input checks first, so bad input fails before any KVM state exists (and without /dev/kvm). Reading
  // and parsing count as kernel_load / rootfs_load, like the copies into guest memory later.
  if (!Number.isInteger(o.memoryMiB) || o.memoryMiB <= 0) throw new UserError(`--memory ${o.memoryMiB}: give a whole number of MiB`);
  const e820 = e820Map(memBytes);
  // A bzImage is read in place into guest RAM once it exists (kernel-reader.ts); anything else now.
  const kfile = timed(phases, 'kernel_load', () => sniffKernel(o.kernelPath, memBytes));
  let image: KernelImage | undefined;
  if (kfile.directGpa === undefined) {
    image = timed(phases, 'kernel_load', () => loadKernelImage(readInput(o.kernelPath, 'kernel'), o.kernelPath));
    checkFits(image, memBytes, o.kernelPath);
    encodeCmdline(o.cmdline, cmdlineLimit(CMDLINE_MAX_SIZE, image.bzImage?.cmdlineSize));
  }
  const initrdBuf = timed(phases, 'rootfs_load', () => (o.initrdPath !== undefined ? readInput(o.initrdPath, 'initrd') : undefined));

  const system = timed(phases, 'kvm_open', () => {
    const s = KvmSystem.open();
    try {
      s.requireCapabilities();
    } catch (err) {
      s.close();
      throw err;
    }
    return s;
  });
  const cleanups: (() => void)[] = [() => system.close()];
  const close = (): void => {
    for (const c of cleanups.splice(0).reverse()) c();
  };
  try {
    const vm = timed(phases, 'vm_create', () => system.createVm());
    cleanups.push(() => vm.close());
    const t0Ms = performance.now();
    // Guest RAM before KVM's private TSS/identity-map slots: registered after them, the slot costs an
    // extra ~6 ms here (measured: 0.6 ms first vs 6-10 ms last).
    const mem = timed(phases, 'memory', () => vm.addMemory(0, 0, memBytes));
    timed(phases, 'vm_create', () => attachPcDevices(vm));
    if (image) timed(phases, 'kernel_load', () => attachKernel(mem, image!));
    else {
      image = timed(phases, 'kernel_load', () => loadKernelImage(readKernelInPlace(kfile, mem, kfile.directGpa!), o.kernelPath));
      checkFits(image, memBytes, o.kernelPath);
    }
    const img = image;
    const cmdBytes = encodeCmdline(o.cmdline, cmdlineLimit(CMDLINE_MAX_SIZE, img.bzImage?.cmdlineSize));
    let initrd: { addr: number; size: number } | undefined;
    timed(phases, 'rootfs_load', () => {
      if (initrdBuf) initrd = attachInitrd(mem, initrdBuf, img, memBytes);
    });
    const cr3 = timed(phases, 'boot_params', () => attachBootParams(mem, img, cmdBytes, e820, initrd));
    const vcpu = timed(phases, 'vcpu_setup', () => attachVcpu(system, vm, img, cr3));
    cleanups.push(() => vcpu.close());
    const built: BuiltVm = {
      system, vm, vcpu, mem, image, phases, t0Ms, close,
      cmdline: cmdBytes.subarray(0, cmdBytes.length - 1).toString('utf8'),
    };
    if (initrd) built.initrd = initrd;
    return built;
  } catch (err) {
    close();
    throw err;
  }
}

/** The VM-wide pieces a PC needs before any vCPU exists (counted in the vm_create phase). */
export function attachPcDevices(vm: KvmVm): void {
  vm.setTssAddr(TSS_ADDR);
  vm.setIdentityMapAddr(IDENTITY_MAP_ADDR);
  vm.createIrqchip();
  vm.createPit2();
}

/** Copy the kernel's segments to their guest-physical addresses (the rest of a segment's memsz stays 0). */
export function attachKernel(mem: GuestMemory, image: KernelImage): void {
  for (const s of image.segments) mem.write(s.gpa, s.data);
}

export function attachInitrd(mem: GuestMemory, data: Buffer, image: KernelImage, memBytes: number): { addr: number; size: number } {
  const max = image.bzImage?.initrdAddrMax ?? DEFAULT_INITRD_ADDR_MAX;
  const addr = placeInitrd(data.length, memBytes, max, image.highestAddress);
  mem.write(addr, data);
  return { addr, size: data.length };
}

/** GDT, identity page tables, command line and zero page in low memory; returns the CR3 of the tables. */
export function attachBootParams(
  mem: GuestMemory,
  image: KernelImage,
  cmdline: Buffer,
  e820: ReturnType<typeof e820Map>,
  initrd?: { addr: number; size: number },
): number {
  mem.write(GDT_ADDR, gdtBytes());
  const cr3 = writeIdentityPageTables(mem.view(0, PAGE_TABLES_END));
  mem.write(CMDLINE_ADDR, cmdline);
  const zp = buildZeroPage({
    ...(image.setupHeader ? { setupHeader: image.setupHeader } : {}),
    cmdlineAddr: CMDLINE_ADDR,
    cmdlineSize: cmdline.length,
    ...(initrd ? { initrd } : {}),
    e820,
  });
  mem.write(ZERO_PAGE_ADDR, zp);
  return cr3;
}

/** Create vCPU 0 and put it in the 64-bit boot-protocol entry state. */
export function attachVcpu(system: KvmSystem, vm: KvmVm, image: KernelImage, cr3: number): KvmVcpu {
  const vcpu = vm.createVcpu(0);
  try {
    vcpu.setCpuid2(filterCpuid(system.supportedCpuid(), { tscKhz: vcpu.getTscKhz() }));
    vcpu.setMsrs(bootMsrs());
    vcpu.setFpu(FPU_FCW_RESET, MXCSR_RESET);

    // Start from KVM's own sregs so TR and LDT stay valid, and edit the rest.
    const sregs = vcpu.getSregs();
    const segs = entrySegments();
    for (const name of ['cs', 'ds', 'es', 'fs', 'gs', 'ss'] as const) writeSegment(sregs, segmentOffset(name), segs[name]);
    writeDtable(sregs, SREGS.gdt, GDT_TABLE);
    writeDtable(sregs, SREGS.idt, IDT_TABLE);
    sregs.writeBigUInt64LE(BigInt(CR0_ENTRY), SREGS.cr0);
    sregs.writeBigUInt64LE(BigInt(cr3), SREGS.cr3);
    sregs.writeBigUInt64LE(BigInt(CR4_ENTRY), SREGS.cr4);
    sregs.writeBigUInt64LE(BigInt(EFER_ENTRY), SREGS.efer);
    vcpu.setSregs(sregs);

    const regs = decodeRegs(Buffer.alloc(REGS_SIZE));
    regs.rip = BigInt(image.entry);
    regs.rsi = BigInt(ZERO_PAGE_ADDR);
    regs.rsp = BigInt(BOOT_STACK_ADDR);
    regs.rbp = BigInt(BOOT_STACK_ADDR);
    regs.rflags = BigInt(RFLAGS_ENTRY);
    vcpu.setRegs(regs);
  } catch (err) {
    vcpu.close();
    throw err;
  }
  return vcpu;
}
