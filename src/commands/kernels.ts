import type { CommandModule } from 'yargs';
import { findKernel, listKernels } from '../../capture/kernel/discover.js';
import { cacheDir } from '../cache.js';
import { defaultFormat, OUTPUT_FORMATS, writeRows, type OutputFormat } from '../output/write.js';

interface Args {
  format: OutputFormat;
  fetch: boolean;
}

/** `boot-trace kernels`: the host's and the cached kernels, and which one a default capture boots. */
export const kernelsCommand: CommandModule<object, Args> = {
  command: 'kernels',
  describe: 'list the kernels a capture can boot: the host\'s /boot and the cached Debian cloud kernels',
  builder: (y) =>
    y
      .option('format', { choices: OUTPUT_FORMATS, default: defaultFormat(), defaultDescription: 'table on a terminal, else csv', describe: 'output format' })
      .option('fetch', { type: 'boolean', default: false, describe: 'download Debian\'s current cloud kernel when neither /boot nor the cache has one' }) as never,
  handler: async (args) => {
    if (args.fetch) await findKernel({});
    const rows = listKernels().map((k) => ({ ...k, protocol: k.protocol ?? '' }));
    if (rows.length === 0) {
      process.stderr.write(`boot-trace: no kernel in /boot or ${cacheDir('kernels')}; \`boot-trace kernels --fetch\` downloads Debian's cloud kernel\n`);
    }
    await writeRows(rows, [
      { key: 'source', header: 'source' },
      { key: 'release', header: 'release' },
      { key: 'format', header: 'format' },
      { key: 'protocol', header: 'protocol' },
      { key: 'bytes', header: 'bytes', show: (v) => Number(v).toLocaleString('en-US') },
      { key: 'path', header: 'path' },
    ], args.format);
  },
};
