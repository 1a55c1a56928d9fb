/** Exact answers of the three trace analyzers on the samples, through the CLI, in all three formats. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { CLI, cliJson, runCli, sample } from './helpers.js';

interface Hot { function: string; time_us: number; percent: number; lines: number }
interface First { function: string; first_us: number }
interface Call { time_us: number; syscall: string; duration_us: number; user_address: string; complete: boolean }
interface Summary { syscall: string; count: number; total_us: number; mean_us: number; max_us: number }

describe('hot-functions', () => {
  // Self times worked out by hand from samples/2016-timer-interrupt.log (span 23.868 us).
  const timerExpected: Hot[] = [
    { function: 'smp_apic_timer_interrupt', time_us: 11.328, percent: 47.46, lines: 4 },
    { function: 'native_apic_mem_write', time_us: 2.501, percent: 10.48, lines: 1 },
    { function: 'local_apic_timer_interrupt', time_us: 1.946, percent: 8.15, lines: 1 },
    { function: 'apic_timer_interrupt', time_us: 1.698, percent: 7.11, lines: 1 },
    { function: 'tick_periodic', time_us: 1.465, percent: 6.14, lines: 1 },
    { function: 'rcu_irq_enter', time_us: 1.317, percent: 5.52, lines: 2 },
    { function: '_raw_spin_lock', time_us: 1.295, percent: 5.43, lines: 1 },
    { function: 'irq_enter', time_us: 1.164, percent: 4.88, lines: 2 },
    { function: 'tick_handle_periodic', time_us: 0.6, percent: 2.51, lines: 1 },
    { function: 'exit_idle', time_us: 0.554, percent: 2.32, lines: 1 },
    { function: 'do_timer', time_us: 0, percent: 0, lines: 1 },
  ];

  it('gives each line the time until the next, folding offsets into functions', () => {
    expect(cliJson<Hot[]>(['hot-functions', sample('2016-timer-interrupt.log'), '--top', '0'])).toEqual(timerExpected);
  });

  it('reads CRLF files and stdin the same way', () => {
    expect(cliJson<Hot[]>(['hot-functions', sample('2016-timer-interrupt-crlf.log'), '--top', '0'])).toEqual(timerExpected);
    const stdin = readFileSync(sample('2016-timer-interrupt.log'));
    expect(cliJson<Hot[]>(['hot-functions', '-', '--top', '0'], { input: stdin })).toEqual(timerExpected);
  });

  it('limits rows with --top', () => {
    expect(cliJson<Hot[]>(['hot-functions', sample('2016-timer-interrupt.log'), '--top', '2'])).toEqual(timerExpected.slice(0, 2));
  });

  it('buckets bare addresses into [user] and [unresolved]', () => {
    const rows = cliJson<Hot[]>(['hot-functions', sample('syscalls.log'), '--top', '0']);
    const byName = Object.fromEntries(rows.map((r) => [r.function, r]));
    // [user] lines at 100, 101.5, 126, 130, 137, 150: 1.5 + 0.5 + 4 + 1 + 3 + 1 us.
    expect(byName['[user]']).toEqual({ function: '[user]', time_us: 11, percent: 20, lines: 6 });
    expect(byName['[unresolved]']).toEqual({ function: '[unresolved]', time_us: 2, percent: 3.64, lines: 1 });
    // 104 -> 110 and 120 -> 125.
    expect(byName['__x64_sys_write']).toMatchObject({ time_us: 11, lines: 2 });
  });

  it('skips malformed lines and counts negative deltas as zero', () => {
    const r = runCli(['hot-functions', sample('with-malformed.log'), '--format', 'json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { function: 'start_kernel', time_us: 3, percent: 60, lines: 1 },
      { function: 'setup_arch', time_us: 2, percent: 40, lines: 1 },
      { function: 'mm_init', time_us: 0, percent: 0, lines: 1 },
    ]);
    expect(r.stderr).toMatch(/with-malformed\.log:3: malformed line skipped/);
    const back = cliJson<Hot[]>(['hot-functions', sample('time-backwards.log')]);
    // 50 -> 52 (2 us), 52 -> 51 (backwards: 0), 51 -> 55 (4 us): 6 us counted, all of it do_one_initcall's.
    // (Percent is of the time counted, not of the 5 us span, which would make it 120%.)
    expect(back).toEqual([
      { function: 'do_one_initcall', time_us: 6, percent: 100, lines: 2 },
      { function: 'kernel_init', time_us: 0, percent: 0, lines: 1 },
      { function: 'pci_subsys_init', time_us: 0, percent: 0, lines: 1 },
    ]);
  });

  it('writes CSV with a header and an aligned table', () => {
    const csv = runCli(['hot-functions', sample('2016-timer-interrupt.log'), '--top', '2', '--format', 'csv']);
    expect(csv.stdout).toBe('function,time_us,percent,lines\nsmp_apic_timer_interrupt,11.328,47.46,4\nnative_apic_mem_write,2.501,10.48,1\n');
    const table = runCli(['hot-functions', sample('2016-timer-interrupt.log'), '--top', '2', '--format', 'table']);
    expect(table.stdout.split('\n')).toEqual([
      'function                  time (us)      %  lines',
      'smp_apic_timer_interrupt     11.328  47.46      4',
      'native_apic_mem_write         2.501  10.48      1',
      '',
    ]);
  });

  it('gives empty results for an empty trace in every format', () => {
    expect(runCli(['hot-functions', sample('empty.log'), '--format', 'json']).stdout).toBe('[]\n');
    expect(runCli(['hot-functions', sample('empty.log'), '--format', 'csv']).stdout).toBe('function,time_us,percent,lines\n');
    expect(runCli(['hot-functions', sample('empty.log'), '--format', 'table']).stdout).toBe('function  time (us)  %  lines\n');
  });
});

describe('first-calls', () => {
  it('lists the first timestamp of each function in time order', () => {
    const rows = cliJson<First[]>(['first-calls', sample('2016-init-module.log')]);
    expect(rows.map((r) => r.function)).toEqual([
      'entry_SYSCALL_64', 'sys_init_module', 'capable', 'security_capable', 'cap_capable', 'ns_capable', 'security_kernel_module_from_file',
    ]);
    expect(rows[0]).toEqual({ function: 'entry_SYSCALL_64', first_us: 7806765.654 });
    expect(rows[5]).toEqual({ function: 'ns_capable', first_us: 7806805.436 });
  });

  it('filters with --match and writes CSV', () => {
    const r = runCli(['first-calls', sample('2016-timer-interrupt.log'), '--match', '^tick_', '--format', 'csv']);
    expect(r.stdout).toBe('first_us,function\n18000744.034,tick_handle_periodic\n18000745.929,tick_periodic\n');
  });

  it('writes an aligned table', () => {
    const r = runCli(['first-calls', sample('2016-init-module.log'), '--format', 'table', '--match', 'capable$']);
    expect(r.stdout).toBe(
      '   first (us)  function\n' +
      '7,806,801.945  capable\n' +
      '7,806,802.912  security_capable\n' +
      '7,806,804.308  cap_capable\n' +
      '7,806,805.436  ns_capable\n',
    );
  });

  it('rejects a bad regular expression in one line', () => {
    const r = runCli(['first-calls', sample('2016-timer-interrupt.log'), '--match', '(']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--match "\(": not a regular expression/);
  });
});

describe('syscalls', () => {
  it('finds each call, its name, duration and the user address it came from', () => {
    expect(cliJson<Call[]>(['syscalls', sample('syscalls.log')])).toEqual([
      { time_us: 102, syscall: 'write', duration_us: 24, returns: true, user_address: '400a14', complete: true },
      { time_us: 131, syscall: 'getpid', duration_us: 6, returns: true, user_address: '400b00', complete: true },
      { time_us: 140, syscall: 'read', duration_us: 10, returns: true, user_address: '7f0011223344', complete: true },
      // exit_group does not return: the trace ends inside it, so its duration runs to the last line (a lower bound).
      { time_us: 151, syscall: 'exit_group', duration_us: 4, returns: false, user_address: 'f7f0a000', complete: false },
    ]);
  });

  it('names sys_X handlers of older kernels (the 2016 trace)', () => {
    expect(cliJson<Call[]>(['syscalls', sample('2016-init-module.log')])).toEqual([
      { time_us: 7806765.654, syscall: 'init_module', duration_us: 74.1, returns: true, user_address: '4442b0', complete: false },
    ]);
  });

  it('summarises per system call', () => {
    const rows = cliJson<Summary[]>(['syscalls', sample('syscalls.log'), '--summary']);
    expect(rows).toEqual([
      { syscall: 'write', count: 1, total_us: 24, mean_us: 24, max_us: 24, untimed: 0 },
      { syscall: 'read', count: 1, total_us: 10, mean_us: 10, max_us: 10, untimed: 0 },
      { syscall: 'getpid', count: 1, total_us: 6, mean_us: 6, max_us: 6, untimed: 0 },
      { syscall: 'exit_group', count: 1, total_us: 4, mean_us: 4, max_us: 4, untimed: 0 },
    ]);
    const table = runCli(['syscalls', sample('syscalls.log'), '--format', 'table', '--summary']);
    expect(table.stdout.split('\n').slice(0, 3)).toEqual([
      'syscall     count  total (us)  mean (us)  max (us)',
      'write           1      24.000     24.000    24.000',
      'read            1      10.000     10.000    10.000',
    ]);
    const calls = runCli(['syscalls', sample('syscalls.log'), '--format', 'table']);
    expect(calls.stdout.split('\n')[1]).toBe('  102.000  write              24.000  400a14');
    const csv = runCli(['syscalls', sample('syscalls.log'), '--format', 'csv']);
    expect(csv.stdout.split('\n')[0]).toBe('time_us,syscall,duration_us,user_address');
    expect(csv.stdout.split('\n')[1]).toBe('102,write,24,400a14');
  });
});

describe('a closed pipe', () => {
  it('ends quietly with status 0 when the reader of stdout goes away (| head)', () => {
    // bash's PIPESTATUS gives boot-trace's own status; its stderr must hold no stack trace.
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" summary | head -1; echo "status=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^\S*2016-init-module\.log: 21 events, 7 functions\n$/);
    expect(r.stderr).toBe('status=0\n');
  });
});

describe('bad input', () => {
  const oneLineError = (args: string[], pattern: RegExp) => {
    const r = runCli(args);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  };
  it('gives one line and exit 1 for a missing file, a directory, garbage and an unknown option', () => {
    oneLineError(['hot-functions', 'no-such-trace.log'], /^boot-trace: no-such-trace\.log: cannot open: no such file/);
    oneLineError(['syscalls', sample()], /is a directory/);
    oneLineError(['first-calls', process.execPath], /binary data, not a boot trace/);
    oneLineError(['hot-functions', sample('empty.log'), '--bogus'], /Unknown argument: bogus/);
    oneLineError(['hot-functions', sample('with-malformed.log'), '--strict'], /with-malformed\.log:3: malformed line: "garbage line here"/);
  });
});
