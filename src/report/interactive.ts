/**
 * The one small script of the report and of the standalone flame graph: zoom and search, with nothing
 * fetched, so the files stay self-contained and work offline. It reads what the SVG builders put in
 * data- attributes (flame-svg.ts, timeline-svg.ts) and moves the boxes; without script the files still
 * show everything, unzoomed.
 *
 *   flame graph  click a box: it fills the width (its callees with it, its callers stay as context);
 *                click the bottom/top frame or "reset zoom" to go back
 *   timeline     drag across the chart: that span fills the width; double-click to go back
 *   search       the report's search box, or "search" in a standalone flame graph: a regular expression;
 *                matching frames and items turn magenta, the flame graph says what share of the time matched
 *   URL hash     #search=RE, #flame=NAME (zoom to NAME's first box), #t=START-END (timeline span): links
 *                that open a view, and what the tests drive
 */

/** The script's source: plain browser JavaScript, wrapped in CDATA so it is valid in SVG (XML) and HTML. */
export const INTERACTIVE_JS = String.raw`
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var doc = document;
  var MATCH = 'rgb(224,0,200)';
  function all(root, sel) { return Array.prototype.slice.call(root.querySelectorAll(sel)); }
  function num(el, name) { return parseFloat(el.getAttribute('data-' + name)); }
  function nameOf(g) { var t = g.querySelector('title'); return t ? t.textContent.split('\n')[0] : ''; }
  function clip(text, px, charW) {
    var fits = Math.floor((px - 6) / charW);
    return fits < 3 ? '' : text.length <= fits ? text : text.slice(0, fits - 2) + '..';
  }
  function fmtUs(us) {
    var a = Math.abs(us);
    if (a >= 1e6) return (us / 1e6).toFixed(a >= 1e7 ? 1 : 2) + ' s';
    if (a >= 1e3) return (us / 1e3).toFixed(a >= 1e5 ? 0 : a >= 1e4 ? 1 : 2) + ' ms';
    return (a >= 100 ? Math.round(us) : us.toFixed(a >= 10 ? 1 : 2)) + ' us';
  }

  // One unit for every tick of an axis, as format.ts axisFormat does on the server side.
  function fmtAxis(us, t0, t1, step) {
    var a = Math.max(Math.abs(t0), Math.abs(t1));
    var div = a >= 1e6 ? 1e6 : a >= 1e3 ? 1e3 : 1, unit = a >= 1e6 ? ' s' : a >= 1e3 ? ' ms' : ' us';
    var decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(step / div) + 1e-9)));
    return (us / div).toFixed(decimals) + unit;
  }

  // ---- flame graphs -------------------------------------------------------------------------------
  function Flame(svg) {
    this.svg = svg;
    this.pad = num(svg, 'pad');
    this.inner = num(svg, 'inner');
    this.boxes = all(svg, 'g.fr');
    var self = this;
    this.boxes.forEach(function (g) {
      g.style.cursor = 'pointer';
      g.addEventListener('click', function () { self.zoom(g); });
    });
    var reset = svg.querySelector('.reset');
    if (reset) reset.addEventListener('click', function () { self.zoom(null); });
    var find = svg.querySelector('.find');
    if (find) find.addEventListener('click', function () {
      var re = window.prompt('Search functions (a regular expression):', '');
      if (re !== null) search(re);
    });
  }
  Flame.prototype.zoom = function (target) {
    var x0 = 0, w0 = this.inner, d0 = -1;
    if (target && num(target, 'w') < this.inner - 0.01) { x0 = num(target, 'x'); w0 = num(target, 'w'); d0 = num(target, 'd'); }
    var scale = this.inner / w0, pad = this.pad;
    this.boxes.forEach(function (g) {
      var x = num(g, 'x'), w = num(g, 'w'), d = num(g, 'd');
      var inside = x >= x0 - 1e-6 && x + w <= x0 + w0 + 1e-6;
      var above = d < d0 && x <= x0 + 1e-6 && x + w >= x0 + w0 - 1e-6;
      if (!(inside || above || d0 < 0)) { g.style.display = 'none'; return; }
      g.style.display = '';
      var nx = above ? 0 : (x - x0) * scale, nw = above ? w0 * scale : w * scale;
      var rect = g.querySelector('rect'), text = g.querySelector('text');
      rect.setAttribute('x', (pad + nx).toFixed(2));
      rect.setAttribute('width', nw.toFixed(2));
      rect.style.opacity = above ? '0.6' : '';
      if (text) { text.setAttribute('x', (pad + nx + 3).toFixed(2)); text.textContent = clip(nameOf(g), nw, 6.7); }
    });
    var reset = this.svg.querySelector('.reset');
    if (reset) reset.style.display = d0 < 0 ? 'none' : '';
  };
  Flame.prototype.search = function (re) {
    var spans = [];
    this.boxes.forEach(function (g) {
      var rect = g.querySelector('rect');
      if (!rect.hasAttribute('data-fill')) rect.setAttribute('data-fill', rect.getAttribute('fill'));
      var hit = re !== null && re.test(nameOf(g));
      rect.setAttribute('fill', hit ? MATCH : rect.getAttribute('data-fill'));
      g.classList.toggle('match', hit);
      if (hit) spans.push([num(g, 'x'), num(g, 'x') + num(g, 'w')]);
    });
    // Share of the width covered by matches, counting nested matches once.
    spans.sort(function (a, b) { return a[0] - b[0]; });
    var covered = 0, end = -Infinity;
    spans.forEach(function (s) {
      if (s[0] >= end) { covered += s[1] - s[0]; end = s[1]; }
      else if (s[1] > end) { covered += s[1] - end; end = s[1]; }
    });
    var out = this.svg.querySelector('.matched');
    if (out) out.textContent = re === null ? '' : 'matched: ' + (100 * covered / this.inner).toFixed(1) + '% of the time (' + spans.length + ' frames)';
  };

  // ---- timelines ----------------------------------------------------------------------------------
  function Timeline(svg) {
    this.svg = svg;
    this.full = [num(svg, 't0'), num(svg, 't1')];
    this.left = num(svg, 'left');
    this.chart = num(svg, 'chart');
    this.steps = svg.getAttribute('data-unit') === 'steps';
    this.items = all(svg, 'g.item');
    this.axis = svg.querySelector('g.axis');
    this.span = this.full.slice();
    var self = this, start = null;
    var band = doc.createElementNS(NS, 'rect');
    band.setAttribute('fill', '#3b6fd4'); band.setAttribute('fill-opacity', '0.15'); band.setAttribute('y', '0');
    band.setAttribute('height', svg.getAttribute('height')); band.style.display = 'none';
    svg.appendChild(band);
    function px(ev) { var r = svg.getBoundingClientRect(); return (ev.clientX - r.left) * (num(svg, 'width') || svg.viewBox.baseVal.width) / r.width; }
    svg.addEventListener('mousedown', function (ev) { start = px(ev); band.setAttribute('x', start); band.setAttribute('width', 0); band.style.display = ''; ev.preventDefault(); });
    svg.addEventListener('mousemove', function (ev) {
      if (start === null) return;
      var p = px(ev); band.setAttribute('x', Math.min(p, start)); band.setAttribute('width', Math.abs(p - start));
    });
    svg.addEventListener('mouseup', function (ev) {
      if (start === null) return;
      var a = Math.min(px(ev), start), b = Math.max(px(ev), start);
      start = null; band.style.display = 'none';
      if (b - a > 3) self.zoom(self.time(a), self.time(b));
    });
    svg.addEventListener('dblclick', function () { self.zoom(self.full[0], self.full[1]); });
    svg.style.cursor = 'crosshair';
  }
  Timeline.prototype.time = function (x) {
    var t = this.span[0] + (x - this.left) / this.chart * (this.span[1] - this.span[0]);
    return Math.max(this.full[0], Math.min(this.full[1], t));
  };
  Timeline.prototype.zoom = function (t0, t1) {
    if (!(t1 > t0)) return;
    this.span = [t0, t1];
    var left = this.left, chart = this.chart;
    function x(t) { return left + (t - t0) / (t1 - t0) * chart; }
    this.items.forEach(function (g) {
      var s = x(num(g, 's')), e = g.hasAttribute('data-e') ? x(num(g, 'e')) : null;
      var right = left + chart;
      if ((e === null ? s : e) < left - 1 || s > right + 1) { g.style.display = 'none'; return; }
      g.style.display = '';
      g.setAttribute('transform', 'translate(' + s.toFixed(1) + ',0)');
      var rect = g.querySelector('rect');
      if (rect && e !== null) {
        var w = Math.max(1, e - s);
        rect.setAttribute('width', w.toFixed(1));
        var text = g.querySelector('text');
        if (text) text.textContent = clip(g.getAttribute('data-l'), Math.min(w, right - s), 6.2);
      }
    });
    this.drawAxis();
  };
  Timeline.prototype.drawAxis = function () {
    var t0 = this.span[0], t1 = this.span[1], left = this.left, chart = this.chart, steps = this.steps, axis = this.axis;
    if (!axis) return;
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    var raw = (t1 - t0) / 10, p = Math.pow(10, Math.floor(Math.log10(raw))), step = 10 * p;
    [1, 2, 5, 10].some(function (m) { if (m * p >= raw) { step = m * p; return true; } return false; });
    var bottom = axis.getAttribute('data-bottom');
    for (var t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
      var px = (left + (t - t0) / (t1 - t0) * chart).toFixed(1);
      var line = doc.createElementNS(NS, 'line');
      line.setAttribute('x1', px); line.setAttribute('x2', px); line.setAttribute('y1', '20'); line.setAttribute('y2', bottom); line.setAttribute('stroke', '#e4e4e0');
      var label = doc.createElementNS(NS, 'text');
      label.setAttribute('x', px); label.setAttribute('y', '16'); label.setAttribute('text-anchor', 'middle'); label.setAttribute('fill', '#666');
      label.textContent = steps ? Math.round(t).toLocaleString('en-US') + ' instructions' : fmtAxis(t, t0, t1, step);
      axis.appendChild(line); axis.appendChild(label);
    }
  };
  Timeline.prototype.search = function (re) {
    this.items.forEach(function (g) {
      var hit = re !== null && re.test(g.getAttribute('data-l') || '');
      g.classList.toggle('match', hit);
      g.style.opacity = re === null || hit ? '' : '0.25';
    });
  };

  // ---- wiring -------------------------------------------------------------------------------------
  var flames = all(doc, 'svg.flame').map(function (s) { return new Flame(s); });
  var timelines = all(doc, 'svg.timeline').map(function (s) { return new Timeline(s); });
  function search(text) {
    var re = null;
    if (text) { try { re = new RegExp(text); } catch (e) { re = new RegExp(text.replace(/[^\w\s]/g, '\\$&')); } }
    flames.forEach(function (f) { f.search(re); });
    timelines.forEach(function (t) { t.search(re); });
  }
  all(doc, 'input.search').forEach(function (input) {
    input.addEventListener('input', function () { search(input.value); });
  });
  (location.hash || '').replace(/^#/, '').split('&').forEach(function (kv) {
    var i = kv.indexOf('='); if (i < 0) return;
    var k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
    if (k === 'search') { search(v); all(doc, 'input.search').forEach(function (x) { x.value = v; }); }
    if (k === 'flame') flames.forEach(function (f) {
      var g = f.boxes.filter(function (b) { return nameOf(b) === v; })[0];
      if (g) f.zoom(g);
    });
    if (k === 't') {
      var m = /^(-?[\d.e+]+)-(-?[\d.e+]+)$/.exec(v);
      if (m) timelines.forEach(function (t) { t.zoom(parseFloat(m[1]), parseFloat(m[2])); });
    }
  });
})();
`;

/**
 * The script as an element for an HTML page or an SVG document: the CDATA section keeps `<` and `&` literal
 * in XML, and its markers sit in JavaScript comments, where an HTML parser leaves them.
 */
export const scriptElement = (): string => `<script type="text/javascript">//<![CDATA[${INTERACTIVE_JS}//]]></script>`;
