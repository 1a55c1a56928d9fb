/**
 * What to do with a vCPU exit: a pure function from a decoded exit (the parts of kvm_run that matter)
 * to "continue" or "stop with a reason", with port I/O going to the PortBus. Testable without /dev/kvm
 * (test/exits.test.ts); the run loop decodes kvm_run into an Exit with decodeExit().
 *
 * Single-step DEBUG exits do not come here: the run loop handles them inline, as they are 99.9% of exits.
 */
import type { PortBus } from '../../devices/bus.js';
import * as K from '../../kvm/ioctls.js';
import { RUN } from '../../kvm/structs.js';

export interface IoExit {
  /** 0 = in (guest reads), 1 = out. */
  direction: number;
  /** Bytes per access: 1, 2 or 4. */
  size: number;
  port: number;
  /** Accesses (more than 1 for rep ins/outs). */
  count: number;
  /** count * size bytes: the values written (out), or where to put the values read (in). */
  data: Uint8Array;
}

export interface Exit {
  reason: number;
  io?: IoExit;
  mmio?: { physAddr: bigint; data: Uint8Array; len: number; isWrite: boolean };
  debug?: { pc: bigint; exception: number };
  internal?: { suberror: number; data: bigint[] };
  failEntry?: { hardwareReason: bigint };
  systemEvent?: { type: number };
}

export type { StopReason } from '../../output/profile.js';
import type { StopReason } from '../../output/profile.js';

export type ExitAction = { kind: 'continue' } | { kind: 'stop'; reason: StopReason; detail: string };

export { FAILURE_REASONS } from '../../output/profile.js';

export interface ExitContext {
  bus: PortBus;
  /** True once the guest asked for a reset (the i8042 device sets it). */
  resetRequested(): boolean;
}

const CONTINUE: ExitAction = { kind: 'continue' };

/** Internal-error suberrors (<linux/kvm.h> KVM_INTERNAL_ERROR_*). */
const SUBERRORS: Record<number, string> = {
  1: 'emulation failure',
  2: 'simultaneous exceptions',
  3: 'delivery event failed',
  4: 'unexpected exit reason',
};

export function handleExit(exit: Exit, ctx: ExitContext): ExitAction {
  switch (exit.reason) {
    case K.KVM_EXIT_IO: {
      const io = exit.io!;
      portIo(io, ctx.bus);
      if (ctx.resetRequested()) return { kind: 'stop', reason: 'reset', detail: `i8042 reset (out 0x${io.port.toString(16)})` };
      return CONTINUE;
    }
    case K.KVM_EXIT_MMIO: {
      // No MMIO devices: reads float high like unclaimed ports, writes are dropped.
      const m = exit.mmio!;
      if (!m.isWrite) m.data.fill(0xff, 0, m.len);
      return CONTINUE;
    }
    case K.KVM_EXIT_DEBUG:
    case K.KVM_EXIT_INTR:
    case K.KVM_EXIT_IRQ_WINDOW_OPEN:
      return CONTINUE;
    case K.KVM_EXIT_HLT:
      return { kind: 'stop', reason: 'halt', detail: 'HLT with interrupts off' };
    case K.KVM_EXIT_SHUTDOWN:
      return { kind: 'stop', reason: 'shutdown', detail: 'triple fault (KVM_EXIT_SHUTDOWN)' };
    case K.KVM_EXIT_SYSTEM_EVENT: {
      const t = exit.systemEvent?.type ?? 0;
      if (t === K.KVM_SYSTEM_EVENT_RESET) return { kind: 'stop', reason: 'reset', detail: 'system event: reset' };
      if (t === K.KVM_SYSTEM_EVENT_SHUTDOWN) return { kind: 'stop', reason: 'shutdown', detail: 'system event: shutdown' };
      return { kind: 'stop', reason: 'system-event', detail: `system event type ${t}` };
    }
    case K.KVM_EXIT_INTERNAL_ERROR: {
      const i = exit.internal ?? { suberror: 0, data: [] };
      const what = SUBERRORS[i.suberror] ?? `suberror ${i.suberror}`;
      const data = i.data.length ? ` [${i.data.map((d) => '0x' + d.toString(16)).join(', ')}]` : '';
      return { kind: 'stop', reason: 'internal-error', detail: `KVM internal error: ${what}${data}` };
    }
    case K.KVM_EXIT_FAIL_ENTRY: {
      const r = exit.failEntry?.hardwareReason ?? 0n;
      return { kind: 'stop', reason: 'fail-entry', detail: `VM entry failed, hardware reason 0x${r.toString(16)}` };
    }
    default: {
      const name = K.EXIT_REASON_NAMES[exit.reason] ?? String(exit.reason);
      return { kind: 'stop', reason: 'unhandled-exit', detail: `unhandled exit KVM_EXIT_${name} (${exit.reason})` };
    }
  }
}

/** Carry out a port access: each of `count` values goes to or comes from the bus, little-endian. */
export function portIo(io: IoExit, bus: PortBus): void {
  const { size, port, count, data } = io;
  for (let i = 0; i < count; i++) {
    const off = i * size;
    if (io.direction === K.KVM_EXIT_IO_OUT) {
      let v = 0;
      for (let b = size - 1; b >= 0; b--) v = v * 256 + data[off + b]!;
      bus.write(port, size, v);
    } else {
      let v = bus.read(port, size);
      for (let b = 0; b < size; b++) {
        data[off + b] = v & 0xff;
        v = Math.floor(v / 256);
      }
    }
  }
}

/** Decode kvm_run (a DataView and byte view over the same page) into an Exit. */
export function decodeExit(run: DataView, bytes: Uint8Array): Exit {
  const reason = run.getUint32(RUN.exitReason, true);
  const exit: Exit = { reason };
  switch (reason) {
    case K.KVM_EXIT_IO: {
      const size = run.getUint8(RUN.ioSize);
      const count = run.getUint32(RUN.ioCount, true);
      const off = Number(run.getBigUint64(RUN.ioDataOffset, true));
      exit.io = {
        direction: run.getUint8(RUN.ioDirection),
        size,
        port: run.getUint16(RUN.ioPort, true),
        count,
        data: bytes.subarray(off, off + size * count),
      };
      break;
    }
    case K.KVM_EXIT_MMIO:
      exit.mmio = {
        physAddr: run.getBigUint64(RUN.mmioPhysAddr, true),
        data: bytes.subarray(RUN.mmioData, RUN.mmioData + 8),
        len: run.getUint32(RUN.mmioLen, true),
        isWrite: run.getUint8(RUN.mmioIsWrite) !== 0,
      };
      break;
    case K.KVM_EXIT_DEBUG:
      exit.debug = { pc: run.getBigUint64(RUN.debugPc, true), exception: run.getUint32(RUN.debugException, true) };
      break;
    case K.KVM_EXIT_INTERNAL_ERROR: {
      const n = Math.min(run.getUint32(RUN.internalNdata, true), 16);
      const data: bigint[] = [];
      for (let i = 0; i < n; i++) data.push(run.getBigUint64(RUN.internalData + 8 * i, true));
      exit.internal = { suberror: run.getUint32(RUN.internalSuberror, true), data };
      break;
    }
    case K.KVM_EXIT_FAIL_ENTRY:
      exit.failEntry = { hardwareReason: run.getBigUint64(RUN.failEntryReason, true) };
      break;
    case K.KVM_EXIT_SYSTEM_EVENT:
      exit.systemEvent = { type: run.getUint32(RUN.systemEventType, true) };
      break;
  }
  return exit;
}
