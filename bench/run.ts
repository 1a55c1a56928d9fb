/**
 * `npm run bench [-- NAME...]`: runs the benchmarks and writes each one's section of docs/performance.md,
 * leaving the other sections as they were. A benchmark is bench/NAME.ts exporting `run(): Promise<string>`
 * (a markdown section that names the command, the figures and a baseline measured in the same run), and
 * optionally `doc` (a file name in docs/) when its section belongs elsewhere (the fuzz counts: robustness.md).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** In the order they appear in docs/performance.md. */
const BENCHMARKS = ['analyzers', 'export', 'capture', 'symbol-lookup', 'kernel-decompress', 'linux-boot', 'console-uart', 'qemu-step', 'boot-benchmark', 'fuzz', 'whole-boot'];
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
const DOC = `${DOCS}performance.md`;
const HEADER = `# Performance

Figures measured by \`npm run bench\` (or \`npm run bench -- NAME\` for one section) on the project's machine
kind: 2 cores, Debian 12, Node 20, a software-backed /dev/kvm. These machines are noisy, so every figure
is set against a baseline measured in the same run; the ratios are what to compare between runs.
`;

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((n) => !BENCHMARKS.includes(n));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${BENCHMARKS.join(', ')}`);
  for (const name of wanted.length ? wanted : BENCHMARKS) {
    const file = new URL(`./${name}.js`, import.meta.url);
    if (!existsSync(fileURLToPath(file))) {
      console.error(`bench: ${name}: not built (bench/${name}.ts missing), skipped`);
      continue;
    }
    console.error(`bench: ${name} ...`);
    const started = Date.now();
    const mod = (await import(file.href)) as { run: () => Promise<string>; doc?: string };
    const section = (await mod.run()).trim();
    const path = mod.doc ? `${DOCS}${mod.doc}` : DOC;
    const doc = existsSync(path) ? readFileSync(path, 'utf8') : HEADER;
    writeFileSync(path, replaceSection(doc, name, section));
    console.error(`bench: ${name} done in ${((Date.now() - started) / 1000).toFixed(0)} s, written to docs/${mod.doc ?? 'performance.md'}`);
  }
}

function replaceSection(doc: string, name: string, section: string): string {
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${begin}\n${section}\n${end}`;
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a >= 0 && b > a) return doc.slice(0, a) + block + doc.slice(b + end.length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
