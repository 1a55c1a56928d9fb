/**
 * A boot timeline as one SVG: a shared time axis, one lane per kind of event (host phases, stages,
 * console markers, initcalls, system calls, first calls), spans as bars and instants as ticks with a
 * label. Overlapping items in a lane are spread over sub-rows; names are clipped to their bar, and an
 * instant whose label would overlap another's is drawn without it (its name stays in the hover title), so
 * labels never pile up. Every item has an SVG <title> with its name and times, shown on hover.
 *
 * Items are drawn at `translate(x, 0)` with their times in data- attributes, and the chart area is clipped,
 * so the zoom of interactive.ts only moves groups and redraws the axis.
 */
import { max, minIndex } from 'd3-array';
import { axisFormat, escapeXml, formatUs } from './format.js';

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
  /** 'us' (microseconds) or 'steps' (instruction counts). */
  unit?: 'us' | 'steps';
  title?: string;
  /** What the axis measures, said under it (default: host microseconds since the VM was created). */
  axisLabel?: string;
  /** One row per lane, no item counts: for many small lanes (one per initcall). */
  compact?: boolean;
  /** The time span to draw (default: the items' extent), so several timelines can share an axis. */
  span?: [number, number];
}

const RIGHT = 24, AXIS_H = 26, CHAR_W = 6.2;
let clipIds = 0;

