/**
 * speedscope's sampled profile (https://www.speedscope.app/file-format-schema.json, "SampledProfile"),
 * written from the stack trie after the pass: one sample per distinct stack, weighted by that stack's self
 * time. A whole boot has ~26 M frame openings; as an evented profile that is ~1.1 GB, past the ~512 M
 * characters a V8 string can hold, and speedscope reads the file as one string. Aggregated, it is one entry
 * per distinct stack (~160 k for a boot, ~15 MB).
 *   {"$schema":...,"name":"recording.bin (...)","profiles":[{"type":"sampled","name":...,"unit":"microseconds",
 *    "startValue":0,"endValue":2570000,"samples":[[0],[0,1],...],"weights":[12.5,3.25,...]}],
 *    "shared":{"frames":[{"name":"startup_64"},...]},"exporter":"boot-trace","activeProfileIndex":0}
 * What it keeps: every stack's total self time, so the left-heavy and sandwich views and every frame's
 * inclusive and self time are those of the evented profile. What it loses: time order. Samples are in the
 * order the stacks first appeared, so the time-order view shows each stack once, merged over the boot; the
 * profile's name says so. Weights are on the ticks.ts grid, like every exported time.
 */
import type { StackTrie } from '../../analyzers/stack-trie.js';
import type { Clock } from '../output/clock.js';
import type { TextSink } from './sink.js';
import { SPEEDSCOPE_SCHEMA } from './speedscope.js';
import { onGrid } from './ticks.js';

/** What the profile's name adds, so that speedscope's title says the time-order view is merged. */
export const SAMPLED_NOTE = 'identical stacks merged: time order not kept';

/** Writes the trie as a sampled profile; returns the number of samples (stacks with self time). */
export function writeSampledSpeedscope(trie: StackTrie, names: string[], out: TextSink, traceName: string, clock: Clock): number {
  let name = traceName;
  if (clock.kind === 'host-stepping') name += ' (host time while single-stepping, not boot time)';
  else if (clock.unit === 'steps') name += ' (instruction steps, not time)';
  name += ` (${SAMPLED_NOTE})`;
  const unit = clock.unit === 'steps' ? 'none' : 'microseconds';
  const frameOf = new Map<number, number>();
  const frames: string[] = [];
  const frame = (fn: number): number => {
    let f = frameOf.get(fn);
    if (f === undefined) {
      frameOf.set(fn, (f = frames.length));
      frames.push(names[fn]!);
    }
    return f;
  };
  const weights: number[] = [];
  out.write(`{"$schema":"${SPEEDSCOPE_SCHEMA}","name":${JSON.stringify(name)},\n"profiles":[{"type":"sampled","name":${JSON.stringify(name)},"unit":"${unit}","startValue":0,"samples":[\n`);
  let total = 0;
  for (let n = 1; n < trie.size; n++) {
    const w = onGrid(trie.self[n]!);
    if (w <= 0) continue;
    out.write((weights.length > 0 ? ',\n[' : '[') + trie.path(n).map(frame).join(',') + ']');
    weights.push(w);
    total += w;
  }
  const framesText = frames.map((f) => `{"name":${JSON.stringify(f)}}`).join(',\n');
  out.write(`\n],"weights":[${weights.join(',')}],"endValue":${onGrid(total)}}],\n"shared":{"frames":[\n${framesText}\n]},"exporter":"boot-trace","activeProfileIndex":0}\n`);
  return weights.length;
}
