/**
 * `kill -9` during a capture (issue 15): nothing can be flushed, but every file written so far is readable up
 * to its last complete line: trace.log and console.log are written in whole lines only, profile.json only by
 * rename (so it is absent, never half written), a recording in framed chunks (test/whole-boot.test.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { kvmMissing } from './capture-helpers.js';
import { CLI, runCli, testOutput } from './helpers.js';
import { describeNeeds } from './preconditions.js';

describeNeeds(kvmMissing(), 'kill -9 during a KVM step capture', () => {
  it('leaves trace.log and console.log readable to their last whole line, and no profile.json', async () => {
    const out = join(testOutput('capture-kill'), 'cap');
    const child = spawn(process.execPath, [CLI, 'capture', '--guest', 'demo', '--mode', 'step', '--out', out, '--timeout', '60'], { stdio: 'ignore' });
    // Kill once the trace has more than one 64 KiB block on disk: mid-capture, between two flushes or in one.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(existsSync(join(out, 'trace.log')) && statSync(join(out, 'trace.log')).size > 256 * 1024)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(statSync(join(out, 'trace.log')).size).toBeGreaterThan(256 * 1024);
    expect(readdirSync(out)).not.toContain('profile.json');
    for (const f of ['trace.log', 'console.log']) {
      const text = readFileSync(join(out, f), 'latin1');
      if (text.length > 0) expect(text.endsWith('\n'), `${f} ends at a whole line`).toBe(true);
    }
    const hot = runCli(['hot-functions', join(out, 'trace.log'), '--strict', '--format', 'json']);
    expect(hot.status, hot.stderr).toBe(0);
  }, 60_000);
});
