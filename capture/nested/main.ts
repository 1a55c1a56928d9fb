/**
 * Entry point of scripts/nested-kvm.sh: `node dist/capture/nested/main.js [--wall S] [--outer-memory MIB]
 * OUT capture|benchmark ARGS...`. Exits with the inner command's status; a harness failure prints one
 * line and exits 1 (124 when the wall-clock cap ended it, 130 on Ctrl-C).
 */
import { UserError } from '../../src/errors.js';
import { parseNestedArgs } from './args.js';
import { runNested } from './harness.js';

async function main(): Promise<number> {
  const abort = new AbortController();
  process.on('SIGINT', () => abort.abort());
  process.on('SIGTERM', () => abort.abort());
  const r = await runNested(parseNestedArgs(process.argv.slice(2)), { signal: abort.signal });
  const t = r.timings;
  process.stderr.write(
    `nested-kvm: inner status ${r.status}; outer /init at ${t.init ?? '?'} ms, modules ${t.modules ?? '?'} ms, ` +
      `inner command ${t.run ?? '?'}..${t.status ?? '?'} ms, total ${t.total} ms; results in ${r.out}\n`,
  );
  return r.status;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UserError) {
      process.stderr.write(`nested-kvm: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`nested-kvm: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
