// Prints vitest's results as one plain closing line, "N passed, N failed, N skipped", which CI reads,
// and lists the skipped tests so a missing /dev/kvm or QEMU never passes unnoticed.
import { readFileSync } from 'node:fs';

const r = JSON.parse(readFileSync(process.argv[2] ?? 'test-output/vitest.json', 'utf8'));
const skipped = [];
for (const file of r.testResults ?? []) {
  for (const t of file.assertionResults ?? []) {
    if (t.status === 'skipped' || t.status === 'pending' || t.status === 'todo') skipped.push(`${file.name.replace(process.cwd() + '/', '')}: ${t.fullName}`);
  }
}
if (skipped.length) console.log(`skipped tests:\n  ${skipped.join('\n  ')}`);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped`);
process.exit(r.success ? 0 : 1);
