// Prints vitest's results as one plain closing line, "N passed, N failed, N skipped", which CI reads, and
// lists every skipped test with the precondition it lacks (from scripts/skip-notes-reporter.mjs), so a
// missing /dev/kvm or QEMU never passes unnoticed.
import { existsSync, readFileSync } from 'node:fs';

const r = JSON.parse(readFileSync(process.argv[2] ?? 'test-output/vitest.json', 'utf8'));
const notes = existsSync('test-output/skips.json') ? JSON.parse(readFileSync('test-output/skips.json', 'utf8')) : [];
const noteOf = new Map(notes.map((n) => [`${n.file}\0${n.name.replaceAll(' > ', ' ')}`, n.note]));
const skipped = [];
for (const file of r.testResults ?? []) {
  for (const t of file.assertionResults ?? []) {
    if (t.status !== 'skipped' && t.status !== 'pending' && t.status !== 'todo') continue;
    // describeNeeds() (test/preconditions.ts) puts the reason into the suite's name: `... [needs: ...]`.
    const note = noteOf.get(`${file.name}\0${t.fullName}`) ?? /\[needs: (.*)\]/.exec(t.fullName)?.[1] ?? 'NO REASON GIVEN';
    skipped.push(`${file.name.replace(process.cwd() + '/', '')}: ${t.fullName}\n      why: ${note}`);
  }
}
if (skipped.length) console.log(`skipped tests (${skipped.length}):\n  ${skipped.join('\n  ')}`);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped`);
process.exit(r.success ? 0 : 1);
