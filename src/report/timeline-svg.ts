/**
 * A boot timeline as one SVG: a shared time axis, one lane per kind of event (host phases, stages,
 * console markers, initcalls, system calls, first calls), spans as bars and instants as ticks with a
 * label. Overlapping items in a lane are spread over sub-rows; names are clipped to their bar; every
 * item has an SVG <title> with its name and times, shown on hover.
 */
import { max, minIndex } from 'd3-array';
import { escapeXml, formatUs } from './format.js';

export interface TimelineItem {
  start: number;
  /** Absent for an instant. */
  end?: number;
  label: string;
  /** Extra hover text (the label and times are always shown). */
  tip?: string;
}

export interface TimelineLane {
  name: string;
  colour: string;
  items: TimelineItem[];
  /** Most sub-rows before items are drawn over each other (default 4). */
  maxRows?: number;
  /** Draw a faint vertical line through every lane at each instant (milestones). */
  guides?: boolean;
}

export interface TimelineOptions {
  width?: number;
  /** 'us' (host microseconds) or 'steps' (instruction counts). */
  unit?: 'us' | 'steps';
  title?: string;
}

const LABEL_W = 170, RIGHT = 24, ROW_H = 18, LANE_GAP = 8, AXIS_H = 26, CHAR_W = 6.2;

