/**
 * Call stacks rebuilt from a single-step trace, which records where the CPU was, not calls and returns.
 * The heuristics (docs/call-stacks.md has the reasoning and the failure cases):
 *   - a line in the top frame's function continues it;
 *   - a function entered at offset 0 is called (push), also from itself (recursion: f+N then f+0);
 *   - a line at offset > 0 in a function already on the stack returns to it (pop to its innermost frame);
 *   - a line at offset > 0 in a function not on the stack replaces the top frame (a tail call, a jump, or a
 *     return to a caller whose entry the trace never showed);
 *   - interrupt and exception entries (asm_*, exc_*, entry_*, *_interrupt, page_fault, ...) are pushed at any
 *     offset: a single-step trap can land after the handler's first instruction;
 *   - user-space addresses are one frame, [user]; a user line with no [user] frame on the stack pushes
 *     one on top of the kernel stack that got there; syscalls, faults and interrupts nest under it;
 *   - bare kernel addresses ([unresolved], e.g. module code) are pushed unless already on the stack;
 *   - the kernel's speculative-execution thunks (KERNEL_THUNK: __x86_return_thunk, __x86_indirect_thunk_*,
 *     srso_*, ...) are folded into the frame that entered them: their lines are that frame's time and
 *     never push or pop, so an indirect call through a thunk nests its target under the real caller;
 *   - a trace with no offsets at all (until the first "+ N" line) cannot tell a call from a return, so
 *     there a function already on the stack is a return to it and any other is a call;
 *   - the stack never grows past maxDepth: beyond it the top frame is replaced (counted);
 *   - task switches (x86-64 Linux, arch/x86/entry/entry_64.S): each task has its own stack. The switch
 *     code (__switch_to_asm, __switch_to) stays on the outgoing task's stack; the first line after it that
 *     is not a call from it ends the switch: the outgoing stack (below __switch_to_asm) is parked, and
 *     the incoming task gets a fresh root, either ret_from_fork/ret_from_fork_asm (a new task) or the
 *     function it resumes in (normally __schedule). When that fresh root returns into a caller not on the
 *     stack, the most recently parked stack with that caller right below the root's function is resumed
 *     (its frames reopen; not counted as calls). Only with offsets (a return needs one).
 *
 * Time: line i's stack gets t(i+1) - t(i) (negative steps count as zero, as in hot-functions), so the
 * self time of a stack's top function equals hot-functions' self time for it. The clock used for frame
 * open/close times is the first timestamp plus the sum of forward steps.
 */
import { UNRESOLVED, USER, type FunctionTable } from '../src/trace/functions.js';
import type { TraceVisitor } from '../src/trace/parser.js';
import { ROOT, StackTrie } from './stack-trie.js';

/** Receives frames as the reconstruction opens and closes them (exports stream from here). */
export interface StackListener {
  /** A frame of `fn` opened at `t`, `depth` frames below it. */
  open(fn: number, t: number, depth: number): void;
  /** The frame of `fn` opened at `start` closed at `end`. Inner frames close before outer ones. */
  close(fn: number, start: number, end: number, depth: number): void;
}

export interface CallStackOptions {
  /** Deepest stack kept (default 512; kernel stacks are 16 KiB, so real depths stay far below). */
  maxDepth?: number;
  /** 'auto' (default): offsets are trusted once a line with "+ N" has been seen. */
  offsets?: 'auto' | 'yes' | 'no';
  listener?: StackListener;
  /** 'fold' (default): thunk lines (KERNEL_THUNK) belong to the frame that entered them; 'keep': plain functions. */
  thunks?: 'fold' | 'keep';
}

/** Names of interrupt and exception entry points, old (2016) and new (5.8+, asm_/exc_/sysvec_) kernels. */
export const INTERRUPT_ENTRY =
  /^(?:asm_|exc_|entry_|sysvec_)|_interrupt$|^(?:page_fault|async_page_fault|general_protection|divide_error|invalid_op|double_fault|machine_check|nmi|int3|debug|irq_entries_start|spurious_entries_start|common_interrupt|error_entry|paranoid_entry)$/;

