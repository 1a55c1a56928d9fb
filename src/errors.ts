/**
 * Errors a user can act on: bad input, a missing file, no /dev/kvm. The CLI prints their message
 * as one line (`boot-trace: <message>`) and exits 1, without a stack trace. Anything else that
 * escapes is a bug and keeps its stack.
 */
export class UserError extends Error {
  override name = 'UserError';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** The message of any thrown value, for wrapping system errors into a UserError that names the step. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
