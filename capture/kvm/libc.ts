/**
 * The few libc calls the VMM needs (open, close, ioctl, mmap, munmap), bound with koffi, and errno names
 * for messages (`KVM_SET_SREGS failed: EINVAL`). ioctl is variadic in C; it is bound twice with fixed
 * prototypes (integer argument, pointer argument), which is what the x86-64 ABI passes anyway and is
 * cheaper for koffi than a variadic call.
 */
import { constants } from 'node:os';
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const open = libc.func('open', 'int', ['str', 'int']) as (path: string, flags: number) => number;
export const close = libc.func('close', 'int', ['int']) as (fd: number) => number;
/** ioctl(fd, request, integer argument). */
export const ioctlInt = libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as (
  fd: number,
  req: number,
  arg: number,
) => number;
/** ioctl(fd, request, pointer): a Buffer/TypedArray is passed as a pointer to its bytes. */
export const ioctlPtr = libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as (
  fd: number,
  req: number,
  arg: Uint8Array | null,
) => number;
export const mmap = libc.func('mmap', 'uintptr_t', ['uintptr_t', 'size_t', 'int', 'int', 'int', 'int64']) as (
  addr: number,
  len: number,
  prot: number,
  flags: number,
  fd: number,
  off: number,
) => number;
export const munmap = libc.func('munmap', 'int', ['uintptr_t', 'size_t']) as (addr: number, len: number) => number;
/** memcpy into host memory at a raw address (guest RAM) from a Buffer, without a JavaScript view. */
export const memcpyTo = libc.func('memcpy', 'uintptr_t', ['uintptr_t', 'void *', 'size_t']) as (
  dst: number,
  src: Uint8Array,
  len: number,
) => number;
/** read(2) into host memory at a raw address (guest RAM): the kernel copies from the page cache directly. */
export const readTo = libc.func('read', 'long', ['int', 'uintptr_t', 'size_t']) as (fd: number, dst: number, len: number) => number;
export const madvise = libc.func('madvise', 'int', ['uintptr_t', 'size_t', 'int']) as (
  addr: number,
  len: number,
  advice: number,
) => number;
const syscall3 = libc.func('syscall', 'long', ['long', 'long', 'long', 'long']) as (
  nr: number,
  a: number,
  b: number,
  c: number,
) => number;

const SYS_gettid = 186;
const SYS_tgkill = 234;

/** The calling thread's kernel thread id (for tgkill from another thread). */
export function gettid(): number {
  return syscall3(SYS_gettid, 0, 0, 0);
}

/** Send `signal` to thread `tid` of this process. */
export function tgkill(tid: number, signal: number): number {
  return syscall3(SYS_tgkill, process.pid, tid, signal);
}

export const O_RDWR = 2;
export const O_CLOEXEC = 0x80000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
/** mmap's MAP_FAILED, (void *)-1, as koffi returns a uintptr_t. */
export const MAP_FAILED = 2 ** 64 - 1;
export const MADV_MERGEABLE = 12;

/** errno of the last failed call on this thread. */
export function errno(): number {
  return koffi.errno();
}

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

/** `EINVAL` for 22; `errno 999` for an unknown number. */
export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

export const EINTR = constants.errno.EINTR;
export const EAGAIN = constants.errno.EAGAIN;
export const ENOENT = constants.errno.ENOENT;
export const EACCES = constants.errno.EACCES;
export const EPERM = constants.errno.EPERM;
export const ENXIO = constants.errno.ENXIO;
export const ENODEV = constants.errno.ENODEV;
export const E2BIG = constants.errno.E2BIG;
