/**
 * The nested-KVM harness (docs/nested-kvm.md): boots a QEMU TCG guest whose CPU emulates AMD SVM with
 * nested paging (`-cpu max`), loads Debian's kvm_amd in it, runs `boot-trace capture|benchmark ARGS`
 * there on the KVM engine, and copies the result folder back to the host.
 *
 *   const r = await runNested(parseNestedArgs(['out/', 'capture', '--timeout', '30']), { projectDir });
 *   r.status   // the inner command's exit status
 *
 * Steps: find the outer kernel (the cached Debian cloud kernel, else download it), its modules
 * (./modules.ts), the node runtime and project (./runtime.ts), the outer initramfs (./initramfs.ts,
 * cached); prepare the inner run's files on the host (capture/setup.ts: kernel, decompressed vmlinux,
 * System.map, appliance) and write them with /nested/run.sh as a cpio archive onto a sparse raw disk;
 * run QEMU under a wall-clock cap; read the output archive back from the disk.
 */
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { cacheDir } from '../../src/cache.js';
import { messageOf, UserError } from '../../src/errors.js';
import { findStaticBusybox } from '../appliance/busybox.js';
import { readCpio, S_IFDIR, S_IFREG, writeCpio, type CpioEntry } from '../appliance/cpio.js';
import { findExecutable, QEMU_MISSING } from '../engines/qemu/qemu-common.js';
import { QEMU_BINARY } from '../engines/qemu/qemu-args.js';
import { runQemu } from '../engines/qemu/qemu-process.js';
import { cachedKernels, downloadCloudKernel } from '../kernel/discover.js';
import { prepareCapture } from '../setup.js';
import { shellQuote, type NestedArgs } from './args.js';
import { parentDirs, buildNestedInitramfs } from './initramfs.js';
import { GUEST_RESULT_DIR, GUEST_RUN_SCRIPT, OUT_LOG, OUT_STATUS } from './init-script.js';
import { kernelModules } from './modules.js';
import { runtimeFiles } from './runtime.js';

/** The outer kernel's command line: quiet, so the console carries /init's lines and the inner command's output. */
export const OUTER_CMDLINE = 'console=ttyS0 panic=-1 quiet mitigations=off';
/** Free space on the results disk beyond the inputs (sparse: costs nothing until written). */
const DISK_HEADROOM = 1024 * 1024 * 1024;
/** Where the harness's own files go in OUT, next to the copied result. */
export const NESTED_CONSOLE = 'nested-console.log';
export const NESTED_PROFILE = 'nested.json';
export const NESTED_INNER_LOG = 'nested-inner.log';

export interface NestedOptions {
  /** The project whose dist/ runs inside (default: the one this file is part of). */
  projectDir?: string;
  log?: (line: string) => void;
  /** Copy the outer console to stderr as it arrives (default true). */
  echo?: boolean;
  signal?: AbortSignal;
}

export interface NestedResult {
  /** The inner command's exit status. */
  status: number;
  out: string;
  /** Host milliseconds from QEMU's start to each NESTED: step (init, modules, inputs, run, status, written), and total. */
  timings: Record<string, number>;
}

/** The newest cached Debian cloud kernel (vmlinuz + release), else downloaded. */
async function outerKernel(log: (l: string) => void): Promise<{ vmlinuz: string; release: string }> {
  const cloud = cachedKernels().filter((k) => /-cloud-amd64$/.test(k.release));
  if (cloud.length > 0) return { vmlinuz: cloud[cloud.length - 1]!.path, release: cloud[cloud.length - 1]!.release };
  const vmlinuz = await downloadCloudKernel(log);
  return { vmlinuz, release: /vmlinuz-([^/]+)$/.exec(vmlinuz)![1]! };
}

export function defaultProjectDir(): string {
  // dist/capture/nested/harness.js -> the project folder.
  return resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '..');
}

