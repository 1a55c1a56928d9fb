/**
 * A writer for the cpio "newc" format (SVR4 without CRC), the only one the kernel's initramfs unpacker
 * (init/initramfs.c) reads:
 *
 *   header: "070701" then 13 fields of 8 uppercase hex digits: ino, mode, uid, gid, nlink, mtime,
 *           filesize, devmajor, devminor, rdevmajor, rdevminor, namesize (with its NUL), check (0);
 *   then the name and a NUL, padded with NULs so header + name end on a 4-byte boundary;
 *   then the file data (or a symlink's target), padded to 4 bytes;
 *   the archive ends with an entry named "TRAILER!!!".
 *
 * The output is deterministic (mtime 0 unless given, owner root, inodes numbered in entry order), so the
 * same inputs give the same bytes and the appliance can be cached by content hash.
 */
import { UserError } from '../../src/errors.js';

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array | string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev' | 'blockdev'; path: string; major: number; minor: number; mode?: number };

export const TRAILER = 'TRAILER!!!';
const MAGIC = '070701';
const HEADER_SIZE = 110;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new UserError(`cpio: field value ${n} does not fit in 8 hex digits`);
  return n.toString(16).toUpperCase().padStart(8, '0');
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevmajor: number;
  rdevminor: number;
  name: string;
}

function entryBytes(h: Header, data: Uint8Array): Buffer[] {
  const name = Buffer.from(`${h.name}\0`, 'utf8');
  const header = Buffer.from(
    MAGIC +
      [h.ino, h.mode, 0, 0, h.nlink, h.mtime, h.size, 0, 0, h.rdevmajor, h.rdevminor, name.length, 0].map(hex8).join(''),
    'latin1',
  );
  const out: Buffer[] = [header, name, Buffer.alloc(pad4(HEADER_SIZE + name.length))];
  if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)));
  return out;
}

/** Normalise an archive path: no leading "/" or "./", no empty or ".." components. */
function archivePath(path: string): string {
  const p = path.replace(/^\/+/, '').replace(/^\.\//, '');
  if (p === '' || p.split('/').some((c) => c === '' || c === '..')) throw new UserError(`cpio: bad path ${JSON.stringify(path)}`);
  return p;
}

/** The archive bytes for `entries`, in the given order (list a directory before what it contains). */
export function writeCpio(entries: readonly CpioEntry[], opts: { mtime?: number } = {}): Buffer {
  const mtime = opts.mtime ?? 0;
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  let ino = 1;
  for (const e of entries) {
    const name = archivePath(e.path);
    if (seen.has(name)) throw new UserError(`cpio: ${name} is listed twice`);
    seen.add(name);
    const base = { ino: ino++, mtime, rdevmajor: 0, rdevminor: 0, name };
    switch (e.type) {
      case 'dir':
        parts.push(...entryBytes({ ...base, mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2, size: 0 }, new Uint8Array(0)));
        break;
      case 'file': {
        const data = typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data;
        parts.push(...entryBytes({ ...base, mode: S_IFREG | (e.mode ?? 0o644), nlink: 1, size: data.length }, data));
        break;
      }
      case 'symlink': {
        const target = Buffer.from(e.target, 'utf8');
        parts.push(...entryBytes({ ...base, mode: S_IFLNK | 0o777, nlink: 1, size: target.length }, target));
        break;
      }
      case 'chardev':
      case 'blockdev':
        parts.push(
          ...entryBytes(
            { ...base, mode: (e.type === 'chardev' ? S_IFCHR : S_IFBLK) | (e.mode ?? 0o600), nlink: 1, size: 0, rdevmajor: e.major, rdevminor: e.minor },
            new Uint8Array(0),
          ),
        );
        break;
    }
  }
  parts.push(...entryBytes({ ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, rdevmajor: 0, rdevminor: 0, name: TRAILER }, new Uint8Array(0)));
  return Buffer.concat(parts);
}

export interface CpioMember {
  name: string;
  mode: number;
  rdevmajor: number;
  rdevminor: number;
  /** File contents or symlink target. */
  data: Buffer;
}

/** Read a newc archive (without the trailer entry), e.g. to list what an appliance holds. */
export function readCpio(buf: Buffer, what = 'cpio archive'): CpioMember[] {
  const out: CpioMember[] = [];
  let o = 0;
  while (o + HEADER_SIZE <= buf.length) {
    if (buf.toString('latin1', o, o + 6) !== MAGIC) throw new UserError(`${what}: no newc magic 070701 at byte ${o}`);
    const field = (i: number): number => parseInt(buf.toString('latin1', o + 6 + 8 * i, o + 14 + 8 * i), 16);
    const namesize = field(11);
    const size = field(6);
    const name = buf.toString('utf8', o + HEADER_SIZE, o + HEADER_SIZE + namesize - 1);
    const dataAt = o + HEADER_SIZE + namesize + pad4(HEADER_SIZE + namesize);
    if (dataAt + size > buf.length) throw new UserError(`${what}: ${name} runs past the end of the archive; truncated?`);
    if (name === TRAILER) return out;
    out.push({ name, mode: field(1), rdevmajor: field(9), rdevminor: field(10), data: buf.subarray(dataAt, dataAt + size) });
    o = dataAt + size + pad4(size);
  }
  throw new UserError(`${what}: no ${TRAILER} entry; truncated?`);
}
