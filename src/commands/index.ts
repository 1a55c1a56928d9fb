import type { CommandModule } from 'yargs';
import { firstCallsCommand } from './first-calls.js';
import { hotFunctionsCommand } from './hot-functions.js';
import { syscallsCommand } from './syscalls.js';

/**
 * Every subcommand of `boot-trace`, one file each under src/commands/. Add a new one here.
 * Kept as a plain list (not yargs' commandDir) so the compiled CLI does not scan folders at start-up.
 */
export const commands: CommandModule<any, any>[] = [
  hotFunctionsCommand,
  firstCallsCommand,
  syscallsCommand,
];