/** The inner command line: node, the CLI, COMMAND ARGS, and what the harness adds. */
export function innerCommand(a: NestedArgs, projectDir: string, kernel: string | undefined, node = process.execPath): string[] {
  const cmd = [node, join(projectDir, 'dist', 'src', 'cli.js'), a.command, ...a.args];
  if (!a.args.some((x) => x === '--engine' || x.startsWith('--engine='))) cmd.push('--engine', 'kvm');
  // The inner run boots exactly the kernel prepared on the host, whatever the outer guest's /boot holds.
  if (a.kernel === undefined && a.guest === undefined && kernel !== undefined) cmd.push('--kernel', kernel);
  cmd.push('--out', GUEST_RESULT_DIR);
  return cmd;
}

/** /nested/run.sh: environment, working folder and "$@" for /init. */
export function runScript(cmd: readonly string[], cache: string, cwd: string): string {
  return [
    '# boot-trace nested harness: the inner command (capture/nested/harness.ts)',
    `export HOME=/root BOOT_TRACE_CACHE=${shellQuote(cache)}`,
    `cd ${shellQuote(cwd)}`,
    `set -- ${cmd.map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
}

export async function runNested(a: NestedArgs, o: NestedOptions = {}): Promise<NestedResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const projectDir = o.projectDir ?? defaultProjectDir();
  if (!findExecutable(QEMU_BINARY)) throw new UserError(QEMU_MISSING);
  const out = resolve(a.out);
  try {
    mkdirSync(out, { recursive: true });
  } catch (err) {
    throw new UserError(`${out}: cannot create the output folder (${messageOf(err)})`);
  }

  // The outer guest.
  const outer = await outerKernel(log);
  const modules = await kernelModules(outer.release, log);
  const busybox = await findStaticBusybox({ log });
  const initramfs = buildNestedInitramfs({ projectDir, runtime: runtimeFiles(projectDir), busybox: busybox.path, modules }, log);

  // The inner run's files, prepared here (downloads, decompression and kallsyms decoding are fast on the
  // host and slow under TCG), then found in the cache by the inner boot-trace.
  const prepared = await prepareCapture({
    engine: 'kvm',
    ...(a.kernel !== undefined ? { kernel: a.kernel } : {}),
    ...(a.guest === 'demo' ? { guest: 'demo' as const } : {}),
    ...(a.initrd !== undefined ? { initrd: a.initrd } : {}),
    ...(a.workload !== undefined ? { workload: a.workload } : {}),
    ...(a.systemMap !== undefined ? { systemMap: a.systemMap } : {}),
    ...(a.decompress !== undefined ? { decompress: a.decompress } : {}),
    log,
  });
  const kernelFile = prepared.setup.kernel.source === 'demo' ? undefined : resolve(prepared.setup.kernel.path);
  const needed = [kernelFile, prepared.bootKernel, prepared.systemMap, prepared.initrd].filter((p): p is string => p !== undefined);
  const cmd = innerCommand(a, projectDir, kernelFile);
  const inputs = writeCpio(inputEntries([...new Set(needed.map((p) => resolve(p)))], runScript(cmd, cacheDir(), projectDir)));

  const work = mkdtempSync(join(tmpdir(), 'boot-trace-nested-'));
  try {
    const disk = join(work, 'disk.img');
    const fd = openSync(disk, 'w');
    try {
      writeSync(fd, inputs);
      ftruncateSync(fd, inputs.length + DISK_HEADROOM);
    } finally {
      closeSync(fd);
    }

    const marks: Record<string, number> = {};
    let error: string | null = null;
    let status: number | null = null;
    const t0 = performance.now();
    const echo = o.echo ?? true;
    const r = await runQemu({
      qemu: QEMU_BINARY,
      args: (serial) => outerQemuArgs({ kernel: outer.vmlinuz, initrd: initramfs.path, disk, memoryMiB: a.outerMemoryMiB, serial }),
      consoleFile: join(out, NESTED_CONSOLE),
      timeoutS: a.wallS,
      partialLineMs: 250,
      echo: (text) => {
        const m = /^NESTED:(\w+)(?::(.*))?$/.exec(text.trimEnd());
        if (m) {
          marks[m[1]!] ??= Math.round(performance.now() - t0);
          if (m[1] === 'error') error ??= m[2] ?? 'unknown';
          if (m[1] === 'status') status = Number(m[2]);
        }
        if (echo) process.stderr.write(text);
      },
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const timings = { ...marks, total: Math.round(performance.now() - t0) };
    const profile = {
      outer: { kernel: outer.vmlinuz, initramfs: initramfs.path, initramfs_cached: initramfs.cached, initramfs_ms: Math.round(initramfs.ms), memory_mib: a.outerMemoryMiB, cmdline: OUTER_CMDLINE, modules: modules.order },
      inner: { command: cmd.slice(2), status },
      qemu: { args: r.args, reason: r.reason, status: r.status, messages: r.messages.trim() },
      timings_ms: timings,
    };
    writeFileSync(join(out, NESTED_PROFILE), JSON.stringify(profile, null, 2) + '\n');

    if (r.reason === 'timeout') throw new UserError(`the outer QEMU did not finish within --wall ${a.wallS} s (last step: ${lastStep(marks)}); see ${join(out, NESTED_CONSOLE)}`, 124);
    if (r.reason === 'interrupted') throw new UserError('interrupted', 130);
    if (error !== null) throw new UserError(`the outer guest failed: ${error}; see ${join(out, NESTED_CONSOLE)}`);
    if (status === null || marks.written === undefined) {
      throw new UserError(`the outer guest ended before writing its results (last step: ${lastStep(marks)}; QEMU ${r.reason}${r.messages ? `: ${r.messages.trim().split('\n').pop()}` : ''}); see ${join(out, NESTED_CONSOLE)}`);
    }
    copyResults(readFileSync(disk), out, disk);
    return { status, out, timings };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function lastStep(marks: Record<string, number>): string {
  const names = Object.keys(marks);
  return names.length ? names[names.length - 1]! : 'none (the outer kernel did not reach /init)';
}

/** The outer QEMU's arguments: TCG with the `max` CPU model (SVM + NPT), q35, the initramfs, the disk. */
export function outerQemuArgs(o: { kernel: string; initrd: string; disk: string; memoryMiB: number; serial: string }): string[] {
  return [
    '-accel', 'tcg',
    '-cpu', 'max',
    '-machine', 'q35',
    '-smp', '1',
    '-m', String(o.memoryMiB),
    '-display', 'none',
    '-monitor', 'none',
    '-nic', 'none',
    '-chardev', `file,id=serial0,path=${o.serial.replaceAll(',', ',,')}`,
    '-serial', 'chardev:serial0',
    '-no-reboot',
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', OUTER_CMDLINE,
    '-drive', `file=${o.disk.replaceAll(',', ',,')},format=raw,if=virtio`,
  ];
}

/** The inputs archive: /nested/run.sh and the host files at their own paths (with their folders). */
export function inputEntries(files: readonly string[], run: string, read: (p: string) => Buffer = (p) => readFileSync(p)): CpioEntry[] {
  const entries: CpioEntry[] = parentDirs([...files, GUEST_RUN_SCRIPT]).map((path) => ({ type: 'dir', path }));
  for (const f of files) entries.push({ type: 'file', path: f, data: read(f) });
  entries.push({ type: 'file', path: GUEST_RUN_SCRIPT, data: run });
  return entries;
}

/**
 * Unpack the output archive (from byte 0 of the disk image) into `out`: result/* into `out` itself,
 * inner.log as nested-inner.log. Throws a UserError when the archive is missing or malformed.
 */
export function copyResults(image: Buffer, out: string, what: string): void {
  const members = readCpio(image, `${what} (the outer guest's output archive)`);
  for (const m of members) {
    const name = m.name.replace(/^\.\//, '');
    if (name === '.' || name === '' || name.split('/').includes('..')) continue;
    let dest: string;
    if (name === 'result' || name.startsWith('result/')) dest = join(out, name.slice('result'.length));
    else if (name === OUT_LOG) dest = join(out, NESTED_INNER_LOG);
    else if (name === OUT_STATUS) continue;
    else dest = join(out, 'nested-extra', name);
    const type = m.mode & 0o170000;
    if (type === S_IFDIR) mkdirSync(dest, { recursive: true });
    else if (type === S_IFREG) {
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, m.data);
    }
  }
}
