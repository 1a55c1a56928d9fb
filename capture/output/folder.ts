/**
 * The capture folder: its file names, making a fresh one for a capture, finding a capture's files from a
 * folder or a trace file, and reading its console through the one console reader.
 *
 *   DIR/profile.json   how the capture went (profile.ts; docs/capture-format.md)
 *   DIR/console.log    `<t_us> <text>` lines from the serial console (console-log.ts)
 *   DIR/trace.log      step mode: one line per instruction (docs/trace-format.md)
 *   DIR/recording.bin  trace mode: the whole-boot recording (src/trace/recording/format.ts, docs/whole-boot.md)
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ConsoleVisitor } from '../../analyzers/console-lines.js';
import { readConsole, type ConsoleReadResult } from '../../src/commands/console-input.js';
import { messageOf, UserError } from '../../src/errors.js';

export const PROFILE_FILE = 'profile.json';
export const CONSOLE_FILE = 'console.log';
export const TRACE_FILE = 'trace.log';
export const RECORDING_FILE = 'recording.bin';
/** Every file a capture writes, in the order a listing shows them. */
export const CAPTURE_FILE_NAMES = [PROFILE_FILE, CONSOLE_FILE, TRACE_FILE, RECORDING_FILE] as const;

/** The default output folder: captures/<UTC timestamp> under the working directory. */
export function defaultOutDir(now = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-').replace('T', '_').replace('Z', '');
  return resolve('captures', stamp);
}

/**
 * Make `dir` ready for a new capture and return its absolute path. A folder that exists must be empty,
 * so an old trace.log never sits beside a new profile.json; with `force` it is emptied first, but only
 * when everything in it is a capture file (CAPTURE_FILE_NAMES, or a leftover temporary profile), or with
 * `nested` (benchmark's folder of captures) a folder holding only such folders: --force never deletes
 * files a capture did not write. Throws UserError naming the folder.
 */
export function prepareOutDir(dir: string, force = false, nested = false): string {
  const out = resolve(dir);
  let entries: string[] = [];
  if (existsSync(out)) {
    try {
      if (!statSync(out).isDirectory()) throw new UserError(`${out}: --out exists and is not a folder`);
      entries = readdirSync(out);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`${out}: cannot read the output folder (${messageOf(err)})`);
    }
  }
  if (entries.length > 0) {
    if (!force) {
      throw new UserError(`${out}: the output folder is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); give a new folder, or --force to empty it first`);
    }
    const foreign = foreignEntry(out, nested);
    if (foreign !== null) throw new UserError(`${out}: --force empties only capture folders, and this one holds ${foreign}, which no capture writes`);
    for (const e of entries) rmSync(join(out, e), { recursive: true, force: true });
  }
  try {
    makeDir(out);
  } catch (err) {
    throw new UserError(`${out}: cannot write the capture's output folder (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`);
  }
  return out;
}

/** The first entry under `dir` (relative) that is not a capture file, or with `nested` a folder of them; null if none. */
function foreignEntry(dir: string, nested: boolean, prefix = ''): string | null {
  for (const e of readdirSync(dir)) {
    const path = join(dir, e);
    if ((CAPTURE_FILE_NAMES as readonly string[]).includes(e) || /^profile\.json\.tmp-\d+$/.test(e)) {
      if (statSync(path).isFile()) continue;
      return prefix + e;
    }
    if (nested && statSync(path).isDirectory()) {
      const inner = foreignEntry(path, true, `${prefix}${e}/`);
      if (inner !== null) return inner;
      continue;
    }
    return prefix + e;
  }
  return null;
}

/**
 * mkdir -p without Node's recursive mode for the last level: on some file systems (/proc) mkdir answers
 * ENOENT under an existing parent, and `mkdirSync(..., {recursive: true})` then retries forever.
 */
function makeDir(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || existsSync(dirname(dir))) throw err;
    makeDir(dirname(dir));
    mkdirSync(dir);
  }
}

export interface CaptureFiles {
  dir: string;
  trace?: string;
  console?: string;
  profile?: string;
}

/**
 * A capture's files from a folder, or from a trace file inside one (`-`: stdin, the current folder).
 * A console and profile beside an unrelated trace file would mislead: only a capture's own trace.log (or
 * trace.log.gz) takes them. Throws UserError when `input` does not exist.
 */
export function findCaptureFiles(input: string): CaptureFiles {
  let isDir = false;
  try {
    isDir = statSync(input).isDirectory();
  } catch (err) {
    if (input !== '-') throw new UserError(`${input}: cannot open: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : messageOf(err)}`);
  }
  const dir = isDir ? input : input === '-' ? '.' : dirname(input);
  const here = (name: string): string | undefined => (existsSync(join(dir, name)) ? join(dir, name) : undefined);
  let trace: string | undefined = isDir ? undefined : input;
  if (isDir) trace = here(TRACE_FILE) ?? here(`${TRACE_FILE}.gz`) ?? here(RECORDING_FILE); // the trace reader reads recordings too
  const own = isDir || /^(?:trace\.log(\.gz)?|recording\.bin)$/.test(basename(input));
  return { dir, trace, console: own ? here(CONSOLE_FILE) : undefined, profile: own ? here(PROFILE_FILE) : undefined };
}

/** True when `path` is a folder with a profile.json or a console.log. */
export function isCaptureDir(path: string): boolean {
  try {
    return statSync(path).isDirectory() && (existsSync(join(path, PROFILE_FILE)) || existsSync(join(path, CONSOLE_FILE)));
  } catch {
    return false;
  }
}

/**
 * Feed a capture's console.log (given its folder, or the file itself) to `visitor` through the console
 * analyzers' reader (analyzers/console-lines.ts): the only way capture-side code reads console.log.
 * Throws UserError when the file cannot be read.
 */
export function readCaptureConsole(dirOrFile: string, visitor: ConsoleVisitor): Promise<ConsoleReadResult> {
  let file = dirOrFile;
  try {
    if (statSync(dirOrFile).isDirectory()) file = join(dirOrFile, CONSOLE_FILE);
  } catch {
    /* readConsole names the missing file */
  }
  // Our console.log is `<t_us> <text>` on every line (console-log.ts): say so, so a guest line that merely
  // starts with digits is never taken for a second host stamp. Its text is whatever bytes the guest sent,
  // NUL included: never refuse it as binary.
  return readConsole(file, visitor, undefined, { hostStamps: true, allowBinary: true });
}
