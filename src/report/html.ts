/**
 * The boot report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched.
 * Top to bottom: headline figures, the timeline, the flame graph (icicle), then the tables.
 */
import { basename } from 'node:path';
import { flameSvg } from './flame-svg.js';
import { escapeXml, formatBytes, formatUs } from './format.js';
import type { ReportData } from './data.js';
import { timelineSvg, type TimelineLane } from './timeline-svg.js';

const COLOURS = {
  phases: '#5b6f95', trace: '#8a8f98', stages: '#2f9e6e', markers: '#e07b22', initcalls: '#1f8a9e',
  syscalls: '#7d4fc4', milestones: '#d0413a',
};

const CSS = `
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f6f3;color:#1d1d1f}
header{background:#1f2a3a;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#c5cbd6;font-size:13px}
main{padding:18px 28px 40px;max-width:1360px}
section{background:#fff;border:1px solid #e2e2dc;border-radius:8px;padding:14px 18px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 18px}
.card{background:#fff;border:1px solid #e2e2dc;border-radius:8px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:20px;font-weight:600}
.card span{color:#666;font-size:12px}
.scroll{overflow-x:auto}
.scroll svg{width:100%;height:auto;display:block}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
.grid section{overflow-x:auto}
.grid section{margin:0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
th{background:#fafaf7;font-weight:600;color:#444}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.f{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;max-width:420px;overflow:hidden;text-overflow:ellipsis}
.bar{display:inline-block;height:9px;background:#e8834e;border-radius:2px;vertical-align:middle;margin-right:6px}
.note{color:#777;font-size:12px;margin:6px 0 0}
svg .item:hover rect,svg g:hover>rect{stroke:#111;stroke-width:1}
svg text{pointer-events:none}
`;

interface Col<R> { head: string; cell: (r: R) => string; num?: boolean; mono?: boolean }

