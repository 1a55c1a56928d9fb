/**
 * The QEMU step engine's loop (capture/engines/qemu/step-loop.ts) over its gdbstub stepper
 * (capture/engines/qemu/stepper.ts), driven by the fake stub of test/gdb-stub-fixture.ts: lines per
 * instruction, the step limit, steps that executed nothing, a guest that ends, a step that never completes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GdbRemote } from '../capture/engines/qemu/gdb-remote.js';
import { stepLoop, type StepLoopOptions } from '../capture/engines/qemu/step-loop.js';
import { GdbStepper, MAX_NO_PROGRESS_IN_A_ROW } from '../capture/engines/qemu/stepper.js';
import { startStub, type Stub } from './gdb-stub-fixture.js';

const START = 0xffffffff81000000n;

describe('step loop over the gdbstub stepper (fake stub)', () => {
  let stub: Stub | undefined;
  let gdb: GdbRemote | undefined;
  afterEach(async () => {
    gdb?.close();
    await new Promise((r) => stub?.server.close(r));
  });

  async function setup(): Promise<{ stepper: GdbStepper; lines: bigint[]; opts: StepLoopOptions }> {
    stub = await startStub();
    stub.rip = START;
    gdb = await GdbRemote.connect({ host: '127.0.0.1', port: stub.port }, { timeoutMs: 2000, requestTimeoutMs: 2000 });
    await gdb.supported();
    const rip = (await gdb.registerNumber('rip'))!;
    const lines: bigint[] = [];
    const opts: StepLoopOptions = {
      maxSteps: 10, clock: 'steps', now: () => 0, stepTimeoutMs: 300, aborted: () => false, sstepFlags: 7,
      trace: { event: (t, _d, hi, lo) => lines.push((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)) },
    };
    return { stepper: new GdbStepper(gdb, rip, 'vCont;s'), lines, opts };
  }

  it('one line per instruction, the first where stepping began, up to --max-steps', async () => {
    const { stepper, lines, opts } = await setup();
    const r = await stepLoop(stepper, opts);
    expect(r.stop).toEqual({ reason: 'max-steps', detail: '--max-steps 10 reached' });
    expect(r.steps).toBe(10);
    expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => START + 3n * BigInt(i)));
    expect(r.lastRip).toBe(START + 27n);
    // 9 steps, each a vCont;s and a p (the stub's stop replies carry no rip)
    expect(stub!.received.filter((p) => p === 'vCont;s').length).toBe(9);
  });

  it('takes rip from the stop reply when it carries one', async () => {
    const { stepper, lines, opts } = await setup();
    stub!.inlineRip = true;
    await stepLoop(stepper, opts);
    expect(lines.length).toBe(10);
    expect(stepper.inlineRips).toBe(9);
    expect(stub!.received.filter((p) => p === 'p2').length).toBe(1); // only the first pc
  });

  it('a step that leaves rip at an instruction that cannot repeat gets no line', async () => {
    const { stepper, lines, opts } = await setup();
    stub!.memoryBase = START;
    stub!.memory = Buffer.alloc(64, 0x90); // nop: never repeats in place
    stub!.stallSteps = 2;
    const r = await stepLoop(stepper, opts);
    expect(r.noProgress).toBe(2);
    expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => START + 3n * BigInt(i)));
  });

  it('a rep string instruction repeating in place keeps its lines', async () => {
    const { stepper, lines, opts } = await setup();
    stub!.memoryBase = START;
    stub!.memory = Buffer.concat([Buffer.from([0xf3, 0xab]), Buffer.alloc(62, 0x90)]); // rep stos at START
    stub!.stallSteps = 3;
    const r = await stepLoop(stepper, opts);
    expect(r.noProgress).toBe(0);
    expect(lines.slice(0, 5)).toEqual([START, START, START, START, START + 3n]);
  });

  it(`a jump to itself is traced again after ${MAX_NO_PROGRESS_IN_A_ROW} silent repeats`, async () => {
    const { stepper, lines, opts } = await setup();
    stub!.memoryBase = START;
    stub!.memory = Buffer.alloc(64, 0x90);
    stub!.stallSteps = 1000;
    const r = await stepLoop(stepper, { ...opts, maxSteps: 4 });
    expect(r.noProgress).toBe(MAX_NO_PROGRESS_IN_A_ROW);
    expect(lines).toEqual([START, START, START, START]);
  });

  it('the guest ending mid-stepping ends the loop with what was traced', async () => {
    const { stepper, lines, opts } = await setup();
    stub!.exitAt = START + 12n;
    const r = await stepLoop(stepper, { ...opts, maxSteps: 100 });
    expect(r.stop).toBeNull();
    expect(r.ended).toMatch(/^W00/);
    expect(lines.length).toBe(5);
  });

  it('a step that never completes at a HLT stops with reason halt, naming the flags', async () => {
    const { stepper, lines, opts } = await setup();
    stub!.memoryBase = START;
    stub!.memory = Buffer.from([0xf4, 0x90, 0x90]);
    stub!.hangSteps = true;
    const r = await stepLoop(stepper, opts);
    expect(r.stop?.reason).toBe('halt');
    expect(r.stop?.detail).toMatch(/^HLT at step 1 did not complete within 300 ms \(interrupts masked while stepping: Qqemu.sstep=7\)$/);
    expect(r.lastRip).toBe(START);
    expect(lines).toEqual([START]);
  });

  it('a stuck step elsewhere is a timeout; an abort ends the loop before the next step', async () => {
    const { stepper, opts } = await setup();
    stub!.memoryBase = START;
    stub!.memory = Buffer.alloc(16, 0x90);
    stub!.hangSteps = true;
    const r = await stepLoop(stepper, opts);
    expect(r.stop).toEqual({ reason: 'timeout', detail: 'step 1 did not complete within 300 ms' });
    stub!.hangSteps = false;
    let n = 0;
    const r2 = await stepLoop(stepper, { ...opts, aborted: () => ++n > 3 });
    expect(r2.stop).toBeNull();
    expect(r2.steps).toBe(4);
  });
});
