/**
 * `boot-trace capture`: boot a kernel (or the demo guest) under KVM and write trace.log (step mode),
 * console.log and profile.json into an output folder. See capture/capture.ts.
 */
import type { CommandModule } from 'yargs';
import { capture, DEFAULT_TIMEOUT_S } from '../../capture/capture.js';
import { summaryLines } from '../../capture/profile.js';
import { DEFAULT_CMDLINE, DEFAULT_MEMORY_MIB } from '../../capture/layout.js';

interface Args {
  kernel?: string;
  guest?: string;
  memory: number;
  cmdline: string;
  initrd?: string;
  'system-map'?: string;
  mode: 'run' | 'step';
  clock: 'host' | 'steps';
  'block-irq': boolean;
  timeout: number;
  'max-steps'?: number;
  out?: string;
  echo: boolean;
}

export const captureCommand: CommandModule<object, Args> = {
  command: 'capture',
  describe: 'boot a kernel under KVM and record its trace, console and boot profile',
  builder: (y) =>
    y
      .option('kernel', { type: 'string', describe: 'kernel to boot: bzImage or ELF vmlinux' })
      .option('guest', { choices: ['demo'], describe: 'boot a built-in guest instead (built with cc on first use)' })
      .option('memory', { type: 'number', default: DEFAULT_MEMORY_MIB, describe: 'guest memory in MiB' })
      .option('cmdline', { type: 'string', default: DEFAULT_CMDLINE, describe: 'kernel command line' })
      .option('initrd', { type: 'string', describe: 'initramfs to load' })
      .option('system-map', { type: 'string', describe: 'symbols: System.map, nm output, kallsyms dump or unstripped ELF (default: the kernel ELF\'s own .symtab)' })
      .option('mode', { choices: ['run', 'step'] as const, default: 'run' as const, describe: 'run freely, or single-step and trace every instruction' })
      .option('clock', { choices: ['host', 'steps'] as const, default: 'host' as const, describe: 'trace timestamps: host microseconds since VM creation, or the instruction index' })
      .option('block-irq', { type: 'boolean', default: false, describe: 'step mode: inject no interrupts while stepping (KVM_GUESTDBG_BLOCKIRQ)' })
      .option('timeout', { type: 'number', default: DEFAULT_TIMEOUT_S, describe: 'stop after this many seconds' })
      .option('max-steps', { type: 'number', describe: 'step mode: stop after this many instructions' })
      .option('out', { type: 'string', describe: 'output folder (default: captures/<timestamp>)' })
      .option('echo', { type: 'boolean', default: false, describe: 'copy the guest serial console to stderr' })
      .option('trace-from', { type: 'string' })
      .option('trace-until', { type: 'string' }) as never,
  handler: async (args) => {
    const r = await capture({
      ...(args.kernel !== undefined ? { kernel: args.kernel } : {}),
      ...(args.guest === 'demo' ? { guest: 'demo' as const } : {}),
      memoryMiB: args.memory,
      cmdline: args.cmdline,
      ...(args.initrd !== undefined ? { initrd: args.initrd } : {}),
      ...(args['system-map'] !== undefined ? { systemMap: args['system-map'] } : {}),
      mode: args.mode,
      clock: args.clock,
      blockIrq: args['block-irq'],
      timeout: args.timeout,
      ...(args['max-steps'] !== undefined ? { maxSteps: args['max-steps'] } : {}),
      ...(args.out !== undefined ? { out: args.out } : {}),
      echo: args.echo,
      ...((args as any)['trace-from'] !== undefined ? { traceFrom: (args as any)['trace-from'] } : {}),
      ...((args as any)['trace-until'] !== undefined ? { traceUntil: (args as any)['trace-until'] } : {}),
    });
    for (const line of summaryLines(r.profile)) process.stderr.write(line + '\n');
    process.stdout.write(r.outDir + '\n');
    // The guest failed (emulation failure, failed entry): the files are written, but say so in the status.
    if (r.failed || r.profile.exit.reason === 'interrupted') process.exitCode = r.profile.exit.reason === 'interrupted' ? 130 : 2;
  },
};
