/**
 * Runs one QEMU process to its end and records its serial console: the bytes come through a FIFO
 * (see qemu-args.ts for why not stdout), are stamped on arrival (host microseconds since QEMU was
 * spawned) and written as console.log lines by the ConsoleRecorder the KVM engine uses.
 * Ends in every case: QEMU exits by itself (power-off or reset under -no-reboot), or is killed with its
 * process group at the timeout or on abort; a FIFO QEMU never opened is opened here so nothing waits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageOf, UserError } from '../../../src/errors.js';
import { appendConsoleText, ConsoleRecorder, KERNEL_PANIC, KERNEL_POWER_OFF, KERNEL_RESTART } from '../../output/console-log.js';
import type { StopReason } from '../kvm/exits.js';
import { havePdeathsig, SETPRIV_EXEC_FAILED, withPdeathsig } from './pdeathsig.js';
import { GNU_TIME, haveGnuTime, parseTimeOutput, qemuPid, readVmHwm } from './peak-rss.js';

export interface QemuRunOptions {
  qemu: string;
  /** QEMU's arguments without the serial ones: `serialArgs(fifo)` is added here. */
  args: (serial: string) => string[];
  consoleFile: string;
  timeoutS: number;
  echo?: boolean | ((text: string) => void);
  partialLineMs: number;
  signal?: AbortSignal;
}

export interface QemuRunResult {
  args: string[];
  reason: StopReason;
  status: number | null;
  signal: string | null;
  /** QEMU's own stdout and stderr (warnings, errors), first 64 KiB. */
  messages: string;
  consoleLines: number;
  markers: Record<string, number>;
  /** Host microseconds: qemu_start, first_output, boot_wait, total. */
  phases: Record<string, number>;
  peakRss: number | null;
  peakRssSource: 'rusage' | 'vmhwm' | null;
  /** The kernel's last power-off, reset or panic line, if any. */
  lastKernelEnd: string | null;
}

const POLL_MS = 50;
const KILL_GRACE_MS = 2000;
const MAX_MESSAGES = 64 * 1024;
const WORK_PREFIX = 'boot-trace-qemu-';

/**
 * Removes work folders (FIFO, GNU time's file) of runs killed with SIGKILL, which cannot clean up:
 * `boot-trace-qemu-PID-XXXXXX` whose PID is no longer a live process. Folders of the old name without a
 * PID, and of live runs, are left alone.
 */
function removeStaleWorkDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^boot-trace-qemu-(\d+)-\w{6}$/.exec(name);
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

