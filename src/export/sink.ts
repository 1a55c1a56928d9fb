/**
 * A buffered, synchronous text sink for exports: a file (written under a temporary name and renamed on
 * close, so a failed export never leaves half a file behind) or stdout. Strings are collected and written
 * in ~1 MiB blocks, so a 10-million-line trace exports without holding its output.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { UserError, messageOf } from '../errors.js';

const BLOCK = 1 << 20;
/** What the common errno codes mean for an output file. */
const WHY: Record<string, string> = {
  ENOENT: 'no such folder', EACCES: 'permission denied', EPERM: 'operation not permitted', EISDIR: 'is a folder',
  ENOTDIR: 'a part of the path is not a folder', ENOSPC: 'no space left on the device', EROFS: 'read-only file system',
  EDQUOT: 'disk quota exceeded', EEXIST: 'exists',
};
const pause = new Int32Array(new SharedArrayBuffer(4));

export class TextSink {
  private parts: string[] = [];
  private pending = 0;
  private readonly fd: number;
  private readonly tmp: string | null;
  private closed = false;
  bytes = 0;

  /** @param path output file, or null/'-' for stdout */
  constructor(readonly path: string | null) {
    if (path === null || path === '-') {
      this.fd = 1;
      this.tmp = null;
    } else {
      this.tmp = `${path}.tmp-${process.pid}`;
      try {
        this.fd = openSync(this.tmp, 'w');
      } catch (err) {
        throw this.failure(err);
      }
    }
  }

  write(text: string): void {
    this.parts.push(text);
    this.pending += text.length;
    if (this.pending >= BLOCK) this.flush();
  }

  /** Writes bytes now (after any text still pending); the caller may reuse `data` afterwards. */
  writeBytes(data: Uint8Array): void {
    this.flush();
    this.writeAll(data);
  }

  flush(): void {
    if (this.pending === 0) return;
    const data = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.pending = 0;
    this.writeAll(data);
  }

  private writeAll(data: Uint8Array): void {
    let off = 0;
    while (off < data.length) {
      try {
        off += writeSync(this.fd, data, off, data.length - off);
      } catch (err) {
        // stdout may be a non-blocking pipe: wait for the reader instead of failing.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') Atomics.wait(pause, 0, 0, 2);
        else if (this.tmp !== null) throw this.failure(err);
        else throw err;
      }
    }
    this.bytes += data.length;
  }

  /** Writes what is left and, for a file, moves it into place. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    if (this.tmp === null) return;
    try {
      closeSync(this.fd);
      renameSync(this.tmp, this.path!);
    } catch (err) {
      rmSync(this.tmp, { force: true });
      throw this.failure(err);
    }
  }

  /**
   * A one-line error naming the file the user asked for: the temporary name is ours, not theirs, so it is
   * never shown ("x.json: cannot write: ENOENT: no such file or directory", not "... open 'x.json.tmp-19072'").
   */
  private failure(err: unknown): UserError {
    const e = err as NodeJS.ErrnoException;
    const why = e.code && e.syscall ? `${e.code}: ${WHY[e.code] ?? e.syscall + ' failed'}` : messageOf(err).split(this.tmp!).join(this.path!);
    return new UserError(`${this.path}: cannot write: ${why}`);
  }

  /** Drops a half-written file after an error. */
  abort(): void {
    if (this.closed || this.tmp === null) return;
    this.closed = true;
    try {
      closeSync(this.fd);
      rmSync(this.tmp, { force: true });
    } catch {
      // nothing more to clean up
    }
  }
}