export function timelineSvg(lanes: TimelineLane[], o: TimelineOptions = {}): string {
  const width = o.width ?? 1300;
  const shown = lanes.filter((l) => l.items.length > 0);
  // Loops, not Math.min(...items): a lane can hold 10^5-10^6 items, more than a call's arguments may be.
  let t0 = Infinity, t1 = -Infinity;
  for (const lane of shown) {
    for (const i of lane.items) {
      if (i.start < t0) t0 = i.start;
      const end = i.end ?? i.start;
      if (end > t1) t1 = end;
    }
  }
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1; }
  if (t1 <= t0) t1 = t0 + 1;
  const chartW = width - LABEL_W - RIGHT;
  const x = (t: number): number => LABEL_W + ((t - t0) / (t1 - t0)) * chartW;
  const fmt = (t: number): string => (o.unit === 'steps' ? `${Math.round(t).toLocaleString('en-US')} steps` : formatUs(t));

  // Rows per lane, greedily: an item goes in the first row whose last item ends (in pixels) before it.
  const placed = shown.map((lane) => {
    const max = lane.maxRows ?? 4;
    const ends: number[] = [];
    const sorted = [...lane.items].sort((a, b) => a.start - b.start);
    const drawn = sorted.length > MAX_ITEMS ? coalesce(sorted, (t) => x(t)) : sorted;
    const items = drawn.map((item) => {
      const px0 = x(item.start);
      const labelW = 8 + item.label.length * CHAR_W;
      // An instant's label goes to the left of its mark when it would run off the right edge.
      const flip = item.end === undefined && px0 + labelW > width - 4;
      const px1 = item.end !== undefined ? Math.max(px0 + 1, x(item.end)) : flip ? px0 + 5 : px0 + labelW;
      const left = flip ? px0 - labelW : px0;
      let row = ends.findIndex((e) => e + 2 <= left);
      if (row < 0) row = ends.length < max ? ends.length : minIndex(ends);
      ends[row] = px1;
      return { item, row, px0, px1, flip };
    });
    return { lane, items, rows: Math.max(1, ends.length) };
  });

  const height = AXIS_H + placed.reduce((s, p) => s + p.rows * ROW_H + LANE_GAP, 0) + 22;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui,-apple-system,Segoe UI,sans-serif" font-size="11">\n`);
  if (o.title) out.push(`<title>${escapeXml(o.title)}</title>\n`);

  // Axis and grid.
  const step = niceStep((t1 - t0) / 10);
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
    const px = x(t).toFixed(1);
    out.push(`<line x1="${px}" y1="${AXIS_H - 6}" x2="${px}" y2="${height - 20}" stroke="#e4e4e0"/>`);
    out.push(`<text x="${px}" y="${AXIS_H - 10}" text-anchor="middle" fill="#666">${escapeXml(fmt(t))}</text>\n`);
  }

  let y = AXIS_H;
  for (const p of placed) {
    const laneH = p.rows * ROW_H;
    out.push(`<rect x="0" y="${y - 2}" width="${width}" height="${laneH + 4}" fill="${p.lane.colour}" fill-opacity="0.05"/>`);
    out.push(`<text x="10" y="${y + 13}" font-weight="600" fill="#333">${escapeXml(p.lane.name)}</text>`);
    out.push(`<text x="10" y="${y + 26}" fill="#888" font-size="10">${p.lane.items.length.toLocaleString('en-US')} item${p.lane.items.length === 1 ? '' : 's'}</text>\n`);
    for (const { item, row, px0, px1, flip } of p.items) {
      const top = y + row * ROW_H;
      const times = item.end !== undefined ? `${fmt(item.start)} - ${fmt(item.end)} (${o.unit === 'steps' ? fmt(item.end - item.start) : formatUs(item.end - item.start)})` : `at ${fmt(item.start)}`;
      const tip = `${item.label}\n${times}${item.tip ? '\n' + item.tip : ''}`;
      out.push(`<g class="item"><title>${escapeXml(tip)}</title>`);
      if (item.end !== undefined) {
        const w = px1 - px0;
        out.push(`<rect x="${px0.toFixed(1)}" y="${top + 1}" width="${w.toFixed(1)}" height="${ROW_H - 3}" rx="2" fill="${p.lane.colour}" fill-opacity="0.85"/>`);
        const fits = Math.floor((w - 6) / CHAR_W);
        if (fits >= 3) out.push(`<text x="${(px0 + 3).toFixed(1)}" y="${top + 12}" fill="#fff">${escapeXml(item.label.length <= fits ? item.label : item.label.slice(0, fits - 2) + '..')}</text>`);
      } else {
        if (p.lane.guides) out.push(`<line x1="${px0.toFixed(1)}" y1="${AXIS_H - 4}" x2="${px0.toFixed(1)}" y2="${height - 20}" stroke="${p.lane.colour}" stroke-opacity="0.35" stroke-dasharray="3,3"/>`);
        out.push(`<path d="M${px0.toFixed(1)} ${top + 2} l4 6 l-4 6 l-4 -6 z" fill="${p.lane.colour}"/>`);
        out.push(flip
          ? `<text x="${(px0 - 7).toFixed(1)}" y="${top + 12}" fill="#222" text-anchor="end">${escapeXml(item.label)}</text>`
          : `<text x="${(px0 + 7).toFixed(1)}" y="${top + 12}" fill="#222">${escapeXml(item.label)}</text>`);
      }
      out.push('</g>\n');
    }
    y += laneH + LANE_GAP;
  }
  out.push(`<text x="${LABEL_W}" y="${height - 6}" fill="#777" font-size="10">${o.unit === 'steps' ? 'instruction steps' : 'microseconds since the VM was created (host clock)'}; hover any bar or marker for its name and times</text>\n`);
  out.push('</svg>\n');
  return out.join('');
}

/** A lane with more items than this draws runs of items closer than 2 px as one bar (a 10 M-line trace has ~10^5 syscalls). */
const MAX_ITEMS = 600;

function coalesce(items: TimelineItem[], x: (t: number) => number): TimelineItem[] {
  const out: TimelineItem[] = [];
  let run: TimelineItem[] = [];
  let runEnd = -Infinity;
  const flush = (): void => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) {
      const counts = new Map<string, number>();
      for (const i of run) counts.set(i.label, (counts.get(i.label) ?? 0) + 1);
      const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([l, n]) => `${l} x${n}`).join(', ');
      out.push({ start: run[0]!.start, end: max(run, (i) => i.end ?? i.start)!, label: `${run.length} items`, tip: top });
    }
    run = [];
  };
  for (const item of items) {
    const px = x(item.start);
    if (run.length > 0 && px > runEnd + 2) flush();
    run.push(item);
    runEnd = Math.max(run.length === 1 ? -Infinity : runEnd, x(item.end ?? item.start));
  }
  flush();
  return out;
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
