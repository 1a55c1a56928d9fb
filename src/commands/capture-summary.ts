/**
 * The short report at the end of `boot-trace capture`, and what `boot-trace summary CAPTURE_DIR` prints:
 * how the capture ended, the guest's BOOT_TIME markers, boot stages from console.log (analyzers/stages.ts),
 * the five longest initcalls when the console has initcall_debug lines, the hottest functions when a
 * trace.log exists, and where the files are. Each part is left out when its input is missing.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HotFunctions } from '../../analyzers/hot-functions.js';
import { Initcalls } from '../../analyzers/initcalls.js';
import { Stages } from '../../analyzers/stages.js';
import type { ConsoleMessage, ConsoleVisitor } from '../../analyzers/console-lines.js';
import { CAPTURE_FILE_NAMES, CONSOLE_FILE, isCaptureDir, PROFILE_FILE, readCaptureConsole, RECORDING_FILE, TRACE_FILE } from '../../capture/output/folder.js';
import { wholeBootAnswers } from './whole-boot-answers.js';
import { exitLine, readProfile, type Profile } from '../../capture/output/profile.js';
import { UserError } from '../errors.js';
import { readTrace } from '../trace/reader.js';


const ms = (us: number): string => `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;

export async function captureSummaryLines(dir: string, top = 5): Promise<string[]> {
  if (!isCaptureDir(dir)) throw new UserError(`${dir}: not a capture folder (no profile.json or console.log)`);
  const out: string[] = [];
  const profileFile = join(dir, PROFILE_FILE);
  const profile: Profile | undefined = existsSync(profileFile) ? readProfile(profileFile) : undefined;
  if (profile) {
    const setup = profile.setup;
    const engine = profile.engine === 'qemu' ? `QEMU (${(profile.qemu?.accel ?? '?').toUpperCase()})` : profile.engine === 'kvm' ? 'KVM (boot-trace VMM)' : profile.engine;
    const kernel = setup ? `${setup.kernel.path} (${setup.kernel.source})` : profile.kernel;
    out.push(`Capture: ${engine}, ${profile.mode} mode, kernel ${kernel}`);
    if (setup && setup.decompress.mode !== 'none') out.push(`  decompression: ${setup.decompress.mode}${setup.decompress.mode === 'host' ? ` -> ${setup.decompress.booted}` : ''}`);
    if (setup?.initrd.path) out.push(`  initrd: ${setup.initrd.path} (${setup.initrd.source})`);
    const phases = profile.phases_us;
    if (phases.total !== undefined) {
      const wait = phases.boot_wait ?? 0;
      out.push(`  time: ${ms(phases.total)} total, ${ms(wait)} guest running, ${ms(phases.total - wait)} host setup`);
    }
    const steps = setup?.steps_us;
    if (steps && Object.keys(steps).length > 0) {
      const total = Object.values(steps).reduce((a, b) => a + b, 0);
      const parts = Object.entries(steps).filter(([, v]) => v >= 1000).map(([k, v]) => `${k} ${(v / 1000).toFixed(0)}`);
      out.push(`  before the engine: ${ms(total)}${parts.length ? ` (${parts.join(', ')} ms)` : ''}`);
    }
    const exit = profile.exit;
    out.push(`  end: ${exitLine(exit)}`);
    if (profile.step) out.push(`  steps: ${profile.step.steps.toLocaleString('en-US')}`);
    const guest = profile.guest_markers_us;
    if (Object.keys(guest).length > 0) {
      out.push('', 'Guest markers (BOOT_TIME, guest clock)');
      for (const [stage, us] of Object.entries(guest)) out.push(`  ${stage.padEnd(16)} ${ms(us).padStart(12)}`);
    }
  }

  const consoleFile = join(dir, CONSOLE_FILE);
  if (existsSync(consoleFile) && statSync(consoleFile).size > 0) {
    const stages = new Stages();
    const initcalls = new Initcalls();
    const both: ConsoleVisitor = {
      message(m: ConsoleMessage) {
        stages.message(m);
        initcalls.message?.(m);
      },
    };
    await readCaptureConsole(dir, both);
    const { rows } = stages.result();
    if (rows.length > 0) {
      out.push('', 'Stages (console.log, host clock)');
      for (const r of rows) out.push(`  ${r.name.padEnd(26)} at ${ms(r.start_us).padStart(12)}  for ${ms(r.duration_us).padStart(12)}${r.percent !== null ? `  ${r.percent.toFixed(1).padStart(5)}%` : ''}`);
    }
    const ic = initcalls.result().rows.filter((r) => r.duration_us !== null).slice(0, top);
    if (ic.length > 0) {
      out.push('', `Longest initcalls (top ${ic.length})`);
      for (const r of ic) out.push(`  ${ms(r.duration_us!).padStart(12)}  ${r.initcall}${r.module ? ` [${r.module}]` : ''}`);
    }
  }

  const traceFile = join(dir, TRACE_FILE);
  if (existsSync(traceFile) && statSync(traceFile).size > 0) {
    const hot = new HotFunctions();
    const r = await readTrace(traceFile, () => hot);
    const rows = hot.rows(r.functions, top);
    if (rows.length > 0) {
      out.push('', `Hottest functions (self time, ${r.events.toLocaleString('en-US')} trace lines)`);
      for (const h of rows) out.push(`  ${h.percent.toFixed(2).padStart(6)}%  ${String(h.lines).padStart(9)} lines  ${h.function}`);
    }
  }

  // A whole-boot recording (--mode trace): its three answers (whole-boot-answers.ts).
  if (existsSync(join(dir, RECORDING_FILE))) out.push(...wholeBootAnswers(join(dir, RECORDING_FILE), top));

  out.push('', `Files in ${dir}:`);
  for (const f of CAPTURE_FILE_NAMES) if (existsSync(join(dir, f))) out.push(`  ${f}`);
  return out;
}
