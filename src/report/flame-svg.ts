/**
 * A flame graph (or icicle chart) of rebuilt call stacks as one SVG: a box per distinct stack, as wide as
 * its inclusive time, callees stacked on their caller, siblings in name order (as flamegraph.pl does, so
 * the same code path sits in the same place in every graph). Boxes narrower than a third of a pixel are
 * left out with their callees; names are clipped to their box; hovering shows the full name, time, share
 * and calls (an SVG <title>, which every browser shows without script). Each box carries its layout in
 * data- attributes (x and width in pixels at full width, depth) for the zoom and search of interactive.ts,
 * which a standalone SVG embeds and the report includes once.
 */
import type { StackTrie } from '../../analyzers/stack-trie.js';
import { ROOT } from '../../analyzers/stack-trie.js';
import { INTERRUPT_ENTRY } from '../../analyzers/call-stacks.js';
import { sortedChildren } from '../export/collapsed.js';
import { escapeXml, formatUs } from './format.js';
import { scriptElement } from './interactive.js';

export interface FlameOptions {
  width?: number;
  rowHeight?: number;
  title?: string;
  /** Root at the top (icicle) instead of the bottom (flame). */
  icicle?: boolean;
  /** A whole SVG document with its XML declaration, styles and script (for a .svg file); else an inline <svg>. */
  standalone?: boolean;
  /** What the widths measure, for the footer ("host us while stepping", "guest instructions"); default "time". */
  unitLabel?: string;
  /** Formats a width's value for tooltips (default formatUs). */
  format?: (v: number) => string;
}

const FONT = 11;
/** Average advance of a character of the 11px monospace font, for clipping names without measuring. */
const CHAR_W = 6.7;
const MIN_PX = 0.33;

/** Colour per frame: warm hues for kernel functions (stable per name), blue for user space, violet for interrupts. */
export function frameColour(name: string): string {
  if (name === '[user]') return 'hsl(205,70%,62%)';
  if (name === '[unresolved]') return 'hsl(0,0%,70%)';
  let h = 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  if (INTERRUPT_ENTRY.test(name)) return `hsl(${270 + (h % 30)},55%,${68 + (h % 10)}%)`;
  return `hsl(${(h % 55) + 5},${78 + (h % 15)}%,${55 + ((h >>> 8) % 12)}%)`;
}

