/**
 * Hostile guests through the CLI (issue 15): each capture ends with a named stop within its time, exits 0
 * (or one line and 1), writes a bounded console.log, and writes nothing outside --out and the cache (run
 * with an empty working folder, HOME and TMPDIR, which must stay empty). The guests: test/fuzz/hostile-guests.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheDir } from '../src/cache.js';
import { haveCc } from './elf-fixture.js';
import { buildHostileGuest, HOSTILE_GUESTS, type HostileGuest } from './fuzz/hostile-guests.js';
import { CLI, ROOT } from './helpers.js';

/**
 * Console lines are cut at 64 KiB of guest bytes (capture/console.ts); a byte that is not UTF-8 is written
 * as U+FFFD (3 bytes), and a stamp comes on top.
 */
const CONSOLE_LINE_MAX = 3 * 64 * 1024 + 64;

const kvm = existsSync('/dev/kvm');

/** Every file under `dir`, recursively, relative to it. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Files of the repository (outside dependencies, builds and test output) changed since `since` (ms). */
function repoChangedSince(since: number): string[] {
  return files(ROOT).filter((f) => !/^(node_modules|\.git|dist|dist-base|test-output)\//.test(f) && statSync(join(ROOT, f)).mtimeMs > since);
}

function capture(g: HostileGuest) {
  const elf = buildHostileGuest(g);
  const sandbox = mkdtempSync(join(tmpdir(), `bt-hostile-${g.name}-`));
  const [cwd, home, tmp, out] = ['cwd', 'home', 'tmp', 'out'].map((d) => join(sandbox, d));
  for (const d of [cwd, home, tmp]) mkdirSync(d!);
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'capture', '--kernel', elf, '--engine', 'kvm', '--timeout', String(g.timeout), '--out', out!, '--no-summary'], {
    cwd, encoding: 'utf8', timeout: (g.timeout + 60) * 1000,
    // The cache stays where it is (the guest was built there); everything else a process might write to is fresh.
    env: { ...process.env, HOME: home, TMPDIR: tmp, XDG_CACHE_HOME: undefined, BOOT_TRACE_CACHE: cacheDir() },
  });
  const seconds = (Date.now() - started) / 1000;
  const profile = existsSync(join(out!, 'profile.json')) ? (JSON.parse(readFileSync(join(out!, 'profile.json'), 'utf8')) as { exit: { reason: string; detail: string } }) : null;
  return { r, seconds, profile, out: out!, stray: [cwd, home, tmp].flatMap((d) => files(d!).map((f) => join(d!, f))), started };
}

describe('hostile guests', () => {
  for (const g of HOSTILE_GUESTS) {
    // Defect (engine, KVM run loop): with the in-kernel LAPIC, KVM keeps a halted vCPU in the kernel, so
    // HLT with IF=0 is only found when --timeout stops the vCPU (profile.json says "found when --timeout
    // stopped the vCPU"), not when it happens. The nested-KVM work fixes HLT detection; remove `.fails` then.
    const test = g.name === 'hlt-if0' ? it.fails : it;
    test(`${g.name} (${g.does}) ends with a named stop (${g.stops.join('/')}) within ${g.within} s`, (ctx) => {
      if (!kvm) ctx.skip('no /dev/kvm: the KVM engine cannot run');
      if (!haveCc()) ctx.skip('no cc to build the hostile guests: apt-get install gcc');
      const c = capture(g);
      expect(c.r.error, c.r.stderr).toBeUndefined();
      expect(c.r.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(c.r.status, c.r.stderr).toBe(0);
      expect(c.profile?.exit.reason, JSON.stringify(c.profile?.exit)).toBeOneOf(g.stops);
      expect(c.profile!.exit.detail).not.toMatch(/found when --timeout/);
      expect(c.seconds).toBeLessThanOrEqual(g.within);
      // Bounded console: lines cut at the documented length, and no more than the guest could send.
      const consoleLog = readFileSync(join(c.out, 'console.log'));
      expect(consoleLog.length).toBeLessThan(64 << 20);
      let longest = 0;
      for (let s = 0, nl = consoleLog.indexOf(10); s < consoleLog.length; s = nl + 1, nl = consoleLog.indexOf(10, s)) {
        longest = Math.max(longest, (nl < 0 ? consoleLog.length : nl) - s);
        if (nl < 0) break;
      }
      expect(longest).toBeLessThanOrEqual(CONSOLE_LINE_MAX);
      if (g.name === 'serial-flood') expect(consoleLog.length, 'the flood reached console.log').toBeGreaterThan(10_000);
      // Nothing outside --out and the cache.
      expect(files(c.out).sort()).toEqual(['console.log', 'profile.json']);
      expect(c.stray).toEqual([]);
      expect(repoChangedSince(c.started)).toEqual([]);
    }, (g.timeout + 90) * 1000);
  }
});
