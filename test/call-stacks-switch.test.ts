/**
 * Call stacks across task switches (docs/call-stacks.md, "Task switches"), on samples/stacks/task-switch.log:
 * 542 lines cut from a real whole-boot recording of the Debian 6.1 cloud kernel. A new kthread starts at
 * ret_from_fork, sleeps in schedule_preempt_disabled (its stack is parked at __switch_to_asm), another
 * task (switched out before the cut: its callers are unknown) runs and switches out, and the kthread
 * resumes: __schedule returns to schedule, then to schedule_preempt_disabled, then to kthread + 154.
 */
import { describe, expect, it } from 'vitest';
import { CallStacks } from '../analyzers/call-stacks.js';
import { readTrace } from '../src/trace/reader.js';
import { sample } from './helpers.js';

async function stacksOf(file: string): Promise<{ after: string[]; lines: string[]; stacks: CallStacks }> {
  let stacks: CallStacks | undefined;
  const after: string[] = [];
  const lines: string[] = [];
  await readTrace(file, (functions) => {
    const s = (stacks = new CallStacks(functions));
    return {
      event(t, fn, offset) {
        s.event(t, fn, offset);
        lines.push(`${functions.names[fn]}${offset > 0 ? ` + ${offset}` : ''}`);
        after.push(s.stack().map((id) => functions.names[id]).join(';'));
      },
    };
  }, { warn: () => {} });
  stacks!.finish();
  return { after, lines, stacks: stacks! };
}

describe('task switches', () => {
  it('parks the outgoing stack at __switch_to_asm and resumes it when the task returns from __schedule', async () => {
    const { after, lines, stacks } = await stacksOf(sample('stacks', 'task-switch.log'));
    expect(lines.length).toBe(542);
    const switches = lines.flatMap((l, i) => (l === '__switch_to_asm' ? [i] : []));
    expect(switches).toEqual([229, 492]);
    // The kthread goes to sleep: the switch code runs on its stack.
    expect(after[230]).toBe('ret_from_fork;kthread;schedule_preempt_disabled;schedule;__schedule;__switch_to_asm;__switch_to');
    // The incoming task returns into its own __schedule, a fresh root (not the kthread's __schedule).
    expect(lines[241]).toBe('__schedule + 845');
    expect(after[241]).toBe('__schedule');
    expect(after[242]).toBe('__schedule;finish_task_switch.isra.0');
    // That task was switched out before the cut: no parked stack matches, its callers become roots.
    expect(after.slice(242, 492).every((s) => !s.startsWith('ret_from_fork'))).toBe(true);
    // It switches out; the kthread comes back: __schedule returns to schedule, the kthread's parked stack.
    expect(after[504]).toBe('__schedule');
    expect(lines[509]).toBe('schedule + 90');
    expect(after[509]).toBe('ret_from_fork;kthread;schedule_preempt_disabled;schedule');
    expect(lines[511]).toBe('kthread + 154');
    expect(after[511]).toBe('ret_from_fork;kthread');
    expect(after[512]).toBe('ret_from_fork;kthread;__kthread_parkme');
    expect(stacks.counts).toMatchObject({ switches: 2, resumed: 1, newTasks: 0 });
    // No stack runs through the switch code into another task.
    for (const s of after) {
      const i = s.indexOf('__switch_to_asm');
      if (i >= 0) expect(s.slice(i)).toMatch(/^__switch_to_asm(;__switch_to)?(;[a-z_]+)*$/);
      expect(s.split(';').filter((f) => f === '__schedule').length, s).toBeLessThanOrEqual(1);
    }
    // Resumed frames are not new calls: kthread was entered once.
    const kthread = stacks.names.indexOf('kthread');
    expect(stacks.callCount[kthread]).toBe(1);
  });

  it('a new task starts a fresh root at ret_from_fork, below nothing of the task that switched to it', async () => {
    const { after, lines } = await stacksOf(sample('stacks', 'task-switch.log'));
    // The sample's second part: the kthread wakes a task; the first line was ret_from_fork, a root.
    expect(lines[0]).toBe('ret_from_fork');
    expect(after[0]).toBe('ret_from_fork');
    expect(after.filter((s) => s.includes(';ret_from_fork'))).toEqual([]);
  });
});
