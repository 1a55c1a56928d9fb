/**
 * Can /dev/kvm run a stock Linux kernel here? The engine probe boots a tiny test guest
 * (samples/probe/probe.S, built with cc into the cache like the demo guest) that executes the
 * instructions a software-backed KVM fails to emulate — lock cmpxchg16b, an int3 through an IDT,
 * xsave/xrstor — and reports each stage on port 0xe9. The verdict names the first one that failed.
 *
 * The guest runs in a child process (probe-main.ts) with a hard timeout: a KVM that wedges, or a koffi
 * crash, must not take the capture with it. That costs a Node start-up (~0.1-0.3 s), so the verdict is
 * cached per boot of the machine (cacheDir('probe')/<boot_id>-<source hash>.json).
 *
 *   const v = probeKvm();   // { ok: false, failedAt: 'cmpxchg16b', reason: 'emulation failure at cmpxchg16b', ... }
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../src/cache.js';
import { messageOf } from '../../src/errors.js';
import { repoRoot } from '../guest/build.js';

/** Port the probe writes its stage numbers to (Bochs' debug port; no device claims it here). */
export const PROBE_PORT = 0xe9;
/** What each stage value means once written: the instruction just completed. */
export const PROBE_STAGES: Record<number, string> = {
  0x01: 'start',
  0x02: 'cmpxchg16b',
  0x03: 'int3',
  0x04: 'xsave',
  0x14: 'xsave (skipped: no XSAVE in CPUID)',
  0xaa: 'done',
};
/** The instruction that comes after each stage: where a failure after that stage happened. */
const NEXT_AFTER: Record<string, string> = {
  none: 'entry',
  start: 'cmpxchg16b',
  cmpxchg16b: 'int3',
  int3: 'xsave',
  xsave: 'the end of the probe',
  'xsave (skipped: no XSAVE in CPUID)': 'the end of the probe',
};
/** Whole-probe limit: the child is killed after this long. */
export const PROBE_TIMEOUT_MS = 10_000;

/** What the child reports (one JSON line on stdout). */
export interface ProbeRun {
  /** Stage values seen on PROBE_PORT, in order. */
  stages: number[];
  /** How the guest ended: 'done' (wrote 0xaa), or the capture's stop reason (internal-error, shutdown, ...). */
  end: string;
  detail: string;
  rip?: string;
  /** Set when the VM could not even be built (no /dev/kvm, permission, missing capability). */
  error?: string;
}

export interface ProbeVerdict {
  ok: boolean;
  /** The instruction that failed ('cmpxchg16b', 'int3', 'xsave', 'entry', ...), when !ok. */
  failedAt?: string;
  /** One phrase for the fallback message: 'emulation failure at cmpxchg16b', '/dev/kvm cannot be opened (EACCES)'. */
  reason: string;
  /** Milliseconds the probe took (0 when it came from the cache). */
  ms: number;
  cached: boolean;
}

/** The verdict from the child's report (pure: unit-tested with synthetic reports). */
export function probeVerdict(run: ProbeRun): Omit<ProbeVerdict, 'ms' | 'cached'> {
  if (run.error !== undefined) return { ok: false, failedAt: 'setup', reason: run.error };
  if (run.end === 'done' && run.stages.includes(0xaa)) return { ok: true, reason: 'all probe instructions ran' };
  const last = run.stages.length > 0 ? (PROBE_STAGES[run.stages[run.stages.length - 1]!] ?? 'unknown') : 'none';
  const failedAt = NEXT_AFTER[last] ?? 'unknown';
  const what = /emulation failure/.test(run.detail) ? 'emulation failure'
    : run.end === 'shutdown' ? 'triple fault'
    : run.end === 'timeout' ? 'no progress'
    : run.end;
  return { ok: false, failedAt, reason: `${what} at ${failedAt}` };
}

/** Parse the child's stdout; anything unexpected becomes a failed run saying what was seen. */
export function parseProbeOutput(stdout: string, stderr: string, status: number | null, signal: string | null): ProbeRun {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('{'));
  if (line) {
    try {
      const r = JSON.parse(line) as ProbeRun;
      if (Array.isArray(r.stages) && typeof r.end === 'string') return r;
    } catch {
      /* fall through */
    }
  }
  const why = signal ? `killed by ${signal}` : `exit status ${status}`;
  const first = stderr.split('\n').find((l) => l.trim())?.trim();
  return { stages: [], end: 'crash', detail: `probe process ${why}${first ? `: ${first}` : ''}`, error: `the KVM probe failed (${why}${first ? `: ${first}` : ''})` };
}

