import { describe, expect, it } from 'vitest';
import { PortBus } from '../capture/devices/bus.js';
import { I8042 } from '../capture/devices/i8042.js';
import { Serial8250 } from '../capture/devices/serial.js';
import { decodeExit, handleExit, type Exit, type ExitContext } from '../capture/engines/kvm/exits.js';
import * as K from '../capture/kvm/ioctls.js';
import { RUN } from '../capture/kvm/structs.js';

/** A PC with COM1 and the i8042, recording what the guest sent. */
function machine(): { ctx: ExitContext; sent: number[] } {
  const sent: number[] = [];
  let reset = false;
  const bus = new PortBus();
  bus.register(0x3f8, 8, new Serial8250({ onByte: (b) => sent.push(b), setIrq: () => {} }), 'serial');
  bus.register(0x60, 5, new I8042({ onReset: () => (reset = true) }), 'i8042');
  return { ctx: { bus, resetRequested: () => reset }, sent };
}

const io = (direction: number, port: number, bytes: number[], size = 1): Exit => ({
  reason: K.KVM_EXIT_IO,
  io: { direction, size, port, count: bytes.length / size, data: Uint8Array.from(bytes) },
});

describe('handleExit', () => {
  it('sends OUT bytes to the UART and goes on', () => {
    const { ctx, sent } = machine();
    expect(handleExit(io(K.KVM_EXIT_IO_OUT, 0x3f8, [0x41]), ctx)).toEqual({ kind: 'continue' });
    // rep outsb: three accesses in one exit
    expect(handleExit(io(K.KVM_EXIT_IO_OUT, 0x3f8, [0x62, 0x63, 0x0a]), ctx).kind).toBe('continue');
    expect(Buffer.from(sent).toString('latin1')).toBe('Abc\n');
  });

  it('answers IN from the device: LSR says transmitter empty, unclaimed ports float high', () => {
    const { ctx } = machine();
    const lsr = io(K.KVM_EXIT_IO_IN, 0x3fd, [0]);
    handleExit(lsr, ctx);
    expect(lsr.io!.data[0]).toBe(0x60);
    const word = io(K.KVM_EXIT_IO_IN, 0x1234, [0, 0], 2);
    handleExit(word, ctx);
    expect([...word.io!.data]).toEqual([0xff, 0xff]);
  });

  it('stops with reset when the guest writes 0xFE to the i8042 command port', () => {
    const { ctx } = machine();
    expect(handleExit(io(K.KVM_EXIT_IO_OUT, 0x64, [0xaa]), ctx).kind).toBe('continue');
    const a = handleExit(io(K.KVM_EXIT_IO_OUT, 0x64, [0xfe]), ctx);
    expect(a).toMatchObject({ kind: 'stop', reason: 'reset' });
  });

  it('maps the ending exits to stop reasons', () => {
    const { ctx } = machine();
    expect(handleExit({ reason: K.KVM_EXIT_SHUTDOWN }, ctx)).toMatchObject({ kind: 'stop', reason: 'shutdown' });
    expect(handleExit({ reason: K.KVM_EXIT_HLT }, ctx)).toMatchObject({ kind: 'stop', reason: 'halt' });
    expect(handleExit({ reason: K.KVM_EXIT_SYSTEM_EVENT, systemEvent: { type: K.KVM_SYSTEM_EVENT_RESET } }, ctx)).toMatchObject({ reason: 'reset' });
    const internal = handleExit({ reason: K.KVM_EXIT_INTERNAL_ERROR, internal: { suberror: 1, data: [0x12n] } }, ctx);
    expect(internal).toMatchObject({ kind: 'stop', reason: 'internal-error' });
    expect(internal.kind === 'stop' && internal.detail).toBe('KVM internal error: emulation failure [0x12]');
    const fail = handleExit({ reason: K.KVM_EXIT_FAIL_ENTRY, failEntry: { hardwareReason: 0x80000021n } }, ctx);
    expect(fail.kind === 'stop' && fail.detail).toContain('0x80000021');
    const odd = handleExit({ reason: K.KVM_EXIT_HYPERCALL }, ctx);
    expect(odd).toMatchObject({ kind: 'stop', reason: 'unhandled-exit' });
    expect(odd.kind === 'stop' && odd.detail).toContain('KVM_EXIT_HYPERCALL');
  });

  it('goes on after DEBUG, INTR and MMIO exits; MMIO reads float high', () => {
    const { ctx } = machine();
    expect(handleExit({ reason: K.KVM_EXIT_DEBUG, debug: { pc: 0x1000n, exception: 1 } }, ctx).kind).toBe('continue');
    expect(handleExit({ reason: K.KVM_EXIT_INTR }, ctx).kind).toBe('continue');
    const data = new Uint8Array(8);
    expect(handleExit({ reason: K.KVM_EXIT_MMIO, mmio: { physAddr: 0xfee00000n, data, len: 4, isWrite: false } }, ctx).kind).toBe('continue');
    expect([...data]).toEqual([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  });
});

describe('decodeExit', () => {
  it('reads an IO exit and its data from a kvm_run page', () => {
    const page = new Uint8Array(4096);
    const dv = new DataView(page.buffer);
    dv.setUint32(RUN.exitReason, K.KVM_EXIT_IO, true);
    dv.setUint8(RUN.ioDirection, K.KVM_EXIT_IO_OUT);
    dv.setUint8(RUN.ioSize, 1);
    dv.setUint16(RUN.ioPort, 0x3f8, true);
    dv.setUint32(RUN.ioCount, 2, true);
    dv.setBigUint64(RUN.ioDataOffset, 0x1000n - 16n, true);
    page.set([0x68, 0x69], 4096 - 16);
    const e = decodeExit(dv, page);
    expect(e.io).toMatchObject({ direction: 1, size: 1, port: 0x3f8, count: 2 });
    expect([...e.io!.data]).toEqual([0x68, 0x69]);
    // An IN writes its answer into the page itself, where KVM reads it.
    const { ctx } = machine();
    dv.setUint8(RUN.ioDirection, K.KVM_EXIT_IO_IN);
    dv.setUint16(RUN.ioPort, 0x3fd, true);
    handleExit(decodeExit(dv, page), ctx);
    expect([...page.subarray(4096 - 16, 4096 - 14)]).toEqual([0x60, 0x60]);
  });

  it('reads debug and internal-error exits', () => {
    const page = new Uint8Array(4096);
    const dv = new DataView(page.buffer);
    dv.setUint32(RUN.exitReason, K.KVM_EXIT_DEBUG, true);
    dv.setUint32(RUN.debugException, 1, true);
    dv.setBigUint64(RUN.debugPc, 0xffffffff81000010n, true);
    expect(decodeExit(dv, page).debug).toEqual({ pc: 0xffffffff81000010n, exception: 1 });
    dv.setUint32(RUN.exitReason, K.KVM_EXIT_INTERNAL_ERROR, true);
    dv.setUint32(RUN.internalSuberror, 1, true);
    dv.setUint32(RUN.internalNdata, 2, true);
    dv.setBigUint64(RUN.internalData, 5n, true);
    dv.setBigUint64(RUN.internalData + 8, 6n, true);
    expect(decodeExit(dv, page).internal).toEqual({ suberror: 1, data: [5n, 6n] });
  });
});
