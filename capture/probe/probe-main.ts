/**
 * Child process of the engine probe (kvm-probe.ts): boot the probe ELF given as argv[2] in a small VM,
 * collect the stage numbers it writes to PROBE_PORT, and print one JSON line (ProbeRun) on stdout.
 * The parent kills this process if it hangs, so the loop here needs no timeout of its own.
 */
import { messageOf } from '../../src/errors.js';
import { decodeExit, handleExit } from '../engines/kvm/exits.js';
import { PortBus } from '../devices/bus.js';
import { buildVm } from '../engines/kvm/vm.js';
import { PROBE_PORT, type ProbeRun } from './kvm-probe.js';

/** Exits allowed before giving up: the probe makes about 6 port writes and nothing else. */
const MAX_EXITS = 1000;

function probe(elf: string): ProbeRun {
  let built;
  try {
    built = buildVm({ kernelPath: elf, memoryMiB: 32, cmdline: '' });
  } catch (err) {
    return { stages: [], end: 'setup', detail: messageOf(err), error: messageOf(err) };
  }
  try {
    const stages: number[] = [];
    const bus = new PortBus();
    bus.register(PROBE_PORT, 1, { read: () => 0xff, write: (_port: number, _size: number, value: number) => void stages.push(value & 0xff) }, 'probe');
    const { vcpu } = built;
    for (let i = 0; i < MAX_EXITS; i++) {
      if (vcpu.runOnce() !== 0) continue;
      const exit = decodeExit(vcpu.run, vcpu.runBytes);
      const action = handleExit(exit, { bus, resetRequested: () => false });
      if (stages.includes(0xaa)) return { stages, end: 'done', detail: 'all stages ran' };
      if (action.kind === 'stop') {
        return { stages, end: action.reason, detail: action.detail, rip: '0x' + vcpu.getRegs().rip.toString(16) };
      }
    }
    return { stages, end: 'timeout', detail: `no end after ${MAX_EXITS} exits`, rip: '0x' + vcpu.getRegs().rip.toString(16) };
  } finally {
    built.close();
  }
}

process.stdout.write(JSON.stringify(probe(process.argv[2]!)) + '\n');
