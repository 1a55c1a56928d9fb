/**
 * bench/c/step-loop.c written in TypeScript over the project's KVM bindings (capture/kvm/, koffi): the same
 * guest from the same VM builder, single-stepped to its reset, with nothing done per step but counting and
 * the same port-I/O answers as the C loop. bench/capture.ts runs it between the C loop and the capture, to
 * split the capture's distance from C into what Node + koffi cost per KVM_RUN and what the capture's own
 * per-step work (trace line, symbols, watchdog) costs.
 *
 *   node dist/bench/step-loop-node.js     prints "steps N seconds S steps_per_second R exit reset"
 */
import { buildVm } from '../capture/engines/kvm/vm.js';
import { demoGuestPath } from '../capture/guest/build.js';
import * as K from '../capture/kvm/ioctls.js';
import { RUN } from '../capture/kvm/structs.js';
import { DEFAULT_CMDLINE } from '../capture/layout.js';

/** Guest RAM, as bench/capture.ts dumps it for the C loop. */
const MEMORY_MIB = 32;
const KVM_EXIT_IO_IN = 0;
const COM1_LSR = 0x3fd;
const I8042_COMMAND = 0x64;
const I8042_RESET = 0xfe;

export function nodeStepLoop(kernel: string): { steps: number; seconds: number; exit: string } {
  const b = buildVm({ kernelPath: kernel, memoryMiB: MEMORY_MIB, cmdline: DEFAULT_CMDLINE });
  const { vcpu } = b;
  try {
    const run = vcpu.run;
    const bytes = vcpu.runBytes;
    vcpu.setGuestDebug(K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_SINGLESTEP);
    let steps = 1; // the entry instruction, as the capture counts it
    let exit = 'other-exit';
    const t0 = performance.now();
    for (;;) {
      if (vcpu.runOnce() !== 0) continue;
      const reason = run.getUint32(RUN.exitReason, true);
      if (reason === K.KVM_EXIT_DEBUG) {
        steps++;
        continue;
      }
      if (reason === K.KVM_EXIT_IO) {
        const data = run.getUint32(RUN.ioDataOffset, true);
        const port = run.getUint16(RUN.ioPort, true);
        if (run.getUint8(RUN.ioDirection) === KVM_EXIT_IO_IN) {
          // The serial LSR says "transmitter empty"; everything else floats high (as step-loop.c).
          bytes.fill(port === COM1_LSR ? 0x60 : 0xff, data, data + run.getUint8(RUN.ioSize) * run.getUint32(RUN.ioCount, true));
        } else if (port === I8042_COMMAND && bytes[data] === I8042_RESET) {
          exit = 'reset';
          break;
        }
        continue;
      }
      break;
    }
    return { steps, seconds: (performance.now() - t0) / 1000, exit };
  } finally {
    vcpu.unmapRun();
    b.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/dist\//, '/dist/'))) {
  const r = nodeStepLoop(demoGuestPath());
  process.stdout.write(`steps ${r.steps} seconds ${r.seconds.toFixed(6)} steps_per_second ${Math.round(r.steps / r.seconds)} exit ${r.exit}\n`);
}
