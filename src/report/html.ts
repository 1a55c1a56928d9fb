/**
 * The boot report as one self-contained HTML file: inline CSS, SVG and one small script (zoom and search,
 * interactive.ts), nothing fetched. Top to bottom: what was measured (and whether its times are boot time),
 * headline figures, the timeline, the initcalls by name, the flame graph (icicle), then the tables.
 */
import { basename } from 'node:path';
import { max as d3max } from 'd3-array';
import { flameSvg } from './flame-svg.js';
import { escapeXml, formatBytes, formatUs } from './format.js';
import type { ReportData } from './data.js';
import { timelineSvg, type TimelineLane } from './timeline-svg.js';
import { scriptElement } from './interactive.js';
import { KERNEL_THUNK } from '../../analyzers/call-stacks.js';
import type { Profile } from '../../capture/output/profile.js';
import type { Clock } from '../output/clock.js';
import { fitMeaningful, fitNote } from '../../analyzers/uart.js';

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
.what{background:#fff;border:1px solid #e2e2dc;border-radius:8px;padding:10px 16px;margin:0 0 12px;font-size:14px}
.warn{background:#fff6e0;border:1px solid #e8c36a;border-radius:8px;padding:8px 16px;margin:0 0 12px;font-size:13px}
.tools{position:sticky;top:0;z-index:2;background:#f6f6f3;padding:6px 0 10px}
.tools input{font:13px system-ui,sans-serif;width:380px;padding:5px 9px;border:1px solid #c9c9c2;border-radius:6px}
.tools span{color:#777;font-size:12px;margin-left:10px}
svg g.match>rect{stroke:#a0008c;stroke-width:1.5}
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

/** "reason at rip (symbol): detail", leaving out what the capture did not record (QEMU runs have no RIP). */
export function exitText(exit: { reason?: string | null; rip?: string | null; symbol?: string | null; detail?: string | null }): string {
  const where = exit.rip ? ` at ${exit.rip}${exit.symbol ? ` (${exit.symbol})` : ''}` : exit.symbol ? ` in ${exit.symbol}` : '';
  const reason = exit.reason ?? 'stopped';
  // A detail that starts with the reason ("interrupted (SIGINT)") says it once.
  if (exit.detail && exit.detail.toLowerCase().startsWith(reason.toLowerCase())) return `${exit.detail.slice(0, reason.length)}${where}${exit.detail.slice(reason.length)}`;
  return `${reason}${where}${exit.detail ? `: ${exit.detail}` : ''}`;
}

/** One or two sentences on what was measured: engine, mode, kernel, the traced window, how it ended. */
export function measuredText(d: ReportData): string {
  const p: Profile | undefined = d.profile;
  const t = d.trace;
  const parts: string[] = [];
  if (p) {
    const engine = p.engine === 'qemu' ? `QEMU${p.qemu?.accel ? ` (${p.qemu.accel.toUpperCase()})` : ''}` : p.engine === 'kvm' ? "boot-trace's KVM VMM" : String(p.engine ?? 'an unknown engine');
    const kernel = basename(String(p.setup?.kernel.path ?? p.kernel ?? 'a kernel'));
    const mode = p.mode === 'step' ? 'single-stepped' : p.mode === 'run' ? 'run freely' : p.mode === 'trace' ? 'booted whole and recorded by the TCG plugin' : `captured (${String(p.mode)} mode)`;
    parts.push(`${kernel} ${mode} under ${engine}`);
    if (t && p.mode === 'step') {
      const from = p.step?.trace_from ? `from ${p.step.trace_from.spec}` : 'from its first instruction';
      parts.push(`${int(t.events)} instructions traced ${from}`);
    }
    if (t && p.mode === 'trace') parts.push(`${int(t.events)} records${p.trace?.granularity ? ` at ${p.trace.granularity} granularity` : ''}`);
    if (p.exit) parts.push(`ended by ${exitText(p.exit)}`);
  } else if (t) {
    parts.push(`a trace of ${int(t.events)} ${recordWord(t.path)} (${basename(t.path)})`);
  }
  const sentence = parts.join('; ');
  const clocks: string[] = [];
  if (t) clocks.push(`trace times are ${d.clock.trace.description}`);
  if (d.console && d.console.events.lines > 0) clocks.push(`console times are ${d.clock.console.description}`);
  return `Measured: ${sentence}.${clocks.length ? ` ${clocks.join('; ').replace(/^./, (c) => c.toUpperCase())}.` : ''}`;
}

/** What one trace event is called: a record of a whole-boot recording, a line of a text trace. */
const recordWord = (path: string): string => (/\.bin$/.test(path) ? 'records' : 'lines');

/** How many initcalls get a lane of their own, longest first. */
export const NAMED_INITCALLS = 30;

export function renderReport(d: ReportData): string {
  const cards: Array<[string, string]> = [];
  const parts: string[] = [];
  const p = d.profile;
  const t = d.trace;
  const c = d.console;
  const steps = d.clock.trace.unit !== 'us';
  /** A time on the trace's clock. */
  const tt = (v: number): string => (steps ? `${int(Math.round(v))} ${d.clock.trace.unit === 'blocks' ? 'blocks' : 'instructions'}` : formatUs(v));
  const stepping = (clock: { kind: string }): string => (clock.kind === 'host-stepping' ? ' (stepping time)' : '');

  // Headline figures.
  const lastMarker = c?.events.markers.at(-1);
  if (lastMarker) cards.push([formatUs(lastMarker.t), `to BOOT_TIME ${lastMarker.name}${stepping(d.clock.console)}`]);
  else if (c && c.events.lines > 0) cards.push([formatUs(c.events.end), `to the last console line${stepping(d.clock.console)}`]);
  if (p?.phases_us.total !== undefined) cards.push([formatUs(p.phases_us.total), 'VMM total (host)']);
  if (p?.exit?.reason) cards.push([String(p.exit.reason), `exit${p.exit.symbol ? ' in ' + p.exit.symbol : ''}`]);
  if (t) cards.push([int(t.events), `trace ${recordWord(t.path)}`]);
  if (t && t.hot[0]) cards.push([t.hot[0].function, `hottest: ${tt(t.hot[0].time_us)} self (${t.hot[0].percent}%)`]);
  // The UART figure is headlined only when its fit means something (analyzers/uart.ts fitMeaningful).
  if (c && 'us_per_char' in c.uart && fitMeaningful(c.uart)) cards.push([`${c.uart.us_per_char.toFixed(2)} us/char`, `UART cost, ${formatUs(c.uart.added_us)} in all`]);
  if (typeof p?.peak_rss_mib === 'number') cards.push([formatBytes(p.peak_rss_mib * 1024 * 1024), 'VMM peak RSS']);

  // Timeline lanes on the host clock; the trace's own lanes join them unless the trace counts steps.
  const host: TimelineLane[] = [];
  const traceLanes: TimelineLane[] = [];
  if (d.phases.length) host.push({ name: 'VMM phases', colour: COLOURS.phases, maxRows: 1, items: d.phases.map((ph) => ({ start: ph.start, end: ph.start + ph.duration, label: ph.name })) });
  if (c) {
    if (c.stages.length) host.push({ name: 'stages', colour: COLOURS.stages, maxRows: 6, items: c.stages.map((s) => ({ start: s.start_us, end: s.end_us, label: s.name, tip: s.percent !== null ? `${s.percent}% of the boot` : undefined })) });
    const marks = [...c.events.markers.map((m) => ({ start: m.t, label: m.name, tip: m.ns !== undefined ? `guest says ${formatUs(m.ns / 1000)}` : undefined })), ...c.events.milestones.map((m) => ({ start: m.t, label: m.name }))];
    if (marks.length) host.push({ name: 'console markers', colour: COLOURS.markers, maxRows: 4, items: marks });
    if (c.events.initcalls.length) host.push({ name: 'initcalls', colour: COLOURS.initcalls, maxRows: 4, items: c.events.initcalls.map((s) => ({ start: s.start, end: s.end, label: s.name, tip: s.usecs !== undefined ? `kernel says ${s.usecs} usecs` : undefined })) });
  }
  if (t && t.events > 0) {
    const lane = p?.mode === 'trace' ? 'whole-boot recording' : p?.mode === 'step' ? 'single-step trace' : 'trace';
    traceLanes.push({ name: lane, colour: COLOURS.trace, maxRows: 1, items: [{ start: t.start, end: t.end, label: `${basename(t.path)}: ${int(t.events)} ${recordWord(t.path)}` }] });
    if (t.syscalls.length) traceLanes.push({ name: 'system calls', colour: COLOURS.syscalls, maxRows: 3, items: t.syscalls.map((s) => ({ start: s.time_us, end: s.time_us + (s.duration_us ?? 0), label: s.syscall, tip: s.user_address ? `from ${s.user_address}` : undefined })) });
    const firsts = t.milestones.map((m) => ({ start: m.first_us, label: m.function }));
    if (t.firstUser !== null) firsts.push({ start: t.firstUser, label: 'first user instruction' });
    if (firsts.length) traceLanes.push({ name: 'first calls', colour: COLOURS.milestones, maxRows: 4, guides: true, items: firsts });
  }
  const hostAxis = d.clock.console.kind === 'host-stepping' ? 'host microseconds while single-stepping'
    : d.clock.console.kind === 'host-whole-boot' ? 'microseconds since QEMU started (host clock, QEMU TCG)' : 'microseconds since the VM was created (host clock)';
  parts.push(`<section><h2>Timeline</h2><div class="scroll">${timelineSvg(steps ? host : [...host, ...traceLanes], { title: 'boot timeline', axisLabel: hostAxis })}</div>`);
  if (steps && traceLanes.length) {
    parts.push(`<p class="note">The trace's times are guest instruction counts: its lanes are drawn against instructions.</p><div class="scroll">${timelineSvg(traceLanes, { unit: 'steps', title: 'trace timeline' })}</div>`);
  }
  if (!host.length && !traceLanes.length) parts.push('<p class="note">Nothing timed to show.</p>');
  parts.push('</section>');

  // Initcalls by name: the longest each on a lane of its own, the rest on one lane.
  if (c && c.events.initcalls.length) {
    const all = c.events.initcalls;
    const longest = [...all].sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start).slice(0, NAMED_INITCALLS);
    const named = new Set(longest);
    const lanes: TimelineLane[] = [...longest].sort((a, b) => a.start - b.start).map((s) => ({
      name: s.name, colour: COLOURS.initcalls,
      items: [{ start: s.start, end: s.end, label: formatUs(s.end - s.start), tip: s.usecs !== undefined ? `kernel says ${s.usecs} usecs` : undefined }],
    }));
    const rest = all.filter((s) => !named.has(s));
    if (rest.length) lanes.push({ name: `${int(rest.length)} other initcalls`, colour: '#8ab8c2', items: rest.map((s) => ({ start: s.start, end: s.end, label: s.name, tip: s.usecs !== undefined ? `kernel says ${s.usecs} usecs` : undefined })) });
    parts.push(`<section><h2>Initcalls by name (the ${Math.min(NAMED_INITCALLS, all.length)} longest of ${int(all.length)}, host times of their console lines)</h2><div class="scroll">${timelineSvg(lanes, { compact: true, title: 'initcalls', axisLabel: hostAxis })}</div></section>`);
  }

  if (t) {
    const s = t.stacks.counts;
    parts.push(`<section><h2>Where the traced time goes (icicle: callers above callees, width = inclusive time)</h2><div class="scroll">${flameSvg(t.stacks.trie, t.names, { width: 1290, icicle: true, format: tt, unitLabel: d.clock.trace.label })}</div>`);
    parts.push(`<p class="note">Call stacks rebuilt from the ${p?.mode === 'trace' ? 'whole-boot recording' : p?.mode === 'step' ? 'single-step trace' : 'trace'} (docs/call-stacks.md): ${int(s.calls)} calls, ${int(s.returns)} returns, ${int(s.replaced)} tail calls or unseen callers, deepest stack ${s.maxDepthSeen}${s.thunkLines ? `, ${int(s.thunkLines)} ${recordWord(t.path)} in kernel thunks folded into their callers` : ''}. Click a frame to zoom; search above.</p></section>`);
  }

  const tables: string[] = [];
  if (t) {
    const max = Math.max(d3max(t.hot, (h) => h.time_us) ?? 0, 1e-9);
    tables.push(`<section><h2>Hot functions (self time, ${escapeXml(d.clock.trace.label)})</h2>${table(t.hot, [
      { head: 'function', mono: true, cell: (r) => text(r.function) },
      { head: 'self', num: true, cell: (r) => `<span class="bar" style="width:${Math.round((60 * r.time_us) / max)}px"></span>${escapeXml(tt(r.time_us))}` },
      { head: '%', num: true, cell: (r) => r.percent.toFixed(2) },
      // A folded thunk has no frame, so no inclusive time of its own (docs/call-stacks.md).
      { head: 'inclusive', num: true, cell: (r) => (r.inclusive_us === 0 && KERNEL_THUNK.test(r.function) ? '<span title="folded into its callers">folded</span>' : escapeXml(tt(r.inclusive_us))) },
      { head: 'lines', num: true, cell: (r) => int(r.lines) },
    ])}</section>`);
    if (t.syscallSummary.length) {
      tables.push(`<section><h2>System calls</h2>${table(t.syscallSummary, [
        { head: 'syscall', mono: true, cell: (r) => text(r.syscall) },
        { head: 'count', num: true, cell: (r) => int(r.count) },
        { head: 'total', num: true, cell: (r) => escapeXml(tt(r.total_us)) },
        { head: 'mean', num: true, cell: (r) => (r.mean_us === null ? '' : escapeXml(tt(r.mean_us))) },
        { head: 'max', num: true, cell: (r) => (r.max_us === null ? '' : escapeXml(tt(r.max_us))) },
      ])}</section>`);
    }
    if (t.milestones.length || t.firstUser !== null) {
      const rows = [...t.milestones.map((m) => ({ what: m.function, t: m.first_us })), ...(t.firstUser !== null ? [{ what: 'first user instruction', t: t.firstUser }] : [])].sort((a, b) => a.t - b.t);
      tables.push(`<section><h2>Milestones (first calls)</h2>${table(rows, [
        { head: 'function', mono: true, cell: (r) => text(r.what) },
        { head: 'first seen', num: true, cell: (r) => escapeXml(tt(r.t)) },
      ])}</section>`);
    }
  }
  if (c) {
    if (c.stages.length) {
      tables.push(`<section><h2>Stages (console${stepping(d.clock.console)})</h2>${table(c.stages, [
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
    // profile.json's figures (capture/output/profile.ts), flattened: common, step-mode and KVM parts; the
    // step figures only exist for step captures (a run would show 0 steps, which says nothing).
    const flat: Record<string, number | null | undefined> = {
      memory_mib: p.memory_mib, peak_rss_bytes: p.peak_rss_mib === null ? null : p.peak_rss_mib * 1024 * 1024, steps: p.step?.steps,
      steps_per_second: p.step?.steps_per_second, exits: p.kvm?.exits, console_lines: p.console_lines, trace_lines: p.step?.trace_lines, symbols_us: p.step?.symbols_us,
    };
    const plain: Array<[string, (v: number) => string]> = [['memory_mib', (v) => `${v} MiB`], ['peak_rss_bytes', formatBytes], ['steps', int], ['steps_per_second', (v) => `${int(Math.round(v))}/s`], ['exits', int], ['console_lines', int], ['trace_lines', int], ['symbols_us', formatUs]];
    for (const [k, f] of plain) if (typeof flat[k] === 'number') figures.push([k.replace(/_/g, ' '), f(flat[k] as number)]);
    if (p.exit) figures.push(['exit', exitText(p.exit)]);
  }
  if (c) {
    if ('us_per_char' in c.uart) {
      const u = c.uart;
      figures.push(['UART cost', fitMeaningful(u) ? `${u.us_per_char.toFixed(2)} us/char (95% ${u.ci95_low.toFixed(2)}-${u.ci95_high.toFixed(2)}), ${formatUs(u.added_us)} for ${int(u.chars)} chars` : `not measured: ${fitNote(u)}`]);
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

  // "Not boot time" only for clocks that are not (stepping time, instruction counts); other caveats are notes.
  const clocks = [t ? d.clock.trace : null, c && c.events.lines > 0 ? d.clock.console : null].filter((k): k is Clock => k !== null && k.warning !== null);
  const warnings = [...new Map(clocks.map((k) => [k.warning!, k.bootTime ? 'Note' : 'Not boot time'])).entries()];
  const sources = [t ? basename(t.path) : null, c ? basename(c.path) : null, p ? 'profile.json' : null].filter(Boolean).join(', ');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeXml(d.title)}</title>
<style>${CSS}</style></head>
<body>
<header><h1>${escapeXml(d.title)}</h1><p>${escapeXml(d.dir)}: ${escapeXml(sources)}${p?.kernel ? ` &middot; kernel ${escapeXml(String(p.kernel))}` : ''}${p?.cmdline ? ` &middot; <code>${escapeXml(String(p.cmdline))}</code>` : ''} &middot; made by boot-trace</p></header>
<main>
<p class="what" id="measured">${escapeXml(measuredText(d))}</p>
${warnings.map(([w, title]) => `<p class="warn"><b>${title}:</b> ${escapeXml(w)}.</p>`).join('\n')}
<div class="cards">${cards.map(([v, l]) => `<div class="card"><b>${escapeXml(v)}</b><span>${escapeXml(l)}</span></div>`).join('')}</div>
<div class="tools"><input class="search" type="search" placeholder="search functions, initcalls, markers (regular expression)" aria-label="search"><span>timeline: drag to zoom, double-click to zoom out &middot; flame graph: click a frame to zoom</span></div>
${parts.join('\n')}
</main>
${scriptElement()}
</body></html>
`;
}