/**
 * The x86 kernel's speculative-execution mitigation thunks, which compilers and alternatives patching put
 * in place of `ret`, `call *%reg` and `jmp *%reg` (arch/x86/lib/retpoline.S, arch/x86/include/asm/nospec-branch.h;
 * docs/call-stacks.md lists them with the kernel versions that have them):
 *   - return thunks, a `jmp` in place of `ret`: __x86_return_thunk (5.19+, retbleed), retbleed_return_thunk,
 *     srso_return_thunk, srso_alias_return_thunk with srso_safe_ret/srso_alias_safe_ret (6.5+, SRSO),
 *     its_return_thunk (ITS, 2025), call_depth_return_thunk/__x86_return_skl (6.2+, call depth tracking);
 *   - retpolines, `call`/`jmp` through a register: __x86_indirect_thunk_<reg> and the block they live in,
 *     __x86_indirect_thunk_array (4.15+), __x86_indirect_call_thunk_<reg>/__x86_indirect_jump_thunk_<reg>
 *     (6.2+), __x86_indirect_its_thunk_<reg>/_array (ITS), __x86_indirect_alt_call_<reg>/_alt_jmp_<reg> (5.16);
 *   - return-stack untraining on kernel entry: entry_untrain_ret, zen_untrain_ret, retbleed_untrain_ret,
 *     srso_untrain_ret, srso_alias_untrain_ret.
 * Not thunks in this sense: preempt_schedule_thunk and friends (they save registers and call a C
 * function: real calls), __efi64_thunk (a mode switch), __fentry__ (ftrace's hook: a real call, often `ret`).
 */
export const KERNEL_THUNK =
  /^(?:__x86_indirect_(?:thunk|call_thunk|jump_thunk|its_thunk|alt_call|alt_jmp)_\w+|__x86_return_thunk|__x86_return_skl|call_depth_return_thunk|its_return_thunk|(?:retbleed|srso|srso_alias)_return_thunk|(?:srso|srso_alias)_safe_ret|(?:entry|zen|retbleed|srso|srso_alias)_untrain_ret)$/;

/** What the reconstruction did, for docs, tests and a warning when a guess was forced. */
export interface StackCounts {
  calls: number;
  returns: number;
  /** Tail calls, jumps and returns to unseen callers: the top frame was replaced. */
  replaced: number;
  /** Interrupt/exception entries pushed at a non-zero offset. */
  interruptsMidEntry: number;
  /** A user-space line with no [user] frame on the stack: [user] was pushed on the kernel stack. */
  userEntries: number;
  /** Pushes refused by maxDepth (the top frame was replaced instead). */
  depthLimited: number;
  maxDepthSeen: number;
  /** Lines in a kernel thunk, folded into the frame that entered it. */
  thunkLines: number;
  /** Task switches seen (a line leaving __switch_to_asm/__switch_to for another task). */
  switches: number;
  /** Switches into a new task (ret_from_fork, ret_from_fork_asm). */
  newTasks: number;
  /** Returns of a resumed task matched to a parked stack (the rest start from the function they return to). */
  resumed: number;
}

/** Where the x86-64 kernel leaves one task's stack for another's (arch/x86/entry/entry_64.S, arch/x86/kernel/process_64.c). */
export const SWITCH_ENTRY = '__switch_to_asm';
/** The switch code: it runs on behalf of the outgoing task until the incoming one returns or starts. */
export const SWITCH_CODE = /^(?:__switch_to_asm|__switch_to)$/;
/** Where a new task's first instruction runs (5.x: ret_from_fork; 6.8+: ret_from_fork_asm). */
export const TASK_START = /^(?:ret_from_fork|ret_from_fork_asm)$/;
/** Parked stacks kept (tasks that exited never resume; the oldest parked stack is dropped beyond this). */
const MAX_PARKED = 4096;

/** Whether two candidates have the same frames from their matched frame down to the root. */
function sameBelow(a: { frames: Int32Array; at: number }, b: { frames: Int32Array; at: number }): boolean {
  if (a.at !== b.at) return false;
  for (let i = 0; i <= a.at; i++) if (a.frames[i] !== b.frames[i]) return false;
  return true;
}

