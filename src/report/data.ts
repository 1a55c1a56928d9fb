/**
 * Everything `boot-trace report` shows, gathered in one pass over the trace (hot functions, stacks,
 * system calls, first calls) and one over the console (stages, initcalls, UART cost, markers), plus
 * profile.json. Each part is optional: a capture without a trace still has a timeline, a bare trace
 * still has its flame graph and tables.
 */
import { basename } from 'node:path';
import { CallStacks } from '../../analyzers/call-stacks.js';
import { FirstCalls, type FirstCallRow } from '../../analyzers/first-calls.js';
import { HotFunctions, type HotFunctionRow } from '../../analyzers/hot-functions.js';
import { inclusiveByName } from '../../analyzers/inclusive.js';
import { Initcalls, type InitcallRow, type InitcallSummary } from '../../analyzers/initcalls.js';
import { Stages, type StageRow } from '../../analyzers/stages.js';
import { Syscalls, type SyscallRow, type SyscallSummaryRow } from '../../analyzers/syscalls.js';
import { UartCost, type UartRow } from '../../analyzers/uart.js';
import type { ConsoleLine, ConsoleMessage, ConsoleVisitor } from '../../analyzers/console-lines.js';
import { UserError } from '../errors.js';
import { findCaptureFiles as captureFiles, readCaptureConsole } from '../../capture/output/folder.js';
import { readProfile, type Profile } from '../../capture/output/profile.js';
import { hostPhases, type HostPhase } from '../export/capture-files.js';
import { readConsoleEvents, type ConsoleEvents } from '../export/console-events.js';
import { UNRESOLVED, USER } from '../trace/functions.js';
import { readTrace, type ReadOptions } from '../trace/reader.js';
import { clockOf, readTraceHeader, type Clock } from '../output/clock.js';

/** First calls shown as milestones unless --milestone is given: the boot's landmarks in a kernel. */
export const DEFAULT_MILESTONES = [
  '^start_kernel$', '^setup_arch$', '^mm_init$', '^rest_init$', '^kernel_init$', '^do_initcalls$', '^do_basic_setup$',
  '^prepare_namespace$', '^free_initmem$', '^run_init_process$', '^kernel_execve$', '^ext4_fill_super$', '^ext4_',
  '^machine_restart$', '^kernel_power_off$',
  // The demo guest's landmarks (samples/guest).
  '^guest_main$', '^work_small$', '^work_medium$', '^work_nested$', '^run_user$',
];

export interface ReportOptions extends ReadOptions {
  milestones?: RegExp[];
  /** Rows in the hot-functions table. */
  top?: number;
}

export interface TraceData {
  path: string;
  lines: number;
  events: number;
  start: number;
  end: number;
  hot: Array<HotFunctionRow & { inclusive_us: number }>;
  syscalls: SyscallRow[];
  syscallSummary: SyscallSummaryRow[];
  milestones: FirstCallRow[];
  /** First user-space instruction after the first named kernel function (earlier bare addresses are boot code). */
  firstUser: number | null;
  stacks: CallStacks;
  names: string[];
}

export interface ConsoleData {
  path: string;
  events: ConsoleEvents;
  stages: StageRow[];
  initcalls: InitcallRow[];
  initcallSummary: InitcallSummary;
  uart: UartRow | { error: string };
}

export interface ReportData {
  title: string;
  dir: string;
  profile?: Profile;
  phases: HostPhase[];
  trace?: TraceData;
  console?: ConsoleData;
  /** The trace's timestamps are instruction counts (profile.clock 'steps'), not host microseconds. */
  stepClock: boolean;
  /** What the trace's and the console's times mean (src/output/clock.ts). */
  clock: { trace: Clock; console: Clock };
}

export async function gatherReport(input: string, o: ReportOptions = {}): Promise<ReportData> {
  const files = captureFiles(input);
  if (!files.trace && !files.console && !files.profile) {
    throw new UserError(`${input}: nothing to report (no trace.log, console.log or profile.json)`);
  }
  const profile = files.profile ? readProfile(files.profile) : undefined;
  const data: ReportData = {
    title: `Boot report: ${basename(files.trace && !files.console && !files.profile ? files.trace : files.dir === '.' ? process.cwd() : files.dir)}`,
    dir: files.dir,
    profile,
    phases: profile ? hostPhases(profile) : [],
    stepClock: false,
    clock: {
      trace: clockOf({ header: files.trace ? readTraceHeader(files.trace) : [], profile }),
      console: clockOf({ profile, of: 'console' }),
    },
  };
  data.stepClock = data.clock.trace.unit !== 'us';
  if (files.trace) data.trace = await gatherTrace(files.trace, o);
  if (files.console) data.console = await gatherConsole(files.console);
  return data;
}

async function gatherTrace(path: string, o: ReportOptions): Promise<TraceData> {
  const hot = new HotFunctions();
  const first = new FirstCalls();
  let stacks: CallStacks | undefined;
  let syscalls: Syscalls | undefined;
  let firstUser: number | null = null;
  let kernelSeen = false;
  const result = await readTrace(path, (functions) => {
    const s = (stacks = new CallStacks(functions));
    const sys = (syscalls = new Syscalls(functions));
    return {
      event(t, fn, offset, addr) {
        hot.event(t, fn);
        first.event(t, fn);
        s.event(t, fn, offset);
        sys.event(t, fn, offset, addr);
        if (fn > UNRESOLVED) kernelSeen = true;
        else if (fn === USER && firstUser === null && kernelSeen) firstUser = t;
      },
    };
  }, o);
  stacks!.finish();
  const calls = syscalls!.finish();
  const match = o.milestones ?? DEFAULT_MILESTONES.map((m) => new RegExp(m));
  const incl = inclusiveByName(stacks!);
  // ext4_ alone would list every ext4 function: keep only the first of each pattern.
  const milestones: FirstCallRow[] = [];
  const rows = first.rows(result.functions);
  for (const re of match) {
    const row = rows.find((r) => re.test(r.function));
    if (row && !milestones.includes(row)) milestones.push(row);
  }
  milestones.sort((a, b) => a.first_us - b.first_us);
  return {
    path,
    lines: result.lines,
    events: result.events,
    start: stacks!.start,
    end: stacks!.clock,
    hot: hot.rows(result.functions, o.top ?? 25).map((r) => ({ ...r, inclusive_us: incl.get(r.function)?.inclusive_us ?? 0 })),
    syscalls: calls,
    syscallSummary: syscalls!.summary(),
    milestones,
    firstUser,
    stacks: stacks!,
    names: result.functions.names,
  };
}

async function gatherConsole(path: string): Promise<ConsoleData> {
  const stages = new Stages();
  const initcalls = new Initcalls();
  const uart = new UartCost();
  const visitor: ConsoleVisitor = {
    line(l: ConsoleLine) { uart.line(l); },
    message(m: ConsoleMessage) { stages.message(m); initcalls.message(m); },
  };
  await readCaptureConsole(path, visitor);
  const ic = initcalls.result();
  const u = uart.result();
  return {
    path,
    // Host-clock positions of markers and initcalls for the timeline (the analyzers keep the kernel's clock).
    events: await readConsoleEvents(path),
    stages: stages.result().rows,
    initcalls: ic.rows,
    initcallSummary: ic.summary,
    uart: 'row' in u ? u.row : u,
  };
}
