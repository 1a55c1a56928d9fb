/**
 * The nested-KVM harness's parts that need no QEMU (capture/nested/): its command line, the module load
 * order from real Debian modules' .modinfo, ldd parsing, the outer initramfs's entries, the inputs archive
 * and reading the output archive back.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCpio, writeCpio } from '../capture/appliance/cpio.js';
import { optionValue, parseNestedArgs, shellQuote } from '../capture/nested/args.js';
import { copyResults, innerCommand, inputEntries, outerQemuArgs, runScript } from '../capture/nested/harness.js';
import { initramfsEntries, parentDirs } from '../capture/nested/initramfs.js';
import { GUEST_RESULT_DIR, nestedInitScript } from '../capture/nested/init-script.js';
import { loadOrder, moduleNameOf, readModInfo, WANTED_MODULES, type ModInfo } from '../capture/nested/modules.js';
import { parseLdd, productionPackages, runtimeFiles } from '../capture/nested/runtime.js';
import { cacheDir } from '../src/cache.js';
import { ROOT } from './helpers.js';
import { onPath } from './preconditions.js';

describe('parseNestedArgs', () => {
  it('splits harness options, OUT, the command and its arguments', () => {
    const a = parseNestedArgs(['--wall', '90', 'out/x', 'capture', '--trace-from', 'start_kernel', '--workload=ls /', '--kernel', 'k']);
    expect(a).toMatchObject({ wallS: 90, out: 'out/x', command: 'capture', kernel: 'k', workload: 'ls /' });
    expect(a.args).toEqual(['--trace-from', 'start_kernel', '--workload=ls /', '--kernel', 'k']);
    expect(parseNestedArgs(['o', 'benchmark', '--runs', '3']).command).toBe('benchmark');
  });

  it('refuses what the harness cannot do, in one line', () => {
    expect(() => parseNestedArgs(['o'])).toThrow(/usage: nested-kvm.sh/);
    expect(() => parseNestedArgs(['o', 'report'])).toThrow('report: the harness runs capture or benchmark');
    expect(() => parseNestedArgs(['o', 'capture', '--out', 'x'])).toThrow(/--out: the harness sets the inner output folder/);
    expect(() => parseNestedArgs(['o', 'capture', '--engine', 'qemu'])).toThrow(/--engine qemu: the harness exists to run the KVM engine/);
    expect(() => parseNestedArgs(['--wall', '-1', 'o', 'capture'])).toThrow('--wall -1: give a positive number');
    expect(() => parseNestedArgs(['--cpus', '2', 'o', 'capture'])).toThrow(/--cpus: unknown harness option/);
    expect(() => optionValue(['--kernel'], 'kernel')).toThrow('--kernel needs a value');
  });

  it('quotes arguments for busy box sh, so any workload survives', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    const quoted = ['ls /proc; echo "$HOME"', "a'b", ''].map(shellQuote).join(' ');
    if (onPath('sh')) expect(execFileSync('sh', ['-c', `for a in ${quoted}; do printf '[%s]' "$a"; done`], { encoding: 'utf8' })).toBe(`[ls /proc; echo "$HOME"][a'b][]`);
  });
});

describe('innerCommand and run.sh', () => {
  it('adds --engine kvm, the prepared kernel and --out, and keeps what the user gave', () => {
    const a = parseNestedArgs(['o', 'capture', '--timeout', '30']);
    const cmd = innerCommand(a, '/p', '/c/vmlinuz', '/usr/bin/node');
    expect(cmd).toEqual(['/usr/bin/node', '/p/dist/src/cli.js', 'capture', '--timeout', '30', '--engine', 'kvm', '--kernel', '/c/vmlinuz', '--out', GUEST_RESULT_DIR]);
    const own = innerCommand(parseNestedArgs(['o', 'capture', '--engine=kvm', '--kernel', 'mine']), '/p', '/c/vmlinuz', '/n');
    expect(own).toEqual(['/n', '/p/dist/src/cli.js', 'capture', '--engine=kvm', '--kernel', 'mine', '--out', GUEST_RESULT_DIR]);
    const script = runScript(cmd, "/root/.cache/boot-trace", '/p');
    expect(script).toContain("export HOME=/root BOOT_TRACE_CACHE='/root/.cache/boot-trace'");
    expect(script).toContain(`set -- '/usr/bin/node' '/p/dist/src/cli.js' 'capture'`);
  });

  it('boots the outer guest under TCG with the max CPU model (SVM + NPT) and a raw virtio disk', () => {
    const args = outerQemuArgs({ kernel: '/k', initrd: '/i', disk: '/d,1.img', memoryMiB: 3072, serial: '/f' });
    expect(args.join(' ')).toContain('-accel tcg -cpu max -machine q35 -smp 1 -m 3072');
    expect(args).toContain('file=/d,,1.img,format=raw,if=virtio');
  });
});

describe('kernel modules', () => {
  it('moduleNameOf: dashes become underscores, the extension goes', () => {
    expect(moduleNameOf('kvm-amd.ko')).toBe('kvm_amd');
    expect(moduleNameOf('virtio_blk.ko.xz')).toBe('virtio_blk');
  });

  it('loadOrder puts every module after what it depends on, and names a missing one', () => {
    const infos = new Map<string, ModInfo>([
      ['kvm_amd', { name: 'kvm_amd', depends: ['kvm'] }],
      ['kvm', { name: 'kvm', depends: ['irqbypass'] }],
      ['irqbypass', { name: 'irqbypass', depends: [] }],
      ['virtio_blk', { name: 'virtio_blk', depends: ['virtio', 'virtio_ring'] }],
      ['virtio', { name: 'virtio', depends: [] }],
      ['virtio_ring', { name: 'virtio_ring', depends: [] }],
    ]);
    expect(loadOrder(['virtio_blk', 'kvm_amd'], infos)).toEqual(['virtio', 'virtio_ring', 'virtio_blk', 'irqbypass', 'kvm', 'kvm_amd']);
    expect(() => loadOrder(['virtio_pci'], infos)).toThrow('kernel modules: virtio_pci is needed but not in the package');
    infos.set('irqbypass', { name: 'irqbypass', depends: ['kvm_amd'] });
    expect(() => loadOrder(['kvm_amd'], infos)).toThrow('dependency cycle kvm_amd -> kvm -> irqbypass -> kvm_amd');
  });

  it("reads name= and depends= from Debian's own modules (.modinfo) and orders them", (ctx) => {
    const base = join(cacheDir('nested', 'modules'));
    const rel = readdirSync(base).find((d) => existsSync(join(base, d, 'kvm_amd.ko')));
    if (!rel) ctx.skip(`no Debian kernel modules cached in ${base} (scripts/nested-kvm.sh fetches them with apt-get)`);
    const dir = join(base, rel!);
    const infos = new Map<string, ModInfo>();
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.ko'))) {
      const i = readModInfo(readFileSync(join(dir, f)), f);
      infos.set(i.name, i);
    }
    expect(infos.get('kvm_amd')!.depends).toEqual(['kvm']);
    expect(infos.get('virtio_blk')!.depends.sort()).toEqual(['virtio', 'virtio_ring']);
    const order = loadOrder(WANTED_MODULES, infos);
    expect(order.indexOf('kvm')).toBeLessThan(order.indexOf('kvm_amd'));
    expect(order.indexOf('irqbypass')).toBeLessThan(order.indexOf('kvm'));
    expect(order.indexOf('virtio_ring')).toBeLessThan(order.indexOf('virtio_pci'));
    expect(order.slice(-1)).toEqual(['kvm_amd']);
    expect(() => readModInfo(readFileSync(process.execPath).subarray(0, 1 << 20), 'node')).toThrow();
  });
});

describe('the node runtime and the project', () => {
  it('parseLdd takes the resolved paths and the loader', () => {
    const text = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f19)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f19)',
    ].join('\n');
    expect(parseLdd(text)).toEqual(['/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });

  it("production packages come from package-lock.json, without vitest or typescript", () => {
    const pkgs = productionPackages(ROOT);
    expect(pkgs).toContain('node_modules/koffi');
    expect(pkgs).toContain('node_modules/yargs');
    expect(pkgs.some((p) => p.includes('vitest') || p.includes('typescript'))).toBe(false);
  });

  it('runtimeFiles has node, its loader, libc, the CLI and koffi, each once', (ctx) => {
    if (!onPath('ldd')) ctx.skip('`ldd` not found (apt-get install libc-bin)');
    if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js'))) ctx.skip('dist/ not built (npm run build)');
    const files = runtimeFiles(ROOT);
    const paths = files.map((f) => f.guestPath);
    expect(new Set(paths).size).toBe(paths.length);
    expect(paths).toContain(process.execPath);
    expect(paths).toContain(join(ROOT, 'dist', 'src', 'cli.js'));
    expect(paths.some((p) => /\/ld-linux-x86-64\.so\.2$/.test(p))).toBe(true);
    expect(paths.some((p) => /\/libc\.so\.6$/.test(p))).toBe(true);
    expect(paths.some((p) => /koffi.*\/linux_x64\/koffi\.node$/.test(p))).toBe(true);
    expect(paths.some((p) => p.includes('/node_modules/vitest/'))).toBe(false);
  });
});

describe('archives', () => {
  it('the outer initramfs lists every folder before its files, with /init and /dev/console', () => {
    expect(parentDirs(['/a/b/c', '/a/d'])).toEqual(['a', 'a/b']);
    const entries = initramfsEntries([{ guestPath: '/usr/bin/node', hostPath: process.execPath }], [{ guestPath: '/init', data: nestedInitScript(), mode: 0o755 }], () => Buffer.from('x'));
    const members = readCpio(writeCpio(entries));
    const names = members.map((m) => m.name);
    expect(names.indexOf('usr')).toBeLessThan(names.indexOf('usr/bin'));
    expect(names.indexOf('usr/bin')).toBeLessThan(names.indexOf('usr/bin/node'));
    expect(names).toContain('dev/console');
    const init = members.find((m) => m.name === 'init')!;
    expect(init.mode & 0o777).toBe(0o755);
    expect(init.data.toString()).toMatch(/^#!\/bin\/busybox sh/);
  });

  it('the inputs archive carries run.sh and the files at their own paths; the output archive unpacks into OUT', () => {
    const inputs = readCpio(writeCpio(inputEntries(['/root/.cache/boot-trace/kernels/k/vmlinuz-k'], 'set -- x\n', () => Buffer.from('KERNEL'))));
    expect(inputs.map((m) => m.name)).toEqual(['nested', 'root', 'root/.cache', 'root/.cache/boot-trace', 'root/.cache/boot-trace/kernels', 'root/.cache/boot-trace/kernels/k', 'root/.cache/boot-trace/kernels/k/vmlinuz-k', 'nested/run.sh']);

    // What busybox `find . | cpio -o -H newc` writes in the outer guest, read back from a disk image.
    const out = writeCpio([
      { type: 'dir', path: 'result' },
      { type: 'file', path: 'result/profile.json', data: '{"engine":"kvm"}' },
      { type: 'file', path: 'inner.log', data: 'log' },
      { type: 'file', path: 'status', data: '0\n' },
    ]);
    const image = Buffer.concat([out, Buffer.alloc(4096)]); // the rest of the disk
    const dest = mkdtempSync(join(tmpdir(), 'nested-out-'));
    copyResults(image, dest, 'disk.img');
    expect(readFileSync(join(dest, 'profile.json'), 'utf8')).toBe('{"engine":"kvm"}');
    expect(readFileSync(join(dest, 'nested-inner.log'), 'utf8')).toBe('log');
    expect(existsSync(join(dest, 'status'))).toBe(false);
    expect(() => copyResults(Buffer.alloc(4096), dest, 'disk.img')).toThrow(/disk.img \(the outer guest's output archive\): no newc magic/);
  });
});