export function timelineSvg(lanes: TimelineLane[], o: TimelineOptions = {}): string {
  const width = o.width ?? 1300;
  const LABEL_W = o.compact ? 230 : 170;
  const ROW_H = o.compact ? 16 : 18, LANE_GAP = o.compact ? 2 : 8;
  const shown = lanes.filter((l) => l.items.length > 0);
  // Loops, not Math.min(...items): a lane can hold 10^5-10^6 items, more than a call's arguments may be.
  let t0 = Infinity, t1 = -Infinity;
  if (o.span) [t0, t1] = o.span;
  else {
    for (const lane of shown) {
      for (const i of lane.items) {
        if (i.start < t0) t0 = i.start;
        const end = i.end ?? i.start;
        if (end > t1) t1 = end;
      }
    }
  }
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1; }
  if (t1 <= t0) t1 = t0 + 1;
  const chartW = width - LABEL_W - RIGHT;
  const x = (t: number): number => LABEL_W + ((t - t0) / (t1 - t0)) * chartW;
  const fmt = (t: number): string => (o.unit === 'steps' ? `${Math.round(t).toLocaleString('en-US')} instructions` : formatUs(t));

  // Rows per lane, greedily: an item goes in the first row whose last item ends (in pixels) before it.
  const placed = shown.map((lane) => {
    const maxRows = o.compact ? 1 : (lane.maxRows ?? 4);
    const ends: number[] = [];
    const sorted = [...lane.items].sort((a, b) => a.start - b.start);
    const drawn = sorted.length > MAX_ITEMS ? coalesce(sorted, (t) => x(t)) : sorted;
    const items = drawn.map((item) => {
      const px0 = x(item.start);
      const labelW = 8 + item.label.length * CHAR_W;
      // An instant's label goes to the left of its mark when it would run past the items' clip (right edge of the chart + 6).
      const flip = item.end === undefined && px0 + labelW > LABEL_W + chartW + 6;
      const markEnd = item.end !== undefined ? Math.max(px0 + 1, x(item.end)) : px0 + 5;
      const px1 = item.end !== undefined ? markEnd : flip ? px0 + 5 : px0 + labelW;
      const left = flip ? px0 - labelW : px0 - 5;
      let row = ends.findIndex((e) => e + 2 <= left);
      let labelled = true;
      if (row < 0 && ends.length < maxRows) row = ends.length;
      if (row < 0) {
        // No row is free: share the least crowded one; an instant then goes without its label.
        row = minIndex(ends);
        labelled = item.end !== undefined;
        ends[row] = Math.max(ends[row]!, markEnd);
      } else ends[row] = px1;
      return { item, row, px0, px1: markEnd, flip, labelled };
    });
    return { lane, items, rows: Math.max(1, ends.length) };
  });

  const height = AXIS_H + placed.reduce((s, p) => s + p.rows * ROW_H + LANE_GAP, 0) + 22;
  const clipId = `tl-clip-${++clipIds}`;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui,-apple-system,Segoe UI,sans-serif" font-size="11" data-t0="${t0}" data-t1="${t1}" data-left="${LABEL_W}" data-chart="${chartW}" data-unit="${o.unit ?? 'us'}">\n`);
  if (o.title) out.push(`<title>${escapeXml(o.title)}</title>\n`);
  out.push(`<defs><clipPath id="${clipId}"><rect x="${LABEL_W - 6}" y="0" width="${chartW + 12}" height="${height}"/></clipPath></defs>\n`);

  // Axis and grid (interactive.ts redraws this group when zooming).
  out.push(`<g class="axis" data-bottom="${height - 20}">`);
  const step = niceStep((t1 - t0) / 10);
  // One unit for every tick (format.ts axisFormat); counts as whole numbers.
  const tick = o.unit === 'steps' ? fmt : axisFormat(t0, t1, step);
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
    const px = x(t).toFixed(1);
    out.push(`<line x1="${px}" y1="${AXIS_H - 6}" x2="${px}" y2="${height - 20}" stroke="#e4e4e0"/>`);
    out.push(`<text x="${px}" y="${AXIS_H - 10}" text-anchor="middle" fill="#666">${escapeXml(tick(t))}</text>\n`);
  }
  out.push('</g>\n');

  let y = AXIS_H;
  const lanesOut: string[] = [];
  const itemsOut: string[] = [];
  for (const p of placed) {
    const laneH = p.rows * ROW_H;
    const fits = Math.floor((LABEL_W - 16) / (o.compact ? 6.4 : 6.6));
    const name = p.lane.name.length <= fits ? p.lane.name : p.lane.name.slice(0, fits - 2) + '..';
    lanesOut.push(`<rect x="0" y="${y - 2}" width="${width}" height="${laneH + 4}" fill="${p.lane.colour}" fill-opacity="${o.compact ? 0.03 : 0.05}"/>`);
    lanesOut.push(`<text x="10" y="${y + (o.compact ? 11 : 13)}" font-weight="${o.compact ? 400 : 600}" fill="#333"${o.compact ? ' font-family="ui-monospace,Menlo,Consolas,monospace" font-size="10.5"' : ''}>${name !== p.lane.name ? `<title>${escapeXml(p.lane.name)}</title>` : ''}${escapeXml(name)}</text>`);
    if (!o.compact) lanesOut.push(`<text x="10" y="${y + 26}" fill="#888" font-size="10">${p.lane.items.length.toLocaleString('en-US')} item${p.lane.items.length === 1 ? '' : 's'}</text>\n`);
    for (const { item, row, px0, px1, flip, labelled } of p.items) {
      const top = y + row * ROW_H;
      const times = item.end !== undefined ? `${fmt(item.start)} - ${fmt(item.end)} (${fmt(item.end - item.start)})` : `at ${fmt(item.start)}`;
      const tip = `${item.label}\n${times}${item.tip ? '\n' + item.tip : ''}`;
      const data = `data-s="${item.start}"${item.end !== undefined ? ` data-e="${item.end}"` : ''} data-l="${escapeXml(item.label)}"`;
      itemsOut.push(`<g class="item" ${data} transform="translate(${px0.toFixed(1)},0)"><title>${escapeXml(tip)}</title>`);
      if (item.end !== undefined) {
        const w = px1 - px0;
        itemsOut.push(`<rect x="0" y="${top + 1}" width="${w.toFixed(1)}" height="${ROW_H - 3}" rx="2" fill="${p.lane.colour}" fill-opacity="0.85"/>`);
        const chars = Math.floor((w - 6) / CHAR_W);
        itemsOut.push(`<text x="3" y="${top + ROW_H - 6}" fill="#fff">${chars >= 3 ? escapeXml(item.label.length <= chars ? item.label : item.label.slice(0, chars - 2) + '..') : ''}</text>`);
      } else {
        if (p.lane.guides) itemsOut.push(`<line x1="0" y1="${AXIS_H - 4}" x2="0" y2="${height - 20}" stroke="${p.lane.colour}" stroke-opacity="0.35" stroke-dasharray="3,3"/>`);
        itemsOut.push(`<path d="M0 ${top + 2} l4 6 l-4 6 l-4 -6 z" fill="${p.lane.colour}"/>`);
        if (labelled) {
          itemsOut.push(flip
            ? `<text x="-7" y="${top + 12}" fill="#222" text-anchor="end">${escapeXml(item.label)}</text>`
            : `<text x="7" y="${top + 12}" fill="#222">${escapeXml(item.label)}</text>`);
        }
      }
      itemsOut.push('</g>\n');
    }
    y += laneH + LANE_GAP;
  }
  out.push(lanesOut.join(''), `<g clip-path="url(#${clipId})">\n`, itemsOut.join(''), '</g>\n');
  const axisLabel = o.axisLabel ?? (o.unit === 'steps' ? 'guest instructions' : 'microseconds since the VM was created (host clock)');
  out.push(`<text x="${LABEL_W}" y="${height - 6}" fill="#777" font-size="10">${escapeXml(axisLabel)}; hover any bar or marker for its name and times; drag to zoom, double-click to zoom out</text>\n`);
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
