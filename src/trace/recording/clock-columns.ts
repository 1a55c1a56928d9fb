/**
 * Tables name their clock: a whole-boot recording read with `--clock instructions` has timestamps in
 * guest instructions, so "time (us)" headings become "time (instructions)" and the values are shown as
 * whole counts. (CSV and JSON keep their field names, e.g. time_us; docs/whole-boot.md says so.)
 */
import { showUs, type Column } from '../../output/write.js';
import type { RecordingClock } from './format.js';

export function onClock<R>(columns: readonly Column<R>[], clock: RecordingClock | undefined): Column<R>[] {
  if (clock !== 'instructions') return [...columns];
  return columns.map((c) => ({
    ...c,
    header: c.header.replace('(us)', '(instructions)'),
    ...(c.show === showUs ? { show: (v: R[keyof R]) => Math.round(Number(v)).toLocaleString('en-US') } : {}),
  }));
}
