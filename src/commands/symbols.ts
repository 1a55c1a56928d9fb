import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { kernelSystemMap } from '../../capture/kernel/symbols.js';
import { messageOf, UserError } from '../errors.js';

interface Args {
  kernel: string;
  output?: string;
}

/** `boot-trace symbols KERNEL`: a System.map decoded from the kernel's own kallsyms tables. */
export const symbolsCommand: CommandModule<object, Args> = {
  command: 'symbols <kernel>',
  describe: 'print a System.map decoded from a kernel\'s kallsyms tables (bzImage or vmlinux; no debug package needed)',
  builder: (y) =>
    y
      .positional('kernel', { type: 'string', demandOption: true, describe: 'bzImage (vmlinuz) or ELF vmlinux' })
      .option('output', { alias: 'o', type: 'string', describe: 'write to this file instead of stdout' }) as never,
  handler: async (args) => {
    const map = await kernelSystemMap(args.kernel);
    if (args.output !== undefined) {
      try {
        writeFileSync(args.output, map.text, 'latin1');
      } catch (err) {
        throw new UserError(`${args.output}: cannot write (${messageOf(err)})`);
      }
      process.stderr.write(`boot-trace: ${map.count.toLocaleString('en-US')} symbols written to ${args.output}${map.cached ? ' (from the cache)' : ''}\n`);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      process.stdout.write(map.text, 'latin1', (err) => (err ? reject(err) : resolve()));
    });
  },
};
