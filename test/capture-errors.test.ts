/**
 * Bad input to `boot-trace capture`: one line on stderr naming the problem, exit status 1, through the
 * built CLI. The input checks run before /dev/kvm is opened, so most of these run on any machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoGuestPath } from '../capture/guest/build.js';
import { tinyElf } from './capture-helpers.js';
import { runCli, testOutput } from './helpers.js';

const dir = testOutput('capture-errors');

function fails(args: string[], pattern: RegExp, env: NodeJS.ProcessEnv = {}): void {
  const out = args.includes('--out') ? [] : ['--out', join(dir, 'out')];
  const r = runCli(['capture', ...out, ...args], { env, timeoutMs: 60_000 });
  expect(r.status, r.stderr).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^boot-trace: /);
  expect(lines[0]).toMatch(pattern);
}

describe('capture: bad input', () => {
  it('names a missing kernel', () => {
    fails(['--kernel', join(dir, 'no-such-kernel')], /no-such-kernel: cannot read kernel \(ENOENT/);
  });

  it('rejects a text file as kernel', () => {
    const f = join(dir, 'kernel.txt');
    writeFileSync(f, 'this is not a kernel\n'.repeat(100));
    fails(['--kernel', f], /kernel\.txt: not a bzImage or ELF vmlinux/);
  });

  it('rejects a truncated kernel', () => {
    const f = join(dir, 'truncated.elf');
    writeFileSync(f, readFileSync(demoGuestPath()).subarray(0, 200));
    fails(['--kernel', f], /truncated\.elf: /);
  });

  it('rejects --memory too small for the kernel', () => {
    // The demo guest loads at 16 MiB.
    fails(['--guest', 'demo', '--memory', '8'], /--memory 8/);
  });

  it('names an unreadable --system-map before booting', () => {
    fails(['--guest', 'demo', '--system-map', join(dir, 'no-such.map')], /no-such\.map: cannot read symbol file \(ENOENT/);
  });

  it('names an output folder it cannot create (without looping on /proc)', () => {
    fails(['--guest', 'demo', '--out', '/proc/boot-trace-no-such-dir'], /\/proc\/boot-trace-no-such-dir: cannot write the capture's output folder/);
  });

  it('refuses a kernel and the demo guest together', () => {
    // (With neither, capture boots the default kernel: test/capture-linux.test.ts.)
    fails(['--kernel', join(dir, 'no-such-kernel'), '--guest', 'demo'], /give either --kernel or --guest, not both/);
  });

  it('says so when there is no KVM device', () => {
    const f = join(dir, 'spin.elf');
    writeFileSync(f, tinyElf(Buffer.from([0xeb, 0xfe])));
    fails(['--kernel', f], /^boot-trace: \/nonexistent\/kvm: no such device \(is the kvm module loaded\?\)$/, {
      BOOT_TRACE_KVM_DEVICE: '/nonexistent/kvm',
    });
  });

  it('says so when the device is not a KVM device', () => {
    const f = join(dir, 'spin.elf');
    writeFileSync(f, tinyElf(Buffer.from([0xeb, 0xfe])));
    fails(['--kernel', f], /\/dev\/null: not a KVM device/, { BOOT_TRACE_KVM_DEVICE: '/dev/null' });
  });
});
