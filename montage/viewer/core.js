/* The page's shared state and pure helpers: the manifest, safe text, numbers, and the
 * grid geometry of each block (cell <-> world coordinates). Images' views load on demand. */
(function (app) {
  "use strict";
  var M = JSON.parse(document.getElementById("manifest").textContent);
  var OSD = window.OpenSeadragon;
  var $ = function (id) { return document.getElementById(id); };
  var state = { view: 0, pinned: null, values: {} };
  var now = function () { return (window.performance || Date).now(); };
  app.manifest = M;
  app.state = state;

  /* Feature maps of many images: the page holds only the image index and the geometry all
   * images share; each image's own data (per-channel ranges, where its values are) comes from
   * images/NAME.view.js, a script loaded when that image is shown (a page on file:// cannot
   * fetch). M.views stays an array-like, built one view at a time. */
  var VIEWS_KEPT = 256;   // images whose data stay loaded (the least recently shown go)
  var side = {}, sideOrder = [], asked = {}, made = {};
  if (M.layout) {
    var L = M.layout, NAMES = M.images.names, BASES = M.images.bases;
    var makeView = function (i) {
      var d = side[i];
      if (!d) askView(i);
      return { name: NAMES[i], world: L.world, input: L.input, ready: !!d,
               tiles: [{ dzi: Object.assign({}, L.dzi, { Url: "images/" + BASES[i] + "_files/" }), x: 0, y: 0,
                         path: "images/" + BASES[i] + ".dzi" }],
               blocks: d ? d.blocks : L.blocks };
    };
    M.views = new Proxy([], { get: function (t, k) {
      if (k === "length") return NAMES.length;
      if (typeof k === "string" && /^[0-9]+$/.test(k)) {
        var i = +k;
        if (i >= NAMES.length) return undefined;
        if (!made[i] || (!made[i].ready && side[i])) made[i] = makeView(i);
        return made[i];
      }
      return t[k];
    } });
  }
  function askView(i) {
    if (asked[i]) return;
    asked[i] = true;
    app.addScript("images/" + M.images.bases[i] + ".view.js", function () { asked[i] = "failed"; app.redraw(); });
  }
  window.montageView = function (i, v) {
    side[i] = v;
    delete made[i];
    sideOrder.push(i);
    while (sideOrder.length > VIEWS_KEPT) {
      var old = sideOrder.shift();
      if (old !== state.view && sideOrder.indexOf(old) < 0) { delete side[old]; delete made[old]; delete asked[old]; }
    }
    if (window.montage.ready) { app.redraw(); app.drawLabels(); }
  };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  /* Controls and bidi overrides in a name would break lines or reverse the text around it
   * (a layer "conv\u202egnp.exe" reads "convexe.png"): show them as visible \uXXXX escapes. */
  var UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
  function safe(s) {
    return String(s).replace(UNSAFE, function (c) { return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4); });
  }
  /* A float32 as the shortest decimal that reads back to the same float32 (at most 9 digits):
   * what is shown is exactly what was computed. */
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "string") return v;
    if (!isFinite(v)) return String(v);
    var f = Math.fround(v);
    for (var p = 1; p < 9; p++) {
      var t = f.toPrecision(p);
      if (Math.fround(+t) === f) return String(+t);
    }
    return String(+f.toPrecision(9));
  }

  /* ---- geometry: the same rules as montage/layout.py ---- */
  function pitch(g) { return [g.cell_h * g.scale + g.gap, g.cell_w * g.scale + g.gap]; }
  function gridSize(g) { var p = pitch(g); return [g.rows * p[0] - g.gap, g.cols * p[1] - g.gap]; }
  function locate(b, wx, wy) {
    var g = b.grid, s = gridSize(g), p = pitch(g);
    var y = Math.floor(wy - b.y), x = Math.floor(wx - b.x);
    if (y < 0 || x < 0 || y >= s[0] || x >= s[1]) return null;
    var row = Math.floor(y / p[0]), col = Math.floor(x / p[1]);
    var ry = y - row * p[0], rx = x - col * p[1];
    if (ry >= g.cell_h * g.scale || rx >= g.cell_w * g.scale) return null;
    var k = row * g.cols + col;
    if (k >= g.n) return null;
    if (b.kind === "examples" && !cellNames(b, k)) return null;   // the empty column between bands
    return { block: b, row: row, col: col, k: k, cy: Math.floor(ry / g.scale), cx: Math.floor(rx / g.scale) };
  }
  function cellRect(b, k, dx, dy) {
    var g = b.grid, p = pitch(g), row = Math.floor(k / g.cols), col = k % g.cols;
    return new OSD.Rect((dx || 0) + b.x + col * p[1], (dy || 0) + b.y + row * p[0], g.cell_w * g.scale,
                        g.cell_h * g.scale);
  }
  /* A block's cell index k <-> named indices (filter/channel). */
  /* A grouped conv's column j of filter f is input channel j + (f's group) * columns. */
  function groupOffset(b, filter) {
    return b.groups > 1 ? Math.floor(filter / (b.grid.rows / b.groups)) * b.grid.cols : 0;
  }
  function cellNames(b, k) {
    if (b.kind === "filters") {
      var f = Math.floor(k / b.grid.cols);
      return { filter: f, channel: k % b.grid.cols + groupOffset(b, f) };
    }
    if (b.kind === "rgb") return { filter: k };
    if (b.kind === "optimize") return { channel: b.channels[k] };   // the channels asked for, in order
    if (b.kind === "depthwise") return { channel: k, input: Math.floor(k / b.multiplier), multiplier: k % b.multiplier };
    if (b.kind === "examples") {   // column bands of band_rows channels, an empty column between bands
      var lead = b.optimum ? 1 : 0, width = lead + b.top + 1;   // the optimum (rank -1) first, with --optimum
      var col = k % b.grid.cols, band = Math.floor(col / width), rank = col % width - lead;
      var ch = band * b.band_rows + Math.floor(k / b.grid.cols);
      return rank === b.top || ch >= b.channels ? null : { channel: ch, rank: rank };
    }
    return { channel: k };
  }
  function cellIndex(b, q) {
    if (b.kind === "filters") return q.filter * b.grid.cols + q.channel - groupOffset(b, q.filter);
    if (b.kind === "rgb") return q.filter;
    if (b.kind === "optimize") return b.channels.indexOf(q.channel);
    if (b.kind === "examples") {
      var lead = b.optimum ? 1 : 0;
      return (q.channel % b.band_rows) * b.grid.cols + Math.floor(q.channel / b.band_rows) * (lead + b.top + 1) +
             lead + q.rank;
    }
    return q.channel;
  }
  /* the normalisation group of cell k: its index into normalize.lo, .hi and .flat */
  function cellGroup(b, k) {
    var nrm = b.normalize, g = b.grid;
    if (nrm.group === "row") return Math.floor(k / g.cols);
    if (nrm.group === "col") return k % g.cols;
    if (nrm.group === "cell") return k;
    return 0;
  }
  function cellRange(b, k) {
    if (!b.normalize) return null;   // examples: pictures, not values
    var i = cellGroup(b, k);
    return [b.normalize.lo[i], b.normalize.hi[i]];
  }
  /* whether cell k was drawn as one flat colour: its group's range is negligible beside the layer's */
  function cellFlat(b, k) {
    return !!(b.normalize && b.normalize.flat && b.normalize.flat.indexOf(cellGroup(b, k)) >= 0);
  }

  app.OSD = OSD;
  app.$ = $;
  app.now = now;
  app.asked = asked;
  app.el = el;
  app.safe = safe;
  app.fmt = fmt;
  app.pitch = pitch;
  app.gridSize = gridSize;
  app.locate = locate;
  app.cellRect = cellRect;
  app.cellNames = cellNames;
  app.cellIndex = cellIndex;
  app.cellRange = cellRange;
  app.cellFlat = cellFlat;
})(window.montage = {});
