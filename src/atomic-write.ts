/**
 * Writing a whole file so a reader never sees half of it: a temporary name in the same folder, then
 * rename. Errors name the file the caller asked for, never the temporary name (`x.json.tmp-19072` means
 * nothing to a user), and the temporary file is removed.
 *
 *   writeFileAtomic(join(dir, 'profile.json'), text, 'the capture profile');
 *   // on a full disk: UserError "/…/profile.json: cannot write the capture profile (ENOSPC)"
 */
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { messageOf, UserError } from './errors.js';

export function writeFileAtomic(file: string, data: string | Uint8Array, what: string, encoding: BufferEncoding = 'utf8'): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data, typeof data === 'string' ? encoding : undefined);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw new UserError(`${file}: cannot write ${what} (${describeError(err, tmp, file)})`);
  }
}

/** An fs error as its code (ENOSPC, EACCES...), or its message with `tmp` named as `file`. */
export function describeError(err: unknown, tmp: string, file: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ?? messageOf(err).replaceAll(tmp, file);
}