/** Build the probe ELF with cc into cacheDir('probe', <hash>)/probe.elf (temporary name, then rename). */
export function probeGuestPath(): string {
  const src = join(repoRoot(), 'samples', 'probe', 'probe.S');
  const hash = sourceHash(src);
  const dir = cacheDir('probe', hash);
  const out = join(dir, 'probe.elf');
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `probe.elf.tmp-${process.pid}`);
  const cc = process.env.CC || 'cc';
  const r = spawnSync(cc, [...CC_FLAGS, '-o', tmp, src], { encoding: 'utf8', timeout: 60_000 });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot build the KVM probe with ${cc}: ${(r.error ? messageOf(r.error) : r.stderr.trim().split('\n')[0]!).replaceAll(tmp, out)}`);
  }
  renameSync(tmp, out);
  return out;
}

/** Linked at physical = virtual 0x1000000, no PIE, nothing but the probe's own code and data. */
const CC_FLAGS = ['-nostdlib', '-static', '-no-pie', '-Wl,-Ttext=0x1000000', '-Wl,--build-id=none', '-Wl,-z,max-page-size=0x1000', '-Wl,-z,noexecstack'];

function sourceHash(src: string): string {
  return createHash('sha256').update(readFileSync(src)).update(CC_FLAGS.join(' ')).digest('hex').slice(0, 16);
}

/** This boot of the machine (a new value after every reboot); 'unknown' where /proc does not say. */
function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Run the probe (or take this boot's cached verdict). `device` is the KVM device node
 * (BOOT_TRACE_KVM_DEVICE, for tests); verdicts for another node are not cached.
 */
export function probeKvm(opts: { noCache?: boolean } = {}): ProbeVerdict {
  const device = process.env.BOOT_TRACE_KVM_DEVICE;
  const src = join(repoRoot(), 'samples', 'probe', 'probe.S');
  const cacheFile = join(cacheDir('probe'), `${bootId()}-${sourceHash(src)}.json`);
  const useCache = !opts.noCache && device === undefined && bootId() !== 'unknown';
  if (useCache && existsSync(cacheFile)) {
    try {
      const v = JSON.parse(readFileSync(cacheFile, 'utf8')) as ProbeVerdict;
      if (typeof v.ok === 'boolean' && typeof v.reason === 'string') {
        return { ok: v.ok, reason: v.reason, ...(v.failedAt !== undefined ? { failedAt: v.failedAt } : {}), ms: 0, cached: true };
      }
    } catch {
      /* rebuilt below */
    }
  }
  const t0 = performance.now();
  let run: ProbeRun;
  try {
    const elf = probeGuestPath();
    // The child runs compiled JavaScript: next to this file in dist/, or dist/'s copy when this is the .ts source (vitest).
    const here = fileURLToPath(import.meta.url);
    const main = here.endsWith('.ts') ? join(repoRoot(), 'dist', 'capture', 'probe', 'probe-main.js') : join(dirname(here), 'probe-main.js');
    const r = spawnSync(process.execPath, [main, elf], { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL' });
    run = r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT'
      ? { stages: [], end: 'timeout', detail: `the probe did not finish within ${PROBE_TIMEOUT_MS / 1000} s` }
      : parseProbeOutput(r.stdout ?? '', r.stderr ?? '', r.status, r.signal);
  } catch (err) {
    run = { stages: [], end: 'crash', detail: messageOf(err), error: messageOf(err) };
  }
  const verdict: ProbeVerdict = { ...probeVerdict(run), ms: performance.now() - t0, cached: false };
  // Only a verdict about KVM is cached; a probe that could not run at all (build, crash) is asked again next time.
  if (useCache && run.error === undefined) {
    const tmp = `${cacheFile}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, JSON.stringify({ ...verdict, run }) + '\n');
      renameSync(tmp, cacheFile);
    } catch {
      /* a verdict that cannot be cached is still a verdict */
    }
  }
  return verdict;
}