function table<R>(rows: R[], cols: Col<R>[]): string {
  const head = cols.map((c) => `<th${c.num ? ' class="n"' : ''}>${escapeXml(c.head)}</th>`).join('');
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td${c.num ? ' class="n"' : c.mono ? ' class="f"' : ''}>${c.cell(r)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const us = (v: number | null | undefined): string => (v === null || v === undefined ? '' : escapeXml(formatUs(v)));
const int = (v: number): string => v.toLocaleString('en-US');
const text = (s: string): string => escapeXml(s);

export function renderReport(d: ReportData): string {
  const cards: Array<[string, string]> = [];
  const parts: string[] = [];
  const p = d.profile;
  const t = d.trace;
  const c = d.console;

  // Headline figures.
  const lastMarker = c?.events.markers.at(-1);
  if (lastMarker) cards.push([formatUs(lastMarker.t), `to BOOT_TIME ${lastMarker.name}`]);
  else if (c) cards.push([formatUs(c.events.end), 'to the last console line']);
  if (p?.phases_us.total !== undefined) cards.push([formatUs(p.phases_us.total), 'VMM total (host)']);
  if (p?.exit?.reason) cards.push([String(p.exit.reason), `exit${p.exit.symbol ? ' in ' + p.exit.symbol : ''}`]);
  if (t) cards.push([int(t.events), 'trace lines']);
  if (t && t.hot[0]) cards.push([t.hot[0].function, `hottest: ${formatUs(t.hot[0].time_us)} self (${t.hot[0].percent}%)`]);
  if (c && 'us_per_char' in c.uart) cards.push([`${c.uart.us_per_char.toFixed(2)} us/char`, `UART cost, ${formatUs(c.uart.added_us)} in all`]);
  if (typeof p?.peak_rss_mib === 'number') cards.push([formatBytes(p.peak_rss_mib * 1024 * 1024), 'VMM peak RSS']);

  // Timeline lanes on the host clock; the trace's own lanes join them unless the trace counts steps.
  const host: TimelineLane[] = [];
  const traceLanes: TimelineLane[] = [];
  if (d.phases.length) host.push({ name: 'VMM phases', colour: COLOURS.phases, maxRows: 1, items: d.phases.map((ph) => ({ start: ph.start, end: ph.start + ph.duration, label: ph.name })) });
  if (c) {
    if (c.stages.length) host.push({ name: 'stages', colour: COLOURS.stages, maxRows: 5, items: c.stages.map((s) => ({ start: s.start_us, end: s.end_us, label: s.name, tip: s.percent !== null ? `${s.percent}% of the boot` : undefined })) });
    const marks = [...c.events.markers.map((m) => ({ start: m.t, label: m.name, tip: m.ns !== undefined ? `guest says ${formatUs(m.ns / 1000)}` : undefined })), ...c.events.milestones.map((m) => ({ start: m.t, label: m.name }))];
    if (marks.length) host.push({ name: 'console markers', colour: COLOURS.markers, maxRows: 3, items: marks });
    if (c.events.initcalls.length) host.push({ name: 'initcalls', colour: COLOURS.initcalls, maxRows: 4, items: c.events.initcalls.map((s) => ({ start: s.start, end: s.end, label: s.name, tip: s.usecs !== undefined ? `kernel says ${s.usecs} usecs` : undefined })) });
  }
  if (t && t.events > 0) {
    traceLanes.push({ name: 'single-step trace', colour: COLOURS.trace, maxRows: 1, items: [{ start: t.start, end: t.end, label: `${basename(t.path)}: ${int(t.events)} lines` }] });
    if (t.syscalls.length) traceLanes.push({ name: 'system calls', colour: COLOURS.syscalls, maxRows: 3, items: t.syscalls.map((s) => ({ start: s.time_us, end: s.time_us + s.duration_us, label: s.syscall, tip: s.user_address ? `from ${s.user_address}` : undefined })) });
    const firsts = t.milestones.map((m) => ({ start: m.first_us, label: m.function }));
    if (t.firstUser !== null) firsts.push({ start: t.firstUser, label: 'first user instruction' });
    if (firsts.length) traceLanes.push({ name: 'first calls', colour: COLOURS.milestones, maxRows: 4, guides: true, items: firsts });
  }
  parts.push(`<section><h2>Timeline</h2><div class="scroll">${timelineSvg(d.stepClock ? host : [...host, ...traceLanes], { title: 'boot timeline' })}</div>`);
  if (d.stepClock && traceLanes.length) {
    parts.push(`<p class="note">The trace was captured with the steps clock: its lanes are drawn against instruction counts.</p><div class="scroll">${timelineSvg(traceLanes, { unit: 'steps', title: 'trace timeline' })}</div>`);
  }
  if (!host.length && !traceLanes.length) parts.push('<p class="note">Nothing timed to show.</p>');
  parts.push('</section>');

  if (t) {
    const s = t.stacks.counts;
    parts.push(`<section><h2>Where the traced time goes (icicle: callers above callees, width = inclusive time)</h2><div class="scroll">${flameSvg(t.stacks.trie, t.names, { width: 1290, icicle: true })}</div>`);
    parts.push(`<p class="note">Call stacks rebuilt from the single-step trace (docs/call-stacks.md): ${int(s.calls)} calls, ${int(s.returns)} returns, ${int(s.replaced)} tail calls or unseen callers, deepest stack ${s.maxDepthSeen}.</p></section>`);
  }

  const tables: string[] = [];
  if (t) {
    const max = Math.max(...t.hot.map((h) => h.time_us), 1e-9);
    tables.push(`<section><h2>Hot functions (self time)</h2>${table(t.hot, [
      { head: 'function', mono: true, cell: (r) => text(r.function) },
      { head: 'self', num: true, cell: (r) => `<span class="bar" style="width:${Math.round((60 * r.time_us) / max)}px"></span>${us(r.time_us)}` },
      { head: '%', num: true, cell: (r) => r.percent.toFixed(2) },
      { head: 'inclusive', num: true, cell: (r) => us(r.inclusive_us) },
      { head: 'lines', num: true, cell: (r) => int(r.lines) },
    ])}</section>`);
    if (t.syscallSummary.length) {
      tables.push(`<section><h2>System calls</h2>${table(t.syscallSummary, [
        { head: 'syscall', mono: true, cell: (r) => text(r.syscall) },
        { head: 'count', num: true, cell: (r) => int(r.count) },
        { head: 'total', num: true, cell: (r) => us(r.total_us) },
        { head: 'mean', num: true, cell: (r) => us(r.mean_us) },
        { head: 'max', num: true, cell: (r) => us(r.max_us) },
      ])}</section>`);
    }
    if (t.milestones.length || t.firstUser !== null) {
      const rows = [...t.milestones.map((m) => ({ what: m.function, t: m.first_us })), ...(t.firstUser !== null ? [{ what: 'first user instruction', t: t.firstUser }] : [])].sort((a, b) => a.t - b.t);
      tables.push(`<section><h2>Milestones (first calls)</h2>${table(rows, [
        { head: 'function', mono: true, cell: (r) => text(r.what) },
        { head: 'first seen', num: true, cell: (r) => (d.stepClock ? `${int(Math.round(r.t))} steps` : us(r.t)) },
      ])}</section>`);
    }
  }
  if (c) {
    if (c.stages.length) {
      tables.push(`<section><h2>Stages (console)</h2>${table(c.stages, [
        { head: 'stage', mono: true, cell: (r) => text(r.name) },
        { head: 'start', num: true, cell: (r) => us(r.start_us) },
        { head: 'duration', num: true, cell: (r) => us(r.duration_us) },
        { head: '%', num: true, cell: (r) => (r.percent === null ? '' : r.percent.toFixed(2)) },
      ])}</section>`);
    }
    const done = c.initcalls.filter((r) => r.duration_us !== null).slice(0, 15);
    if (done.length) {
      const sm = c.initcallSummary;
      tables.push(`<section><h2>Longest initcalls</h2>${table(done, [
        { head: 'initcall', mono: true, cell: (r) => text(r.initcall + (r.module ? ` [${r.module}]` : '')) },
        { head: 'kernel time', num: true, cell: (r) => us(r.duration_us) },
        { head: 'ret', num: true, cell: (r) => (r.ret === null ? '' : String(r.ret)) },
      ])}<p class="note">${int(sm.initcalls)} initcalls, ${int(sm.probes)} probes${sm.span_us !== null ? `, ${formatUs(sm.span_us)} from the first to freeing init memory` : ''}.</p></section>`);
    }
  }
  const figures: Array<[string, string]> = [];
  if (p) {
    for (const [k, v] of Object.entries(p.phases_us)) figures.push([`phase ${k}`, formatUs(v)]);
    for (const [k, v] of Object.entries(p.guest_markers_us)) figures.push([`guest ${k}`, formatUs(v)]);
    // profile.json's figures (capture/output/profile.ts), flattened: common, step-mode and KVM parts.
    const flat: Record<string, number | null | undefined> = {
      memory_mib: p.memory_mib, peak_rss_bytes: p.peak_rss_mib === null ? null : p.peak_rss_mib * 1024 * 1024, steps: p.step?.steps,
      steps_per_second: p.step?.steps_per_second, exits: p.kvm?.exits, console_lines: p.console_lines, trace_lines: p.step?.trace_lines, symbols_us: p.step?.symbols_us,
    };
    const plain: Array<[string, (v: number) => string]> = [['memory_mib', (v) => `${v} MiB`], ['peak_rss_bytes', formatBytes], ['steps', int], ['steps_per_second', (v) => `${int(Math.round(v))}/s`], ['exits', int], ['console_lines', int], ['trace_lines', int], ['symbols_us', formatUs]];
    for (const [k, f] of plain) if (typeof flat[k] === 'number') figures.push([k.replace(/_/g, ' '), f(flat[k] as number)]);
    if (p.exit) figures.push(['exit', `${p.exit.reason ?? ''} at ${p.exit.rip ?? '?'} (${p.exit.symbol ?? '?'})${p.exit.detail ? ': ' + p.exit.detail : ''}`]);
  }
  if (c) {
    if ('us_per_char' in c.uart) {
      const u = c.uart;
      figures.push(['UART cost', `${u.us_per_char.toFixed(2)} us/char (95% ${u.ci95_low.toFixed(2)}-${u.ci95_high.toFixed(2)}), ${formatUs(u.added_us)} for ${int(u.chars)} chars`]);
      if (u.lines_per_ms !== null) figures.push(['UART lines/ms', u.lines_per_ms.toFixed(2)]);
    } else figures.push(['UART cost', c.uart.error]);
    figures.push(['console lines', int(c.events.lines)]);
  }
  if (figures.length) {
    tables.push(`<section><h2>Figures (profile.json, console)</h2>${table(figures, [
      { head: 'what', cell: (r) => text(r[0]) },
      { head: 'value', cell: (r) => text(r[1]) },
    ])}</section>`);
  }
  if (tables.length) parts.push(`<div class="grid">${tables.join('\n')}</div>`);

  const sources = [t ? basename(t.path) : null, c ? basename(c.path) : null, p ? 'profile.json' : null].filter(Boolean).join(', ');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeXml(d.title)}</title>
<style>${CSS}</style></head>
<body>
<header><h1>${escapeXml(d.title)}</h1><p>${escapeXml(d.dir)}: ${escapeXml(sources)}${p?.kernel ? ` &middot; kernel ${escapeXml(String(p.kernel))}` : ''}${p?.cmdline ? ` &middot; <code>${escapeXml(String(p.cmdline))}</code>` : ''} &middot; made by boot-trace</p></header>
<main>
<div class="cards">${cards.map(([v, l]) => `<div class="card"><b>${escapeXml(v)}</b><span>${escapeXml(l)}</span></div>`).join('')}</div>
${parts.join('\n')}
</main></body></html>
`;
}
