/**
 * The kernel command line as the bytes copied to CMDLINE_ADDR: ASCII, NUL-terminated, and short enough
 * for the space reserved there (and for the kernel's own cmdline_size, which the caller folds into `max`).
 */
import { UserError } from '../../src/errors.js';

/** `text` + NUL; `max` counts the NUL. UserError when it does not fit or cannot be a command line. */
export function encodeCmdline(text: string, max: number): Buffer {
  if (text.includes('\0')) throw new UserError('kernel command line contains a NUL byte');
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length + 1 > max) {
    throw new UserError(
      `kernel command line is ${bytes.length} bytes; at most ${max - 1} fit (shorten --cmdline)`,
    );
  }
  const out = Buffer.alloc(bytes.length + 1);
  bytes.copy(out);
  return out;
}

/**
 * The longest encoded command line (with NUL) a kernel accepts at CMDLINE_ADDR: the smaller of the
 * room reserved in the layout and the kernel's cmdline_size (which excludes the NUL), when it has one.
 */
export function cmdlineLimit(reserved: number, kernelCmdlineSize?: number): number {
  return kernelCmdlineSize && kernelCmdlineSize > 0 ? Math.min(reserved, kernelCmdlineSize + 1) : reserved;
}