export function flameSvg(trie: StackTrie, names: string[], o: FlameOptions = {}): string {
  const width = o.width ?? 1200;
  const rowH = o.rowHeight ?? 17;
  const pad = 10;
  const titleH = o.title || o.standalone ? 26 : 18;
  const fmt = o.format ?? formatUs;
  const incl = trie.inclusive();
  const total = incl[ROOT]!;
  const calls = trie.calls;
  const { first, order } = sortedChildren(trie, names);
  const inner = width - 2 * pad;
  const scale = total > 0 ? inner / total : 0;

  // Lay out depth-first; collect boxes first to know the height.
  const boxes: Array<{ x: number; w: number; depth: number; node: number }> = [];
  let maxDepth = 0;
  const todo: Array<[number, number, number]> = [];
  let x = 0;
  for (let i = first[ROOT]!; i < first[ROOT + 1]!; i++) {
    todo.push([order[i]!, x, 0]);
    x += incl[order[i]!]! * scale;
  }
  todo.reverse();
  while (todo.length > 0) {
    const [n, nx, depth] = todo.pop()!;
    const w = incl[n]! * scale;
    if (w < MIN_PX) continue;
    boxes.push({ x: nx, w, depth, node: n });
    if (depth > maxDepth) maxDepth = depth;
    let cx = nx;
    const kids: Array<[number, number, number]> = [];
    for (let i = first[n]!; i < first[n + 1]!; i++) {
      kids.push([order[i]!, cx, depth + 1]);
      cx += incl[order[i]!]! * scale;
    }
    for (let k = kids.length - 1; k >= 0; k--) todo.push(kids[k]!);
  }

  const rows = boxes.length > 0 ? maxDepth + 1 : 1;
  const height = titleH + rows * rowH + pad + 14;
  const yOf = (depth: number): number => (o.icicle ? titleH + depth * rowH : titleH + (rows - 1 - depth) * rowH);
  const out: string[] = [];
  if (o.standalone) out.push('<?xml version="1.0" encoding="UTF-8"?>\n');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="flame" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-monospace,Menlo,Consolas,monospace" font-size="${FONT}" data-pad="${pad}" data-inner="${inner}">\n`);
  if (o.standalone) {
    out.push('<style>.flame g.fr:hover rect{stroke:#222;stroke-width:0.8} .flame g.fr text{pointer-events:none;fill:#111} .flame .ctl{cursor:pointer;fill:#2456a8}</style>\n');
    out.push(`<rect width="100%" height="100%" fill="#fbfbf8"/>\n`);
  }
  if (o.title) out.push(`<text x="${width / 2}" y="17" text-anchor="middle" font-size="14" font-family="system-ui,sans-serif">${escapeXml(o.title)}</text>\n`);
  // Controls of interactive.ts: reset zoom (shown once zoomed), search (standalone: the report has a box), the match share.
  const ctlY = titleH - 8;
  out.push(`<text class="reset ctl" x="${pad}" y="${ctlY}" font-family="system-ui,sans-serif" style="display:none">reset zoom</text>`);
  if (o.standalone) out.push(`<text class="find ctl" x="${width - pad}" y="${ctlY}" text-anchor="end" font-family="system-ui,sans-serif">search</text>`);
  out.push(`<text class="matched" x="${width - pad - (o.standalone ? 60 : 0)}" y="${ctlY}" text-anchor="end" font-family="system-ui,sans-serif" fill="${'#a0008c'}"></text>\n`);
  if (boxes.length === 0) out.push(`<text x="${pad}" y="${titleH + 12}">no stacks: the trace has no timed events</text>\n`);
  for (const b of boxes) {
    const name = names[trie.fn[b.node]!]!;
    const us = incl[b.node]!;
    const pct = total > 0 ? (100 * us) / total : 0;
    const tip = `${name}\n${fmt(us)} (${pct.toFixed(2)}%), ${calls[b.node]!.toLocaleString('en-US')} call${calls[b.node] === 1 ? '' : 's'}\n${stackTip(trie, names, b.node)}`;
    const y = yOf(b.depth);
    const fits = Math.floor((b.w - 6) / CHAR_W);
    const label = fits >= 3 ? (name.length <= fits ? name : name.slice(0, fits - 2) + '..') : '';
    out.push(`<g class="fr" data-x="${b.x.toFixed(2)}" data-w="${b.w.toFixed(2)}" data-d="${b.depth}"><title>${escapeXml(tip)}</title><rect x="${(pad + b.x).toFixed(2)}" y="${y}" width="${b.w.toFixed(2)}" height="${rowH - 1}" rx="2" fill="${frameColour(name)}"/>`);
    if (label) out.push(`<text x="${(pad + b.x + 3).toFixed(2)}" y="${y + rowH - 5}">${escapeXml(label)}</text>`);
    out.push('</g>\n');
  }
  out.push(`<text x="${pad}" y="${height - 6}" font-size="10" fill="#555" font-family="system-ui,sans-serif">width = inclusive ${escapeXml(o.unitLabel ?? 'time')}; ${escapeXml(fmt(total))} in all; hover a box for its name, time and stack; click to zoom</text>\n`);
  if (o.standalone) out.push(scriptElement() + '\n');
  out.push('</svg>\n');
  return out.join('');
}

/** The stack above a node (outermost first), shortened for a tooltip. */
function stackTip(trie: StackTrie, names: string[], node: number): string {
  const path = trie.path(node).map((id) => names[id]!);
  const shown = path.length > 12 ? [...path.slice(0, 4), '...', ...path.slice(-7)] : path;
  return shown.join(' > ');
}
