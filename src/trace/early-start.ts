/**
 * Parsing that starts before the command line is parsed. Loading yargs and the command's modules keeps the
 * main thread busy for ~80-100 ms at start-up while the other core idles (docs/performance.md, "Trace
 * analyzers"); for an analyzer whose range half runs in parse workers (range-part.ts), the workers need
 * nothing from the command line but the file and the analyzer, so cli.ts starts them first and they parse
 * ranges meanwhile. The reader adopts them when it reads that same file for that same analyzer with the
 * same settings (worker-group.ts groupMatches, and the file unchanged); otherwise it stops them and starts
 * its own, and the early work is lost, nothing else (e.g. `hot-functions --inclusive` reads every event).
 *
 * The guess uses the reader's own rules: a plain file in the native format, big enough for the parallel
 * reader, and idle cores (parallel.ts workerCount). Until adopted the workers do not keep the process alive.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { detectFile } from '../import/detect.js';
import { DEFAULT_REPORT_LIMIT } from './malformed.js';
import { parallelMinBytes, parallelRangeBytes, workerCount } from './parallel.js';
import type { RangeKind } from './range-part.js';
import { groupMatches, startWorkerGroup, stopWorkerGroup, type GroupSpec, type WorkerGroup } from './worker-group.js';

/** The file as it was when the early workers started: the reader adopts them only for that same file. */
interface FileId {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

let early: { group: WorkerGroup; path: string; file: FileId } | null = null;

/** The file at `path` (null when it is not a plain file: a folder, a device). */
const fileId = (path: string): FileId | null => {
  const st = statSync(path);
  return st.isFile() ? { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs } : null;
};
const sameFile = (a: FileId | null, b: FileId): boolean => a !== null && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;

/**
 * Starts parse workers for the first of `args` (a command line's words after the command) that names a
 * plain file the parallel reader would take, for analyzer `kind`. Does nothing when none does. Never throws:
 * it is a guess, and whatever is wrong with the file (unreadable, gone) the reader says in its own words.
 */
export function startEarlyParse(args: readonly string[], kind: RangeKind): void {
  try {
    guess(args, kind);
  } catch {
    discardEarlyParse();
  }
}

function guess(args: readonly string[], kind: RangeKind): void {
  for (const arg of args) {
    if (arg.startsWith('-') || arg.endsWith('.gz')) continue;
    let file: FileId | null;
    try {
      file = fileId(arg);
    } catch {
      continue; // an option's value or a command name, not a file
    }
    if (!file) continue;
    const size = file.size;
    const rangeBytes = parallelRangeBytes();
    const threads = workerCount(size, rangeBytes, Boolean(process.env.BOOT_TRACE_PARALLEL_MIN));
    if (size < parallelMinBytes() || threads < 2 || detectFile(arg) !== 'boot-trace') return;
    const path = resolve(arg);
    const group = startWorkerGroup({ path, size, rangeBytes, threads, reportLimit: DEFAULT_REPORT_LIMIT + 1, kind });
    for (const worker of group.workers) worker.unref();
    early = { group, path, file };
    return;
  }
}

/** The threads (the main one included) early workers were started with for the file at `path`, or null. */
export function earlyParseThreads(path: string): number | null {
  return early && resolve(path) === early.path ? early.group.workers.length + 1 : null;
}

/** Stops the early workers, if any (the reader reads on one thread, or not at all). */
export function discardEarlyParse(): void {
  if (early) stopWorkerGroup(early.group);
  early = null;
}

/**
 * The early workers, when they were started for exactly `spec` (its path resolved as given) and the file
 * is the same one, unchanged (device, inode, size, modification time); else null, and any early workers
 * are stopped.
 */
export function takeEarlyParse(spec: GroupSpec): WorkerGroup | null {
  const e = early;
  early = null;
  if (!e) return null;
  let same = false;
  try {
    same = resolve(spec.path) === e.path && groupMatches(e.group, { ...spec, path: e.path }) && sameFile(fileId(e.path), e.file);
  } catch {
    same = false; // the file went away: the reader will say so
  }
  if (!same) {
    stopWorkerGroup(e.group);
    return null;
  }
  for (const worker of e.group.workers) worker.ref();
  return e.group;
}
