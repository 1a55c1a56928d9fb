/**
 * The cpio "newc" writer: exact byte layout of headers, names, padding and the trailer, and a round
 * trip through the system's GNU cpio (`cpio -t` lists, `cpio -i` extracts) when it is installed.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, TRAILER, writeCpio, type CpioEntry } from '../capture/appliance/cpio.js';
import { describeNeeds } from './preconditions.js';

interface Parsed {
  name: string;
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  rdevmajor: number;
  rdevminor: number;
  data: Buffer;
  headerAt: number;
}

/** An independent reader: checks the magic, the NUL after each name and the 4-byte alignment as it goes. */
function parseNewc(buf: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let o = 0;
  for (;;) {
    expect(o % 4).toBe(0);
    expect(buf.toString('latin1', o, o + 6)).toBe('070701');
    const f = (i: number): number => parseInt(buf.toString('latin1', o + 6 + 8 * i, o + 14 + 8 * i), 16);
    expect(buf.toString('latin1', o + 6, o + 110)).toMatch(/^[0-9A-F]{104}$/);
    const namesize = f(11);
    const name = buf.toString('utf8', o + 110, o + 110 + namesize - 1);
    expect(buf[o + 110 + namesize - 1]).toBe(0);
    expect(f(12)).toBe(0); // check field unused in newc
    const dataAt = Math.ceil((o + 110 + namesize) / 4) * 4;
    const size = f(6);
    out.push({ name, ino: f(0), mode: f(1), nlink: f(4), mtime: f(5), rdevmajor: f(9), rdevminor: f(10), data: buf.subarray(dataAt, dataAt + size), headerAt: o });
    o = Math.ceil((dataAt + size) / 4) * 4;
    if (name === TRAILER) break;
  }
  expect(o).toBe(buf.length);
  return out;
}

const entries: CpioEntry[] = [
  { type: 'dir', path: '/bin' },
  { type: 'dir', path: 'dev', mode: 0o700 },
  { type: 'file', path: 'bin/tool', data: Buffer.from([0, 1, 2, 3, 4, 5, 6]), mode: 0o755 },
  { type: 'file', path: 'empty', data: '' },
  { type: 'file', path: 'hello.txt', data: 'hello, world\n' },
  { type: 'symlink', path: 'bin/sh', target: '/bin/tool' },
  { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
];

describe('cpio newc writer', () => {
  const buf = writeCpio(entries);

  it('writes the exact header bytes of the first entry', () => {
    const expected =
      '070701' +
      '00000001' + // ino
      '000041ED' + // mode: directory 0755
      '00000000' + '00000000' + // uid, gid
      '00000002' + // nlink
      '00000000' + // mtime
      '00000000' + // filesize
      '00000000' + '00000000' + '00000000' + '00000000' + // dev, rdev
      '00000004' + // namesize: "bin" + NUL
      '00000000'; // check
    expect(buf.toString('latin1', 0, 110)).toBe(expected);
    // 110 + 4 = 114 -> 2 NULs of padding to 116, where the next header starts.
    expect(buf.toString('latin1', 110, 116)).toBe('bin\0\0\0');
    expect(buf.toString('latin1', 116, 122)).toBe('070701');
  });

  it('keeps every entry, mode, link target and device number, and ends with the trailer', () => {
    const parsed = parseNewc(buf);
    expect(parsed.map((p) => p.name)).toEqual(['bin', 'dev', 'bin/tool', 'empty', 'hello.txt', 'bin/sh', 'dev/console', TRAILER]);
    const by = new Map(parsed.map((p) => [p.name, p]));
    expect(by.get('dev')!.mode).toBe(S_IFDIR | 0o700);
    expect(by.get('bin/tool')!.mode).toBe(S_IFREG | 0o755);
    expect([...by.get('bin/tool')!.data]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(by.get('empty')!.data.length).toBe(0);
    expect(by.get('hello.txt')!.mode).toBe(S_IFREG | 0o644);
    expect(by.get('bin/sh')!.mode).toBe(S_IFLNK | 0o777);
    expect(by.get('bin/sh')!.data.toString()).toBe('/bin/tool');
    expect(by.get('dev/console')).toMatchObject({ mode: S_IFCHR | 0o600, rdevmajor: 5, rdevminor: 1 });
    expect(new Set(parsed.slice(0, -1).map((p) => p.ino)).size).toBe(entries.length);
    expect(parsed.at(-1)).toMatchObject({ ino: 0, mode: 0, nlink: 1 });
  });

  it('is deterministic, with mtime only when asked', () => {
    expect(writeCpio(entries).equals(buf)).toBe(true);
    expect(parseNewc(writeCpio(entries, { mtime: 1700000000 }))[0]!.mtime).toBe(1700000000);
  });

  it('refuses duplicate and escaping paths', () => {
    expect(() => writeCpio([{ type: 'dir', path: 'a' }, { type: 'dir', path: '/a' }])).toThrow(/a is listed twice/);
    expect(() => writeCpio([{ type: 'file', path: '../etc/passwd', data: '' }])).toThrow(/bad path/);
  });
});

const haveCpio = spawnSync('cpio', ['--version'], { stdio: 'ignore' }).status === 0;

describeNeeds(haveCpio ? null : '`cpio` not found (apt-get install cpio)', 'round trip through GNU cpio', () => {
  const buf = writeCpio(entries);

  it('cpio -t lists the entries', () => {
    const r = spawnSync('cpio', ['-t', '--quiet'], { input: buf, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['bin', 'dev', 'bin/tool', 'empty', 'hello.txt', 'bin/sh', 'dev/console']);
  });

  it('cpio -i extracts the same files, modes and links', () => {
    const dir = mkdtempSync(join(tmpdir(), 'boot-trace-cpio-'));
    const r = spawnSync('cpio', ['-i', '-d', '-m', '--quiet', '--no-absolute-filenames'], { input: buf, cwd: dir, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect([...readFileSync(join(dir, 'bin/tool'))]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(lstatSync(join(dir, 'bin/tool')).mode & 0o7777).toBe(0o755);
    expect(readFileSync(join(dir, 'hello.txt'), 'utf8')).toBe('hello, world\n');
    expect(readFileSync(join(dir, 'empty')).length).toBe(0);
    expect(readlinkSync(join(dir, 'bin/sh'))).toBe('/bin/tool');
    if (process.getuid?.() === 0) {
      const st = lstatSync(join(dir, 'dev/console'));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe((5 << 8) | 1);
    }
  });
});
