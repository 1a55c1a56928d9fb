/**
 * Every capture engine, one line each. An engine is found by its --engine name and the --mode asked for;
 * several entries may share a name when they do different modes (QEMU run and step; a whole-boot QEMU
 * plugin engine adds `qemu` with mode `trace`). Adding an engine: its folder under capture/engines/ and
 * one line here (docs/architecture.md).
 */
import { UserError } from '../../src/errors.js';
import type { CaptureMode } from '../output/profile.js';
import type { CaptureEngine } from './engine.js';
import { kvmEngine } from './kvm/capture.js';
import { qemuRunEngine } from './qemu/qemu.js';
import { qemuStepEngine } from './qemu/qemu-step.js';
import { qemuTraceEngine } from './qemu-trace/trace-qemu.js';

export const ENGINES: readonly CaptureEngine[] = [
  kvmEngine,
  qemuRunEngine(),
  qemuStepEngine(),
  qemuTraceEngine(),
];

/** The engines' names, for --engine (besides 'auto'). */
export const ENGINE_NAMES = [...new Set(ENGINES.map((e) => e.name))];
/** Every mode some engine does, for --mode. */
export const MODES: readonly CaptureMode[] = [...new Set(ENGINES.flatMap((e) => e.modes))];

/** True when the engine called `name` does `mode`. */
export function supports(name: string, mode: CaptureMode): boolean {
  return ENGINES.some((e) => e.name === name && e.modes.includes(mode));
}

/** The engine for --engine `name` --mode `mode`, or a UserError saying which modes that engine has. */
export function engineFor(name: string, mode: CaptureMode): CaptureEngine {
  const e = ENGINES.find((x) => x.name === name && x.modes.includes(mode));
  if (e) return e;
  const modes = ENGINES.filter((x) => x.name === name).flatMap((x) => x.modes);
  if (modes.length === 0) throw new UserError(`--engine ${name}: no such engine (engines: ${ENGINE_NAMES.join(', ')})`);
  return throwUser(`--engine ${name} has no --mode ${mode} (it does: ${modes.join(', ')})`);
}

/** The default kernel command line of an engine (the same for all its modes). */
export function defaultCmdline(name: string): string {
  const e = ENGINES.find((x) => x.name === name);
  if (!e) throw new UserError(`--engine ${name}: no such engine`);
  return e.defaultCmdline;
}

function throwUser(message: string): never {
  throw new UserError(message);
}
