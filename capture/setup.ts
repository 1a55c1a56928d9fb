/**
 * Everything a capture needs before an engine starts, with sensible defaults, so that a bare
 * `boot-trace capture` boots a real kernel:
 *   engine   --engine auto: KVM when the probe says it can run a stock kernel, else QEMU (engine-choice.ts)
 *   kernel   --kernel, else the host's /boot/vmlinuz-$(uname -r), the cache, or Debian's cloud kernel (kernel/discover.ts)
 *   image    --decompress host (KVM default): the bzImage's payload decompressed on the host and booted as an
 *            ELF vmlinux at its 64-bit entry; guest: the bzImage itself (its own decompressor runs in the guest).
 *            QEMU always boots the bzImage (its -kernel takes no 64-bit ELF).
 *   symbols  --system-map, else the kernel's own kallsyms (kernel/symbols.ts, cached as a System.map)
 *   initrd   --initrd, else the appliance (appliance/appliance.ts; --workload replaces its workload)
 *   cmdline  --cmdline, else the engine's default (registry.ts defaultCmdline); --append adds to either
 * The `setup` record says where each came from and what it cost (microseconds); it goes into profile.json.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cacheDir } from '../src/cache.js';
import { messageOf, UserError } from '../src/errors.js';
import { loadKernelImage } from './boot/kernel-image.js';
import { readPayload, SUPPORTED_FORMATS } from './kernel/payload.js';
import { buildAppliance } from './appliance/appliance.js';
import { chooseEngine, gatherFacts, type Engine, type EngineAsked, type EngineFacts } from './engine-choice.js';
import { demoGuestPath } from './guest/build.js';
import { decompressKernel, readKernelFile, sha256Hex } from './kernel/decompress.js';
import { findKernel, type KernelSource } from './kernel/discover.js';
import { kernelSystemMap } from './kernel/symbols.js';
import { defaultCmdline } from './engines/registry.js';
import type { CaptureMode, CaptureSetup } from './output/profile.js';

export type DecompressMode = 'host' | 'guest';

export interface SetupOptions {
  kernel?: string;
  guest?: 'demo';
  engine?: EngineAsked;
  /** Undefined: host under KVM, guest (the bzImage) under QEMU. */
  decompress?: DecompressMode;
  initrd?: string;
  /** Replace the appliance's workload (ignored with --initrd). */
  workload?: string;
  systemMap?: string;
  cmdline?: string;
  /** Words added to the command line (--cmdline's, or the engine's default). */
  append?: string;
  mode?: CaptureMode;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Facts for the engine choice (tests); default: this machine's. */
  facts?: EngineFacts;
}

export interface PreparedCapture {
  engine: Engine;
  /** The file the engine boots: the ELF vmlinux (host decompression), the bzImage, or the demo guest. */
  bootKernel: string;
  cmdline: string;
  initrd?: string;
  /** A System.map for the engine, when symbols come from kallsyms or --system-map. */
  systemMap?: string;
  /** For profile.json. */
  setup: CaptureSetup;
}

export type { CaptureSetup } from './output/profile.js';

function timedMs<T>(into: Record<string, number>, name: string, fn: () => T): T {
  const t = performance.now();
  try {
    return fn();
  } finally {
    into[name] = Math.round((performance.now() - t) * 1000);
  }
}

async function timedMsAsync<T>(into: Record<string, number>, name: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await fn();
  } finally {
    into[name] = Math.round((performance.now() - t) * 1000);
  }
}