const NORMAL = 0, INTERRUPT = 1, THUNK = 2, SWITCH = 3, START = 4;

export class CallStacks implements TraceVisitor {
  readonly trie = new StackTrie();
  readonly counts: StackCounts = { calls: 0, returns: 0, replaced: 0, interruptsMidEntry: 0, userEntries: 0, depthLimited: 0, maxDepthSeen: 0, thunkLines: 0, switches: 0, newTasks: 0, resumed: 0 };
  /** Inclusive time per function id (time with it anywhere on the stack, once per recursion). */
  inclusive = new Float64Array(1024);
  /** Calls per function id (frames opened). */
  callCount = new Float64Array(1024);
  /** First and last clock values: the span the stacks cover. */
  start = NaN;
  clock = 0;

  private readonly maxDepth: number;
  private readonly listener: StackListener | undefined;
  private offsetsTrusted: boolean;
  private readonly offsetsMode: 'auto' | 'yes' | 'no';
  private readonly foldThunks: boolean;
  /** The stack: function, trie node and open time per frame. */
  private stackFn: Int32Array;
  private stackNode: Int32Array;
  private stackOpen: Float64Array;
  private depth = 0;
  /** Frames of each function on the stack now (recursion counts once for inclusive time). */
  private onStack = new Int32Array(1024);
  private kind = new Uint8Array(0);
  private classified = 0;
  private prevT = NaN;
  private prevOffset = -1;
  private finished = false;
  /** Index of the __switch_to_asm frame while a switch runs, else -1. */
  private switchAt = -1;
  /** The root frame is a resumed task whose callers are not known yet (match a parked stack on return). */
  private orphan = false;
  /** Stacks of tasks switched out, as function ids outermost first, most recent last. */
  private readonly parked: Int32Array[] = [];
  /** While orphan: parked stacks matching the returns seen so far, `at` = index of the root's function. */
  private candidates: { frames: Int32Array; at: number }[] = [];

  constructor(private readonly functions: FunctionTable, options: CallStackOptions = {}) {
    this.maxDepth = Math.max(1, options.maxDepth ?? 512);
    this.listener = options.listener;
    this.offsetsMode = options.offsets ?? 'auto';
    this.offsetsTrusted = this.offsetsMode === 'yes';
    this.foldThunks = (options.thunks ?? 'fold') === 'fold';
    this.stackFn = new Int32Array(this.maxDepth);
    this.stackNode = new Int32Array(this.maxDepth);
    this.stackOpen = new Float64Array(this.maxDepth);
  }

  event(t: number, fn: number, offset: number): void {
    if (fn >= this.classified) this.classify();
    if (this.depth === 0 && Number.isNaN(this.start)) {
      this.start = this.clock = t;
    } else {
      const dt = t - this.prevT;
      if (dt > 0) {
        // The previous line's stack was current until now.
        this.trie.self[this.stackNode[this.depth - 1]!]! += dt;
        this.clock += dt;
      }
    }
    this.prevT = t;
    if (this.kind[fn] === THUNK && this.depth > 0) {
      // The thunk stands for one instruction of its caller (a ret, an indirect call or jump): the stack
      // and the previous offset stay as they were, so the next line reads as if the thunk was not there.
      this.counts.thunkLines++;
      return;
    }
    if (offset > 0 && !this.offsetsTrusted && this.offsetsMode === 'auto') this.offsetsTrusted = true;
    this.step(fn, offset);
    this.prevOffset = offset;
  }

  /** Closes every open frame at the last timestamp. Call once, after the last event. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.popTo(0);
  }

  /** The function ids on the stack now, outermost first (for tests). */
  stack(): number[] {
    return Array.from(this.stackFn.subarray(0, this.depth));
  }

  get names(): string[] {
    return this.functions.names;
  }

