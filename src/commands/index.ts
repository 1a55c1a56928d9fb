import type { CommandModule } from 'yargs';
import type { RangeKind } from '../trace/range-part.js';

/**
 * Every subcommand of `boot-trace`, one file each under src/commands/. Add a new one here.
 * Each is loaded only when it is the command being run (all of them for --help): the capture engine
 * pulls in koffi and the decompressors, which an analyzer run should not pay for at start-up.
 */
export interface CommandEntry {
  name: string;
  load: () => Promise<CommandModule<any, any>>;
  /** The analyzer whose range half parse workers run (src/trace/range-part.ts): cli.ts starts them early. */
  rangeKind?: RangeKind;
}

export const commandEntries: CommandEntry[] = [
  // Capture
  { name: 'capture', load: async () => (await import('./capture.js')).captureCommand },
  { name: 'kernels', load: async () => (await import('./kernels.js')).kernelsCommand },
  { name: 'symbols', load: async () => (await import('./symbols.js')).symbolsCommand },
  // Trace analyzers
  { name: 'summary', load: async () => (await import('./summary.js')).summaryCommand },
  { name: 'hot-functions', rangeKind: 'hot-functions', load: async () => (await import('./hot-functions.js')).hotFunctionsCommand },
  { name: 'first-calls', rangeKind: 'first-calls', load: async () => (await import('./first-calls.js')).firstCallsCommand },
  { name: 'syscalls', rangeKind: 'syscalls', load: async () => (await import('./syscalls.js')).syscallsCommand },
  { name: 'callers', load: async () => (await import('./callers.js')).callersCommand },
  { name: 'callees', load: async () => (await import('./callees.js')).calleesCommand },
  // Console analyzers
  { name: 'stages', load: async () => (await import('./stages.js')).stagesCommand },
  { name: 'initcalls', load: async () => (await import('./initcalls.js')).initcallsCommand },
  { name: 'uart', load: async () => (await import('./uart.js')).uartCommand },
  { name: 'benchmark', load: async () => (await import('./benchmark.js')).benchmarkCommand },
  // Pictures and exports
  { name: 'export', load: async () => (await import('./export.js')).exportCommand },
  { name: 'flamegraph', load: async () => (await import('./flamegraph.js')).flamegraphCommand },
  { name: 'report', load: async () => (await import('./report.js')).reportCommand },
];

/** The entry of the command argv names (its first word that is not an option), if any. */
export function namedCommand(argv: readonly string[]): CommandEntry | undefined {
  const name = argv.find((a) => !a.startsWith('-'));
  return commandEntries.find((e) => e.name === name);
}

/** The command modules needed to parse argv: the named command's alone, or all of them. */
export async function loadCommands(argv: string[]): Promise<CommandModule<any, any>[]> {
  const one = namedCommand(argv);
  return Promise.all((one ? [one] : commandEntries).map((e) => e.load()));
}
