/**
 * QEMU dies with boot-trace. A `kill -9` of boot-trace runs no handler, so QEMU (and GNU time around it)
 * would otherwise run on until the guest ends by itself, forever for a hung guest. Linux's parent-death
 * signal (prctl(PR_SET_PDEATHSIG), prctl(2)) is set on each level through util-linux's
 * `setpriv --pdeathsig KILL CMD...`, which sets it and execs CMD (the setting survives execve, prctl(2)):
 *
 *   node -> setpriv -> GNU time -> setpriv -> qemu-system-x86_64
 *
 * so boot-trace's death kills GNU time and GNU time's death kills QEMU. setpriv is in Debian's util-linux
 * (Essential: on every Debian system); where it is missing or too old (--pdeathsig came in util-linux 2.33),
 * QEMU is started directly as before and only the handlers in qemu-process.ts stop it (not on SIGKILL).
 * Limit: a parent that dies between fork and setpriv's prctl is missed (the window is one exec long).
 */
import { spawnSync } from 'node:child_process';

export const SETPRIV = 'setpriv';
const PREFIX = ['--pdeathsig', 'KILL'];

let cached: boolean | undefined;

/** True when `setpriv --pdeathsig KILL` runs here (checked once per process by running `true` under it). */
export function havePdeathsig(): boolean {
  cached ??= spawnSync(SETPRIV, [...PREFIX, 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  return cached;
}

/** `[cmd, args]` run under `setpriv --pdeathsig KILL` when `use`, else unchanged. */
export function withPdeathsig(cmd: string, args: string[], use: boolean): [string, string[]] {
  return use ? [SETPRIV, [...PREFIX, cmd, ...args]] : [cmd, args];
}

/** setpriv's own message when it could not exec its command ("setpriv: failed to execute X: ..."), status 126/127. */
export const SETPRIV_EXEC_FAILED = /failed to execute/;