  private step(fn: number, offset: number): void {
    const depth = this.depth;
    if (depth === 0) return this.push(fn);
    const top = this.stackFn[depth - 1]!;
    const trusted = this.offsetsTrusted;
    if (this.kind[fn] === START && offset === 0 && fn !== top) return this.newTask(fn);
    if (this.switchAt >= 0 && trusted && offset > 0 && fn !== top && this.kind[fn] !== INTERRUPT && !this.inSwitch(fn)) {
      // Not a call from the switch code, not a return into it: the incoming task returns into where it
      // was switched out (normally __schedule), on its own stack.
      const outgoing = this.park();
      this.popTo(0);
      this.push(fn);
      return this.startOrphan(fn, outgoing);
    }
    if (this.orphan && depth === 1 && trusted && offset > 0 && this.kind[fn] !== THUNK && this.onStack[fn] === 0) {
      // A resumed task whose callers are not known yet returns past its root: narrow the parked stacks it
      // may be. Its calls (finish_task_switch, ...) nest under the root meanwhile.
      return this.orphanReturn(fn);
    }

    if (fn === top) {
      // Recursion shows as an entry (offset 0) right after a line elsewhere in the same function.
      if (trusted && offset === 0 && this.prevOffset > 0) this.push(fn);
      return;
    }
    if (fn === USER) {
      if (this.onStack[USER]! > 0) return this.returnTo(USER);
      // User code with no [user] frame below: nest it on the kernel stack that got there (a return to
      // user mode, or a guest calling its user code); a later line in a kernel frame below returns past it.
      this.counts.userEntries++;
      return this.push(USER);
    }
    const below = this.onStack[fn]! > 0;
    if (offset < 0) return below ? this.returnTo(fn) : this.push(fn); // [unresolved]: no offset to go by
    if (this.kind[fn] === INTERRUPT && !below) {
      if (offset > 0) this.counts.interruptsMidEntry++;
      return this.push(fn);
    }
    if (!trusted) return below ? this.returnTo(fn) : this.push(fn);
    if (offset === 0) return this.push(fn);
    if (below) return this.returnTo(fn);
    this.counts.replaced++;
    this.popTo(depth - 1);
    this.push(fn);
  }

  private push(fn: number, counted = true): void {
    const depth = this.depth;
    if (depth === this.maxDepth) {
      this.counts.depthLimited++;
      this.popTo(depth - 1);
      return this.push(fn);
    }
    if (fn >= this.onStack.length) this.grow(fn);
    const parent = depth > 0 ? this.stackNode[depth - 1]! : ROOT;
    const node = this.trie.child(parent, fn);
    if (counted) {
      this.trie.calls[node]!++;
      this.callCount[fn]!++;
    }
    this.onStack[fn]!++;
    this.stackFn[depth] = fn;
    this.stackNode[depth] = node;
    this.stackOpen[depth] = this.clock;
    this.depth = depth + 1;
    if (depth > 0 && counted) this.counts.calls++;
    if (this.kind[fn] === SWITCH && this.switchAt < 0) this.switchAt = depth;
    if (this.depth > this.counts.maxDepthSeen) this.counts.maxDepthSeen = this.depth;
    this.listener?.open(fn, this.clock, depth);
  }

  /** Pops to the innermost frame of fn (which is on the stack). */
  private returnTo(fn: number): void {
    let d = this.depth - 1;
    while (this.stackFn[d] !== fn) d--;
    this.counts.returns++;
    this.popTo(d + 1);
  }

  /** Closes frames until `depth` remain. */
  private popTo(depth: number): void {
    const now = this.clock;
    if (this.switchAt >= depth) this.switchAt = -1;
    while (this.depth > depth) {
      const d = --this.depth;
      const fn = this.stackFn[d]!;
      const opened = this.stackOpen[d]!;
      // Only the outermost frame of a recursive function adds inclusive time.
      if (--this.onStack[fn]! === 0) this.inclusive[fn]! += now - opened;
      this.listener?.close(fn, opened, now, d);
    }
  }

  /** Whether fn is the switch code or a function it called (on the stack above __switch_to_asm). */
  private inSwitch(fn: number): boolean {
    for (let d = this.switchAt; d < this.depth; d++) if (this.stackFn[d] === fn) return true;
    return false;
  }

