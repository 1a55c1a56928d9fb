/**
 * Opening what an analyzer reads: a path, `-` for stdin, or a `.gz` file, as a stream of Buffers.
 * Shared by the trace reader and the console reader so both name files and failures the same way.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { UserError, messageOf } from './errors.js';

/** How an input is named in messages. */
export const inputName = (input: string): string => (input === '-' ? '<stdin>' : input);

/** The size of a file to read, or a one-line error: missing, unreadable, or a directory (`what` names the kind). */
export function inputSize(path: string, what: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new UserError(`${path}: cannot open: ${describeOpenError(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new UserError(`${path}: is a directory, not a ${what}`);
    return st.size;
  } finally {
    closeSync(fd);
  }
}

export function describeOpenError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return messageOf(err);
}

/** A stream of an input's bytes (gunzipped for .gz), and how many raw bytes it has consumed so far. */
export interface InputChunks {
  chunks: AsyncIterable<Buffer>;
  consumed(): number;
}

export function openChunks(input: string, highWaterMark?: number): InputChunks {
  const raw: NodeJS.ReadableStream & { bytesRead?: number } =
    input === '-' ? process.stdin : createReadStream(input, highWaterMark ? { highWaterMark } : {});
  const stream = input.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  let seen = 0;
  return {
    chunks: (async function* () {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        seen += chunk.length;
        yield chunk;
      }
    })(),
    consumed: () => raw.bytesRead ?? seen,
  };
}

/** A NUL byte in the first 4 KiB: binary data, not text. */
export function looksBinary(chunk: Uint8Array): boolean {
  return chunk.subarray(0, 4096).includes(0);
}

/** Reads the first 4 KiB of a file and fails if it is binary. */
export function checkNotBinary(path: string, what: string): void {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4096);
    const n = readSync(fd, head, 0, head.length, 0);
    if (looksBinary(head.subarray(0, n))) throw new UserError(`${inputName(path)}: binary data, not a ${what} (a NUL byte in the first block)`);
  } finally {
    closeSync(fd);
  }
}
