/**
 * System calls that do not return (exit, exit_group) end at the exiting task's do_task_dead, not at the next
 * user instruction of whatever task runs next (analyzers/syscalls.ts, docs/trace-format.md). On a real
 * whole-boot recording: every exit_group's duration is exactly entry -> first do_task_dead after it (read here
 * from the recording's text export), the recording and its text export give the same rows, and with the
 * do_task_dead lines taken out the calls have no duration and are left out of the summary's times.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliJson, runCli } from './helpers.js';
import { busyboxMissing, commandMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

interface Row { time_us: number; syscall: string; duration_us: number | null; returns: boolean; complete: boolean; process?: string }
interface Sum { syscall: string; count: number; total_us: number; mean_us: number | null; max_us: number | null; untimed: number }
const BOOT_MS = 300_000;

describeNeeds(firstMissing(qemuMissing(), commandMissing('cc', 'gcc'), defaultKernelMissing(), busyboxMissing()), 'non-returning system calls on a whole-boot recording', () => {
  let tmp: string;
  let cap: string;
  let text: string;
  let deadTimes: number[];
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bt-noreturn-'));
    cap = join(tmp, 'cap');
    const r = runCli(['capture', '--mode', 'trace', '--out', cap, '--no-summary'], { timeoutMs: BOOT_MS });
    if (r.status !== 0) throw new Error(`capture --mode trace exited ${r.status}: ${r.stderr}`);
    text = join(tmp, 'trace.txt');
    const e = runCli(['export', cap, '--to', 'text', '-o', text], { timeoutMs: BOOT_MS });
    if (e.status !== 0) throw new Error(`export --to text exited ${e.status}: ${e.stderr}`);
    // Every entry of do_task_dead (offset 0) in the text export, read here without the analyzer.
    deadTimes = [];
    for await (const line of createInterface({ input: createReadStream(text, 'latin1') })) {
      if (line.includes(' do_task_dead in section')) deadTimes.push(Number(line.slice(0, line.indexOf(' '))));
    }
  }, 2 * BOOT_MS);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('exit_group ends at the next do_task_dead: same rows from the recording and its text export', () => {
    const fromRec = cliJson<Row[]>(['syscalls', cap]);
    const fromText = cliJson<Row[]>(['syscalls', text]);
    expect(fromText).toEqual(fromRec.map(({ process: _p, ...rest }) => rest));
    const exits = fromRec.filter((r) => r.syscall === 'exit_group' || r.syscall === 'exit');
    expect(exits.length).toBeGreaterThan(5);
    expect(deadTimes.length).toBeGreaterThanOrEqual(exits.length);
    for (const x of exits) {
      expect(x.returns).toBe(false);
      const dead = deadTimes.find((t) => t >= x.time_us)!;
      expect(x.duration_us, `exit_group at ${x.time_us}`).toBeCloseTo(dead - x.time_us, 2);
    }
    expect(fromRec.filter((r) => r.syscall !== 'exit_group' && r.syscall !== 'exit').every((r) => r.returns)).toBe(true);
    // Not charged with other tasks: all exits together take less than a tenth of user space's span.
    const user = fromRec[fromRec.length - 1]!.time_us - fromRec[0]!.time_us;
    const total = exits.reduce((a, x) => a + x.duration_us!, 0);
    expect(total).toBeLessThan(user / 10);
    const sum = cliJson<Sum[]>(['syscalls', cap, '--summary']).find((s) => s.syscall === 'exit_group')!;
    expect(sum.untimed).toBe(0);
    expect(sum.total_us).toBeCloseTo(exits.filter((x) => x.syscall === 'exit_group').reduce((a, x) => a + x.duration_us!, 0), 1);
    expect(cliJson<Sum[]>(['syscalls', text, '--summary'])).toEqual(cliJson<Sum[]>(['syscalls', cap, '--summary']));
  });

  it('without a do_task_dead the exits have no duration and stay out of the summary\'s times', () => {
    // The same text with the lines of do_task_dead taken out: nothing shows where the task died.
    const cut = join(tmp, 'no-dead.txt');
    // (grep: the export is about 1 GB, more than one JavaScript string holds.)
    const fd = openSync(cut, 'w');
    const g = spawnSync('grep', ['-v', ' do_task_dead', text], { stdio: ['ignore', fd, 'pipe'] });
    closeSync(fd);
    expect(g.status, String(g.stderr)).toBe(0);
    const rows = cliJson<Row[]>(['syscalls', cut]);
    const exits = rows.filter((r) => r.syscall === 'exit_group');
    expect(exits.length).toBeGreaterThan(5);
    // The boot's last exit_group (busybox's poweroff path) may run to the trace's end: a lower bound, complete false.
    for (const x of exits) expect(x.duration_us === null || !x.complete, `exit_group at ${x.time_us}`).toBe(true);
    expect(exits.filter((x) => x.duration_us === null).length).toBeGreaterThanOrEqual(exits.length - 1);
    const sum = cliJson<Sum[]>(['syscalls', cut, '--summary']).find((s) => s.syscall === 'exit_group')!;
    expect(sum.count).toBe(exits.length);
    expect(sum.untimed).toBe(exits.filter((x) => x.duration_us === null).length);
    expect(sum.total_us).toBeCloseTo(exits.reduce((a, x) => a + (x.duration_us ?? 0), 0), 1);
    rmSync(cut, { force: true });
  }, 120_000);
});