  /** Parks the outgoing task's stack (the frames below __switch_to_asm) and counts the switch. */
  private park(): Int32Array | undefined {
    this.counts.switches++;
    if (this.switchAt <= 0) return undefined;
    const frames = this.stackFn.slice(0, this.switchAt);
    this.parked.push(frames);
    if (this.parked.length > MAX_PARKED) this.parked.shift();
    return frames;
  }

  /** A new task starts at ret_from_fork: the outgoing stack (if a switch ran) is parked, fn is a fresh root. */
  private newTask(fn: number): void {
    if (this.switchAt >= 0) this.park();
    this.counts.newTasks++;
    this.popTo(0);
    this.orphan = false;
    this.candidates = [];
    this.push(fn);
  }

  /**
   * Parked stacks the orphan root may belong to: those that end with its function (see orphanReturn),
   * except the outgoing task's, parked by this very switch (a task never switches to itself).
   */
  private startOrphan(fn: number, outgoing: Int32Array | undefined): void {
    this.orphan = true;
    this.candidates = [];
    for (const frames of this.parked) if (frames !== outgoing && frames[frames.length - 1] === fn) this.candidates.push({ frames, at: frames.length - 1 });
  }

  /**
   * The orphan root returns into fn, a function not on the stack. Keep the parked stacks whose frame
   * below the matched ones is fn; one left: resume it (its frames up to fn reopen, not counted as calls);
   * none: the task is unknown (switched out before the trace or through a path not seen), fn replaces the
   * root as rule 4 does; several: fn replaces the root and the next return narrows them further.
   */
  private orphanReturn(fn: number): void {
    const kept: { frames: Int32Array; at: number }[] = [];
    for (const c of this.candidates) if (c.at >= 1 && c.frames[c.at - 1] === fn) kept.push({ frames: c.frames, at: c.at - 1 });
    this.candidates = kept;
    // One left, or several with the same frames below (idle workers parked alike): the picture is the same.
    if (kept.length === 1 || (kept.length > 1 && kept.every((c) => sameBelow(c, kept[0]!)))) return this.resume();
    if (kept.length === 0) this.orphan = false;
    this.counts.replaced++;
    this.popTo(0);
    this.push(fn);
  }

  /** Resumes the most recently parked candidate: its frames up to the matched one reopen. */
  private resume(): void {
    const c = this.candidates[this.candidates.length - 1]!;
    this.parked.splice(this.parked.lastIndexOf(c.frames), 1);
    this.candidates = [];
    this.orphan = false;
    this.counts.resumed++;
    this.counts.returns++;
    this.popTo(0);
    for (let d = 0; d <= c.at; d++) this.push(c.frames[d]!, false);
  }

  private grow(fn: number): void {
    const size = Math.max(fn + 1, this.onStack.length * 2);
    const onStack = new Int32Array(size); onStack.set(this.onStack); this.onStack = onStack;
    const inclusive = new Float64Array(size); inclusive.set(this.inclusive); this.inclusive = inclusive;
    const callCount = new Float64Array(size); callCount.set(this.callCount); this.callCount = callCount;
  }

  /** Classifies function ids interned since the last call (the reader interns names as it meets them). */
  private classify(): void {
    const names = this.functions.names;
    if (names.length > this.kind.length) {
      const kind = new Uint8Array(Math.max(names.length, this.kind.length * 2, 64));
      kind.set(this.kind);
      this.kind = kind;
    }
    for (let id = this.classified; id < names.length; id++) {
      const name = names[id]!;
      this.kind[id] = id <= UNRESOLVED ? NORMAL : INTERRUPT_ENTRY.test(name) ? INTERRUPT : this.foldThunks && KERNEL_THUNK.test(name) ? THUNK
        : name === SWITCH_ENTRY ? SWITCH : TASK_START.test(name) ? START : NORMAL;
    }
    this.classified = names.length;
    if (names.length > this.onStack.length) this.grow(names.length);
  }
}