export function runQemu(o: QemuRunOptions): Promise<QemuRunResult> {
  removeStaleWorkDirs();
  // The pid in the name lets a later run remove what a killed run left (removeStaleWorkDirs).
  const work = mkdtempSync(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
  const fifo = join(work, 'serial.fifo');
  const mk = spawnSync('mkfifo', ['-m', '600', fifo], { encoding: 'utf8' });
  if (mk.status !== 0) {
    rmSync(work, { recursive: true, force: true });
    throw new UserError(`mkfifo ${fifo}: ${mk.error ? messageOf(mk.error) : mk.stderr.trim()}`);
  }
  const args = o.args(fifo);
  const useTime = haveGnuTime();
  const timeFile = join(work, 'time.txt');
  // Each level under setpriv --pdeathsig KILL, so a kill -9 of boot-trace takes QEMU with it (pdeathsig.ts).
  const pdeath = havePdeathsig();
  const [qemuCmd, qemuArgs] = withPdeathsig(o.qemu, args, pdeath);
  const [cmd, cmdArgs] = useTime ? withPdeathsig(GNU_TIME, ['-f', '%M', '-o', timeFile, qemuCmd, ...qemuArgs], pdeath) : [qemuCmd, qemuArgs];

  const fd = openSync(o.consoleFile, 'w');
  let stampUs = 0;
  let lastKernelEnd: string | null = null;
  let child: ChildProcess | undefined;
  let sampledRss: number | null = null;
  const sampleRss = (): void => {
    // Sampled even under GNU time: a QEMU killed at the timeout takes GNU time with it, unreported.
    if (child?.pid === undefined) return;
    const pid = qemuPid(child.pid);
    const v = pid === null ? null : readVmHwm(pid);
    if (v !== null) sampledRss = Math.max(sampledRss ?? 0, v);
  };
  const echo = o.echo === true ? (t: string) => void process.stderr.write(t) : o.echo || undefined;
  // A write that fails (a full disk) stops QEMU and fails the capture with that one line (finish()).
  let writeError: UserError | null = null;
  let onWriteError = (): void => {};
  const recorder = new ConsoleRecorder({
    write: (line) => {
      if (writeError) return;
      try {
        appendConsoleText(fd, o.consoleFile, line);
      } catch (err) {
        writeError = err instanceof UserError ? err : new UserError(`${o.consoleFile}: cannot write the console (${messageOf(err)})`);
        onWriteError();
        return;
      }
      if (line.includes('reboot: ') || line.includes('Kernel panic')) {
        if (KERNEL_POWER_OFF.test(line) || KERNEL_RESTART.test(line) || KERNEL_PANIC.test(line)) lastKernelEnd = line.slice(line.indexOf(' ') + 1).trimEnd();
        sampleRss(); // QEMU is about to exit: its high-water mark is as high as it gets
      }
    },
    now: () => stampUs,
    echo,
  });

  const t0 = performance.now();
  const since = (): number => (performance.now() - t0) * 1000;
  const phases: Record<string, number> = {};

  return new Promise<QemuRunResult>((resolvePromise, reject) => {
    let messages = '';
    let lastDataUs = 0;
    let partialTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let stopReason: StopReason | null = null;
    let spawnedAt = 0;
    let exited: { status: number | null; signal: string | null; at: number } | null = null;
    let serialOpen = false;
    let serialDone = false;
    let settled = false;

    // detached: QEMU (and GNU time around it) get a process group of their own, so a stop reaches both.
    child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (sig: NodeJS.Signals): void => {
      try {
        if (child?.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    const onProcessExit = (): void => killGroup('SIGKILL');
    process.once('exit', onProcessExit);
    const stop = (reason: StopReason): void => {
      if (stopReason || exited) return;
      stopReason = reason;
      // SIGTERM to QEMU alone: it shuts down cleanly (the tracing plugin writes its end frame) and GNU time
      // then exits by itself with QEMU's rusage. A SIGTERM to GNU time would kill it, and through the
      // parent-death signal (pdeathsig.ts) QEMU with SIGKILL, mid-write. The group gets SIGKILL after the grace.
      const q = child?.pid === undefined ? null : useTime ? qemuPid(child.pid) : child.pid;
      try {
        if (q === null) killGroup('SIGTERM');
        else process.kill(q, 'SIGTERM');
      } catch {
        /* already gone */
      }
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const timeout = setTimeout(() => stop('timeout'), o.timeoutS * 1000);
    const poll = setInterval(sampleRss, POLL_MS);
    const onAbort = (): void => stop('interrupted');
    onWriteError = onAbort;
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.signal?.aborted) onAbort();

    const serial = createReadStream(fifo, { highWaterMark: 64 * 1024 });
    serial.on('open', () => {
      serialOpen = true;
    });
    serial.on('data', (chunk: Buffer | string) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      stampUs = since();
      lastDataUs = stampUs;
      if (phases.first_output === undefined) phases.first_output = Math.round(stampUs);
      recorder.bytes(bytes);
      if (partialTimer) clearTimeout(partialTimer);
      partialTimer = undefined;
      if (recorder.pending > 0) {
        const at = lastDataUs;
        partialTimer = setTimeout(() => {
          if (lastDataUs !== at || recorder.pending === 0) return;
          stampUs = at;
          recorder.flush();
        }, o.partialLineMs);
      }
    });
    serial.on('error', (err) => {
      messages += `serial FIFO: ${messageOf(err)}\n`;
      serialDone = true;
      finish();
    });
    serial.on('close', () => {
      serialDone = true;
      finish();
    });

    const collect = (chunk: Buffer): void => {
      if (messages.length < MAX_MESSAGES) messages += chunk.toString('utf8');
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.on('spawn', () => {
      spawnedAt = performance.now();
      phases.qemu_start = Math.round(since());
      sampleRss();
    });
    child.on('error', (err) => {
      // Not started at all (the binary vanished between the PATH check and now).
      exited = { status: null, signal: null, at: performance.now() };
      messages += `${cmd}: cannot start: ${messageOf(err)}\n`;
      unblockSerial();
      finish();
    });
    child.on('close', (status, signal) => {
      if (!exited) exited = { status, signal, at: performance.now() };
      unblockSerial();
      finish();
    });

    /** If QEMU never opened the FIFO, our reader is still waiting in open(): be its writer for a moment. */
    function unblockSerial(): void {
      if (serialOpen || serialDone) return;
      try {
        closeSync(openSync(fifo, 'r+'));
      } catch {
        /* the reader is gone already */
      }
    }

    function finish(): void {
      if (settled || !exited || !serialDone) return;
      settled = true;
      clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
      if (partialTimer) clearTimeout(partialTimer);
      clearInterval(poll);
      o.signal?.removeEventListener('abort', onAbort);
      process.removeListener('exit', onProcessExit);
      stampUs = lastDataUs;
      recorder.flush();
      closeSync(fd);
      phases.boot_wait = Math.round((exited.at - (spawnedAt || t0)) * 1000);
      phases.total = Math.round(since());
      let peakRss = sampledRss;
      let peakRssSource: QemuRunResult['peakRssSource'] = sampledRss === null ? null : 'vmhwm';
      if (useTime) {
        try {
          const kib = parseTimeOutput(readFileSync(timeFile, 'latin1'));
          if (kib !== null) {
            peakRss = kib * 1024;
            peakRssSource = 'rusage';
          }
        } catch {
          /* killed before GNU time wrote it */
        }
      }
      rmSync(work, { recursive: true, force: true });
      if (writeError) {
        reject(writeError);
        return;
      }
      const { status, signal } = exited;
      // GNU time reports a QEMU it could not run as status 127 with its own message.
      if (status === null && signal === null && /cannot start/.test(messages)) {
        reject(new UserError(messages.trim().split('\n').pop()!));
        return;
      }
      if ((useTime || pdeath) && (status === 127 || status === 126) && (/cannot run/.test(messages) || SETPRIV_EXEC_FAILED.test(messages))) {
        reject(new UserError(`${o.qemu}: cannot start: ${messages.trim().split('\n')[0]}`));
        return;
      }
      // -no-reboot: QEMU exits with status 0 on a guest power-off and on a guest reset alike. Only the
      // kernel's power-off line makes it a shutdown; a reset it did not announce is a triple fault
      // (a crash before the console was up, e.g. a kernel too big for the guest's memory).
      const reason: StopReason =
        stopReason ?? (status === 0 ? (lastKernelEnd !== null && KERNEL_POWER_OFF.test(lastKernelEnd) ? 'shutdown' : 'reset') : 'internal-error');
      resolvePromise({
        args, reason, status, signal, messages, consoleLines: recorder.lines, markers: { ...recorder.markers }, phases,
        peakRss, peakRssSource, lastKernelEnd,
      });
    }
  });
}