export async function prepareCapture(o: SetupOptions): Promise<PreparedCapture> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const asked = o.engine ?? 'auto';
  const ms: Record<string, number> = {}; // microseconds per step
  const mode = o.mode ?? 'run';
  const withAppend = (c: string): string => (o.append ? `${c} ${o.append}`.trim() : c);
  const cmdlineSource = o.cmdline !== undefined ? 'argument' : o.append ? 'default+append' : 'default';
  if (o.kernel !== undefined && o.guest !== undefined) throw new UserError('give either --kernel or --guest, not both');
  if (o.workload !== undefined && o.initrd !== undefined) throw new UserError('--workload changes the appliance; it cannot apply to --initrd FILE');
  if (o.workload !== undefined && o.guest !== undefined) throw new UserError('--workload needs a Linux kernel; the demo guest has no userspace');
  if (o.decompress !== undefined && o.guest !== undefined) throw new UserError('--decompress applies to a Linux bzImage, not --guest demo');

  // The demo guest: no discovery, no appliance, symbols from its own .symtab (in the VMM's worker).
  if (o.guest === 'demo') {
    const choice = chooseEngine(asked, 'demo', o.facts ?? gatherFacts(), mode);
    const cmdline = withAppend(o.cmdline ?? defaultCmdline(choice.engine));
    const path = timedMs(ms, 'demo_build', () => demoGuestPath());
    if (o.systemMap !== undefined) readable(o.systemMap, 'symbol file');
    return {
      engine: choice.engine,
      bootKernel: path,
      cmdline,
      ...(o.initrd !== undefined ? { initrd: resolve(o.initrd) } : {}),
      ...(o.systemMap !== undefined ? { systemMap: resolve(o.systemMap) } : {}),
      setup: {
        engine: { asked, chosen: choice.engine, reason: choice.reason, probe_us: null, probe_cached: null },
        kernel: { path, source: 'demo' },
        decompress: { mode: 'none', format: null, duration_us: 0, cached: false, booted: path },
        initrd: { path: o.initrd ? resolve(o.initrd) : null, source: o.initrd ? 'argument' : 'none', workload: null },
        symbols: { source: o.systemMap ? 'system-map' : 'elf-symtab', file: o.systemMap ? resolve(o.systemMap) : null, count: null, duration_us: 0 },
        cmdline_source: cmdlineSource,
        steps_us: ms,
      },
    };
  }

  // The kernel: a bad --kernel fails here, in one line, before any probe or download.
  let found: { path: string; source: KernelSource };
  if (o.kernel !== undefined) found = { path: o.kernel, source: 'argument' };
  else {
    found = await timedMsAsync(ms, 'find_kernel', () => findKernel({ log }));
    log(`boot-trace: kernel ${found.path} (${found.source === 'host' ? "the host's" : found.source === 'cache' ? 'cached' : 'downloaded'})`);
  }
  const kernelPath = resolve(found.path);
  const buf = timedMs(ms, 'read_kernel', () => readKernelFile(kernelPath));
  const image = loadKernelImage(buf, kernelPath); // the VMM's own check: bzImage or ELF, with the same errors
  const isElf = image.kind === 'elf';

  const choice = timedMs(ms, 'engine_probe', () => chooseEngine(asked, isElf ? 'elf' : 'bzimage', o.facts ?? gatherFacts(), mode));
  if (choice.message) log(choice.message);
  const engine = choice.engine;
  if (engine === 'qemu' && o.decompress === 'host' && asked === 'qemu') {
    throw new UserError("--decompress host needs the KVM engine: QEMU's -kernel boots the bzImage itself (use --decompress guest or --engine kvm)");
  }
  if (engine === 'qemu' && o.decompress === 'host') log('boot-trace: QEMU boots the bzImage itself; --decompress host applies only to the KVM engine');
  const engineSetup: CaptureSetup['engine'] = {
    asked,
    chosen: engine,
    reason: choice.reason,
    probe_us: choice.probe ? Math.round(choice.probe.ms * 1000) : null,
    probe_cached: choice.probe ? choice.probe.cached : null,
  };
  const cmdline = withAppend(o.cmdline ?? defaultCmdline(engine));
  const sha = timedMs(ms, 'hash_kernel', () => sha256Hex(buf));

  // Which file boots. Host decompression needs a payload this tool can decompress; asked for explicitly
  // it must work, by default a bzImage without one (a test image, bzip2/lzo) boots as it is.
  let decompressMode: DecompressMode = isElf ? 'host' : (o.decompress ?? (engine === 'kvm' ? 'host' : 'guest'));
  if (!isElf && engine === 'kvm' && decompressMode === 'host' && o.decompress === undefined) {
    try {
      const payload = readPayload(buf, kernelPath);
      if (!SUPPORTED_FORMATS.includes(payload.format)) throw new UserError(`${payload.format}-compressed payload`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      log(`boot-trace: booting the bzImage as it is (no payload to decompress on the host: ${err.message})`);
      decompressMode = 'guest';
    }
  }
  let bootKernel = kernelPath;
  const decompress: CaptureSetup['decompress'] = { mode: isElf ? 'none' : decompressMode, format: null, duration_us: 0, cached: false, booted: kernelPath };
  if (!isElf && engine === 'kvm' && decompressMode === 'host') {
    const cached = join(cacheDir('vmlinux'), `${sha}.elf`);
    if (existsSync(cached)) {
      decompress.cached = true;
    } else {
      log(`boot-trace: decompressing ${kernelPath} on the host (once per kernel; cached)`);
      const d = await timedMsAsync(ms, 'decompress', () => decompressKernel(kernelPath));
      decompress.format = d.format;
      decompress.duration_us = Math.round(d.ms * 1000);
      decompress.cached = d.cached;
    }
    bootKernel = cached;
    decompress.booted = cached;
  }

  // Symbols: only where something will name addresses (KVM always names its exit; QEMU only in step mode).
  let systemMap: string | undefined;
  let symbols: CaptureSetup['symbols'] = { source: 'none', file: null, count: null, duration_us: 0 };
  if (o.systemMap !== undefined) {
    readable(o.systemMap, 'symbol file');
    systemMap = resolve(o.systemMap);
    symbols = { source: 'system-map', file: systemMap, count: null, duration_us: 0 };
  } else if (engine === 'kvm' || mode !== 'run') {
    const t = performance.now();
    try {
      const map = await kernelSystemMap(kernelPath);
      systemMap = map.cacheFile;
      symbols = { source: 'kallsyms', file: map.cacheFile, count: map.count, duration_us: Math.round((performance.now() - t) * 1000) };
    } catch (err) {
      // A kernel without kallsyms still boots; its trace lines are bare addresses (said in the profile).
      if (!(err instanceof UserError)) throw err;
      if (isElf) symbols = { source: 'elf-symtab', file: null, count: null, duration_us: 0 }; // the VMM reads .symtab, if any
      else log(`boot-trace: no symbols from the kernel image (${err.message}); addresses stay bare hex`);
    }
    ms.symbols = Math.round((performance.now() - t) * 1000);
  }

  // The initrd.
  let initrd: string | undefined;
  let initrdSetup: CaptureSetup['initrd'];
  if (o.initrd !== undefined) {
    readable(o.initrd, 'initrd');
    initrd = resolve(o.initrd);
    initrdSetup = { path: initrd, source: 'argument', workload: null };
  } else if (!isElf || symbols.source === 'kallsyms') {
    // The appliance is for Linux: a bzImage, or an ELF with kallsyms (not a freestanding test guest).
    initrd = await timedMsAsync(ms, 'appliance', () => buildAppliance({ ...(o.workload !== undefined ? { workload: o.workload } : {}), log }));
    initrdSetup = { path: initrd, source: 'appliance', workload: o.workload ?? null };
  } else {
    if (o.workload !== undefined) throw new UserError(`--workload: ${kernelPath} is not a Linux kernel (no kallsyms), so it gets no appliance`);
    initrdSetup = { path: null, source: 'none', workload: null };
  }

  return {
    engine,
    bootKernel,
    cmdline,
    ...(initrd !== undefined ? { initrd } : {}),
    ...(systemMap !== undefined ? { systemMap } : {}),
    setup: {
      engine: engineSetup,
      kernel: { path: kernelPath, source: found.source },
      decompress,
      initrd: initrdSetup,
      symbols,
      cmdline_source: cmdlineSource,
      steps_us: ms,
    },
  };
}

function readable(path: string, what: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new UserError(`${path}: cannot read ${what} (${messageOf(err)})`);
  }
}
