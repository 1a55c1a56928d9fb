#!/usr/bin/env node
/**
 * The `boot-trace` command line. Each subcommand lives in its own file under src/commands/.
 * Errors a user can fix (UserError) print one line and exit 1; anything else is a bug and keeps its stack.
 */
import { readFileSync } from 'node:fs';
import { loadCommands, namedCommand } from './commands/index.js';
import { UserError } from './errors.js';
import { startEarlyParse } from './trace/early-start.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function fail(message: string, code = 1): never {
  process.stderr.write(`boot-trace: ${message}\n`);
  process.exit(code);
}

/** `processArgv`: process.argv as it is (node, this script, then the words typed). */
export async function main(processArgv: string[]): Promise<void> {
  // Before yargs is loaded (imported here, not at the top, for that): an analyzer whose range half runs in
  // parse workers gets them started now, on the core that would idle meanwhile (src/trace/early-start.ts).
  const words = processArgv.slice(2);
  const rangeKind = namedCommand(words)?.rangeKind;
  if (rangeKind) startEarlyParse(words, rangeKind);
  // The command's modules load alongside yargs (the named command's alone: the first word not an option).
  const [{ default: yargs }, { hideBin }, commands] = await Promise.all([import('yargs'), import('yargs/helpers'), loadCommands(words)]);
  const argv = hideBin(processArgv);
  const parser = yargs(argv)
    .scriptName('boot-trace')
    .usage('$0 <command> [options]\n\nWhere a Linux virtual machine\'s boot time goes.')
    .command(commands)
    .demandCommand(1, 'Name a command; see boot-trace --help.')
    .strict()
    .version(pkg.version)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    // yargs' own failures (unknown option, missing argument) become one line and exit 1.
    .fail((msg, err) => {
      if (err) throw err;
      // yargs writes some (invalid choices) over two lines ("Invalid values:\n  Argument: ..."): one line here.
      fail(`${msg.split('\n').map((l) => l.trim()).filter(Boolean).join(' ')} (see boot-trace --help)`);
    });
  await parser.parseAsync();
}

// A closed pipe (boot-trace ... | head) is not an error: the reader stopped reading, so stop quietly.
// Stream write errors arrive as 'error' events, not as rejections, so catch them here, once for every command.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  fail(`cannot write output: ${err.message}`);
});

main(process.argv).catch((err: unknown) => {
  if (err instanceof UserError) fail(err.message, err.exitCode);
  // A closed pipe (boot-trace ... | head) is not an error.
  if ((err as NodeJS.ErrnoException)?.code === 'EPIPE') process.exit(0);
  process.stderr.write(`boot-trace: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(70);
});
