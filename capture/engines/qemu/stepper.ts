/**
 * The stepper: the few things the step loop (step-loop.ts) needs from whatever executes the guest one
 * instruction at a time. GdbStepper is QEMU's gdbstub behind it; tests drive the same loop through a fake
 * stub (test/gdb-stub-fixture.ts) or a scripted Stepper.
 */
import { GdbClosedError, GdbTimeoutError, hexLe, type GdbRemote } from './gdb-remote.js';
import { canRepeatInPlace, MAX_INSTRUCTION_BYTES } from './repeat-in-place.js';

export type StepAnswer =
  /** One instruction ran (or the stub says so); `pc` is rip now. */
  | { kind: 'stepped'; pc: bigint }
  /** The guest ended (QEMU's W/X reply: power-off, reset under -no-reboot). */
  | { kind: 'ended'; raw: string }
  /** The step did not complete within its deadline: rip where it waits (null: unreadable), and whether an HLT is there. */
  | { kind: 'stuck'; pc: bigint | null; atHlt: boolean };

export interface Stepper {
  /** rip now. */
  pc(): Promise<bigint>;
  /** Execute one instruction, waiting at most `timeoutMs`. */
  step(timeoutMs: number): Promise<StepAnswer>;
  /** Whether the step that brought rip to `pc` from `previous` executed something (gets a trace line). */
  keep(pc: bigint, previous: bigint): Promise<boolean>;
}

const HLT = 0xf4;
/**
 * More no-progress steps in a row than this at one rip, and the instruction does repeat in a way its
 * bytes do not show (an indirect jump to itself): its lines are kept from then on, so the trace shows
 * the loop instead of running silently to the timeout. QEMU's no-progress answers come one at a time.
 */
export const MAX_NO_PROGRESS_IN_A_ROW = 16;

/** QEMU's gdbstub as a Stepper: `vCont;s` (or `s`), rip from the stop reply when it carries it, else `p`. */
export class GdbStepper implements Stepper {
  /** Stop replies that carried rip (no `p` needed). */
  inlineRips = 0;
  private readonly repeats: RepeatFilter;

  constructor(private readonly gdb: GdbRemote, private readonly rip: number, private readonly stepPacket: string) {
    this.repeats = new RepeatFilter(gdb);
  }

  pc(): Promise<bigint> {
    return this.gdb.readRegister(this.rip);
  }

  async step(timeoutMs: number): Promise<StepAnswer> {
    let stop;
    try {
      stop = await this.gdb.resume(this.stepPacket, timeoutMs);
    } catch (err) {
      if (!(err instanceof GdbTimeoutError)) throw err;
      // The instruction never finished: interrupt, and name what it was waiting in.
      this.gdb.interrupt();
      await this.gdb.nextPacket(2000).catch(() => '');
      const at = await this.gdb.readRegister(this.rip).catch(() => null);
      const byte = at === null ? -1 : await this.gdb.readMemory(at, 1).then((b) => b[0], () => -1);
      return { kind: 'stuck', pc: at, atHlt: byte === HLT };
    }
    if (stop.kind === 'W' || stop.kind === 'X') return { kind: 'ended', raw: stop.raw };
    const inline = stop.registers.get(this.rip);
    if (inline !== undefined) {
      this.inlineRips++;
      return { kind: 'stepped', pc: hexLe(inline) };
    }
    try {
      return { kind: 'stepped', pc: await this.gdb.readRegister(this.rip) };
    } catch (err) {
      // QEMU answers a register read with W when the guest ended under -no-reboot.
      if (err instanceof GdbClosedError) return { kind: 'ended', raw: err.message };
      throw err;
    }
  }

  keep(pc: bigint, previous: bigint): Promise<boolean> {
    return this.repeats.keep(pc, previous);
  }
}

/**
 * Tells a real step from one QEMU 7.2's gdbstub answered without executing anything (it does so a few
 * times per 50 000 steps, at any instruction). A step that leaves rip where it was is real only when the
 * instruction there can repeat in place (canRepeatInPlace: a rep-prefixed string instruction, a jump to
 * itself). The bytes are read with `m` once per distinct address (code is assumed not to change under
 * the same rip during a capture) and only for repeats, so ordinary steps cost nothing.
 */
export class RepeatFilter {
  private readonly verdicts = new Map<bigint, boolean>();
  private inARow = 0;

  constructor(private readonly gdb: Pick<GdbRemote, 'readMemoryUpTo'>) {}

  /** Whether the step that brought rip to `pc` (from `previous`) gets a trace line. */
  async keep(pc: bigint, previous: bigint): Promise<boolean> {
    if (pc !== previous) {
      this.inARow = 0;
      return true;
    }
    let verdict = this.verdicts.get(pc);
    if (verdict === undefined) {
      const code = await this.gdb.readMemoryUpTo(pc, MAX_INSTRUCTION_BYTES);
      // Unreadable code: keep the line rather than guess.
      verdict = code.length === 0 || canRepeatInPlace(code);
      this.verdicts.set(pc, verdict);
    }
    if (verdict) return true;
    return ++this.inARow > MAX_NO_PROGRESS_IN_A_ROW;
  }
}
