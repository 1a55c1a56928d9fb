// A vitest reporter that keeps the note of every skipped test (`ctx.skip('no qemu-system-x86_64 ...')`) in
// test-output/skips.json, so scripts/test-summary.mjs can list each skip with the precondition it lacks.
// vitest's JSON reporter drops these notes.
import { mkdirSync, writeFileSync } from 'node:fs';

export default class SkipNotesReporter {
  notes = [];

  onTestCaseResult(testCase) {
    const r = testCase.result();
    if (r.state === 'skipped') this.notes.push({ file: testCase.module.moduleId, name: testCase.fullName, note: r.note ?? null });
  }

  onTestRunEnd() {
    mkdirSync('test-output', { recursive: true });
    writeFileSync('test-output/skips.json', JSON.stringify(this.notes, null, 1) + '\n');
  }
}
