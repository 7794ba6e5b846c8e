/* montage page: OpenSeadragon over the manifest's tiles, plus a readout computed from
 * the manifest's grid geometry (no per-cell DOM: thousands of cells stay fast).
 * Every string from the model or the file system goes through textContent, never innerHTML,
 * and through safe() first. */
(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("manifest").textContent);
  var OSD = window.OpenSeadragon;
  var $ = function (id) { return document.getElementById(id); };
  var state = { view: 0, pinned: null, values: {} };
  var now = function () { return (window.performance || Date).now(); };
  window.montage = { manifest: M, state: state };

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
    addScript("images/" + M.images.bases[i] + ".view.js", function () { asked[i] = "failed"; redraw(); });
  }
  window.montageView = function (i, v) {
    side[i] = v;
    delete made[i];
    sideOrder.push(i);
    while (sideOrder.length > VIEWS_KEPT) {
      var old = sideOrder.shift();
      if (old !== state.view && sideOrder.indexOf(old) < 0) { delete side[old]; delete made[old]; delete asked[old]; }
    }
    if (window.montage.ready) { redraw(); drawLabels(); }
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
    if (b.kind === "depthwise") return { channel: k, input: Math.floor(k / b.multiplier), multiplier: k % b.multiplier };
    if (b.kind === "examples") {   // column bands of band_rows channels, an empty column between bands
      var col = k % b.grid.cols, band = Math.floor(col / (b.top + 1)), rank = col % (b.top + 1);
      var ch = band * b.band_rows + Math.floor(k / b.grid.cols);
      return rank === b.top || ch >= b.channels ? null : { channel: ch, rank: rank };
    }
    return { channel: k };
  }
  function cellIndex(b, q) {
    if (b.kind === "filters") return q.filter * b.grid.cols + q.channel - groupOffset(b, q.filter);
    if (b.kind === "rgb") return q.filter;
    if (b.kind === "examples") {
      return (q.channel % b.band_rows) * b.grid.cols + Math.floor(q.channel / b.band_rows) * (b.top + 1) + q.rank;
    }
    return q.channel;
  }
  function cellRange(b, k) {
    var nrm = b.normalize, g = b.grid, i;
    if (!nrm) return null;   // examples: pictures, not values
    if (nrm.group === "row") i = Math.floor(k / g.cols);
    else if (nrm.group === "col") i = k % g.cols;
    else if (nrm.group === "cell") i = k;
    else i = 0;
    return [nrm.lo[i], nrm.hi[i]];
  }

  /* ---- cell values (kernel weights, activations), loaded on demand ----
   * From NAME.js, NAME.1.js, ...: scripts, since a page on file:// cannot fetch. Each part
   * calls montageValues(key, shape, parts, i, base64 of little-endian float32). Part 0 says how
   * many parts there are; the rest are then loaded side by side, so the readout can count them. */
  var CACHE_BYTES = 512 << 20;   // activations of many images: the least recently used go
  function partUrl(key, i) { return i ? key.replace(/\.js$/, "." + i + ".js") : key; }
  function addScript(src, failed) {
    var s = document.createElement("script");
    s.src = src;
    s.onerror = failed;
    document.body.appendChild(s);
  }
  function valuesFailed(key) {
    return function () {
      var v = state.values[key];
      if (v) { v.failed = true; redraw(); }
    };
  }
  function decode(b64, into, offset) {
    if (Uint8Array.fromBase64) { into.set(Uint8Array.fromBase64(b64), offset); return; }
    var bin = atob(b64), n = bin.length;
    for (var i = 0; i < n; i++) into[offset + i] = bin.charCodeAt(i);
  }
  window.montageValues = function (key, shape, parts, i, b64) {
    var v = state.values[key];
    if (!v || v.done) return;
    if (i === 0) {
      var count = shape.reduce(function (a, b) { return a * b; }, 1);
      v.data = new Float32Array(count);
      v.shape = shape; v.parts = parts; v.partBytes = b64.length / 4 * 3;
      for (var j = 1; j < parts; j++) addScript(partUrl(key, j), valuesFailed(key));
    }
    decode(b64, new Uint8Array(v.data.buffer), i * v.partBytes);
    v.got++;
    if (v.got === v.parts) { v.done = true; evict(key); }
    redraw();
  };
  function loadValues(b) {
    var key = b.values;
    if (!key) return null;
    var v = state.values[key];
    if (!v) {
      v = state.values[key] = { got: 0, parts: null, done: false, t0: now() };
      addScript(key, valuesFailed(key));
    }
    v.used = now();
    return v;
  }
  function evict(keep) {
    var keys = Object.keys(state.values).filter(function (k) { return state.values[k].done; });
    var total = keys.reduce(function (a, k) { return a + state.values[k].data.byteLength; }, 0);
    keys.sort(function (a, b) { return state.values[a].used - state.values[b].used; });
    for (var i = 0; i < keys.length && total > CACHE_BYTES; i++) {
      if (keys[i] === keep) continue;
      total -= state.values[keys[i]].data.byteLength;
      delete state.values[keys[i]];
    }
  }
  /* "loading 40% (2 of 5 parts)" once a load takes more than a moment; "" before; null when done */
  function loading(v) {
    if (v.failed) return "not found (" + (v.parts ? v.got + " of " + v.parts + " parts read" : "no file") + ")";
    if (v.done) return null;
    var waited = now() - v.t0;
    if (waited < 250) { setTimeout(redraw, 260 - waited); return ""; }
    if (!v.parts) return "loading...";
    return "loading " + Math.round(100 * v.got / v.parts) + "% (" + v.got + " of " + v.parts + " parts)";
  }
  function loaded(b) {
    var v = loadValues(b);
    return v && v.done ? v : null;
  }
  function kernelValues(b, k) {
    var v = loaded(b);
    if (!v) return null;
    var kh = v.shape[0], kw = v.shape[1], n = v.shape[2], s = v.shape[3], out = [];
    for (var y = 0; y < kh; y++) {
      var row = [];
      for (var x = 0; x < kw; x++) {
        var cell = [];
        for (var c = 0; c < s; c++) cell.push(v.data[((y * kw + x) * n + k) * s + c]);
        row.push(cell);
      }
      out.push(row);
    }
    return out;
  }

  /* ---- readout ---- */
  var view = function () { return M.views[state.view]; };
  function nameOf(i) { return M.layout ? M.images.names[i] : M.views[i].name; }
  function findImage(name) {
    if (M.layout) return M.images.names.indexOf(name);
    for (var i = 0; i < M.views.length; i++) if (M.views[i].name === name) return i;
    return -1;
  }
  /* The images on screen: the current one, or a page of them side by side ("compare": the
   * images listed in state.compare, in a grid), each shifted by (dx, dy). Atlases of one run
   * share their geometry, so blocks line up. */
  var COMPARE_MAX = 16;
  var stride = function () { return view().world[0] * 1.05 + 64; };
  var strideY = function () { return view().world[1] * 1.05 + 64; };
  function gridCols() { return Math.ceil(Math.sqrt(state.compare.length)); }
  function placeOf(j) {
    var c = gridCols();
    return { dx: (j % c) * stride(), dy: Math.floor(j / c) * strideY() };
  }
  /* which compared image's copy lies under world (x, y): {j: its place, i: its view} */
  function imageAt(x, y) {
    var c = gridCols(), col = Math.max(0, Math.min(c - 1, Math.floor(x / stride())));
    var j = Math.max(0, Math.min(state.compare.length - 1, Math.floor((y || 0) / strideY()) * c + col));
    return { j: j, i: state.compare[j] };
  }
  function shown() {
    if (!state.compare) return [{ i: state.view, dx: 0, dy: 0 }];
    return state.compare.map(function (i, j) { var p = placeOf(j); return { i: i, dx: p.dx, dy: p.dy }; });
  }
  function hit(wx, wy) {
    var entries = shown();
    for (var e = 0; e < entries.length; e++) {
      var en = entries[e], v = M.views[en.i], blocks = v.blocks;
      if (wx < en.dx || wx > en.dx + v.world[0] || wy < en.dy || wy > en.dy + v.world[1]) continue;
      for (var i = 0; i < blocks.length; i++) {
        var h = locate(blocks[i], wx - en.dx, wy - en.dy);
        if (h) { h.view = en.i; h.dx = en.dx; h.dy = en.dy; return h; }
      }
    }
    return null;
  }
  function redraw() { drawReadout(state.pinned || state.hover); }
  /* A kernel as small aligned tables, one per sample (R, G, B for an RGB kernel); the pointer's
   * weight highlighted. */
  function kernelTables(kv, h, rgb) {
    var wrap = el("div", undefined, "kernel");
    kv[0][0].forEach(function (_, c) {
      var t = el("table");
      if (rgb) t.appendChild(el("caption", "RGB"[c]));
      kv.forEach(function (row, y) {
        var tr = el("tr");
        row.forEach(function (cell, x) {
          var td = el("td", fmt(cell[c]));
          if (y === h.cy && x === h.cx) td.className = "here";
          tr.appendChild(td);
        });
        t.appendChild(tr);
      });
      wrap.appendChild(t);
    });
    return wrap;
  }
  function drawReadout(h) {
    var r = $("readout");
    r.textContent = "";
    r.classList.toggle("pinned", !!state.pinned && h === state.pinned);
    Object.keys(r.dataset).forEach(function (k) { delete r.dataset[k]; });
    if (!h) { r.textContent = "point at a cell"; colorbarIdle(); return; }
    if (h.block.kind === "examples") { drawExample(r, h); return; }
    var hv = M.views[h.view === undefined ? state.view : h.view];
    if (!h.block.normalize && hv.ready) {   // the pointer met the shared geometry; the data came since
      for (var bi = 0; bi < hv.blocks.length; bi++) if (hv.blocks[bi].layer === h.block.layer) h.block = hv.blocks[bi];
    }
    var b = h.block, names = cellNames(b, h.k), lines = [];
    r.dataset.layer = b.layer;
    Object.keys(names).forEach(function (k) { r.dataset[k] = names[k]; });
    if (M.kind === "features") lines.push("image    " + safe(nameOf(h.view === undefined ? state.view : h.view)));
    lines.push("layer    " + safe(b.layer));
    if (names.filter !== undefined) lines.push("filter   " + names.filter);
    if (names.channel !== undefined) lines.push((b.kind === "depthwise" ? "output   " : "channel  ") + names.channel);
    if (names.input !== undefined) lines.push("input    " + names.input + "  (multiplier " + names.multiplier + ")");
    if (b.groups > 1) lines.push("group    " + Math.floor(names.channel / b.grid.cols) + " of " + b.groups);
    if (b.depth > 1) {   // a 3-D kernel: depth slices side by side, one gap column apart
      var sw = (b.grid.cell_w + 1) / b.depth;
      lines.push("depth    " + Math.floor(h.cx / sw) + (h.cx % sw === sw - 1 ? "  (between slices)" : ""));
    }
    if (b.op) lines.push("op       " + safe(b.op));
    if (b.kind === "features") {
      lines.push("y, x     " + h.cy + ", " + h.cx);
      r.dataset.y = h.cy; r.dataset.x = h.cx;
    }
    if (!b.normalize) {   // this image's ranges and values are on their way
      lines.push(asked[h.view === undefined ? state.view : h.view] === "failed" ? "this image's data: not found"
                 : "loading this image's ranges and values...");
      r.appendChild(el("div", lines.join("\n")));
      return;
    }
    var rg = cellRange(b, h.k), v = loadValues(b);
    if (b.kind === "features" && !b.values) lines.push("value    not written for this image (montage features --values N)");
    if (b.kind === "features" && v) {
      var a = v.done ? v.data[(h.cy * v.shape[1] + h.cx) * v.shape[2] + names.channel] : null;
      if (a !== null) r.dataset.value = fmt(a);
      lines.push("value    " + (a !== null ? fmt(a) : loading(v)));
    }
    lines.push("range    " + fmt(rg[0]) + " .. " + fmt(rg[1]));
    lines.push("scale    " + b.normalize.mode + (b.normalize.clip > 0 ? ", clip " + fmt(b.normalize.clip) + "%" : ""));
    r.appendChild(el("div", lines.join("\n")));
    if (b.kind !== "features" && v) {
      var kv = kernelValues(b, h.k);
      if (!kv) r.appendChild(el("div", "weights  " + loading(v)));
      else {
        var here = kv[h.cy] && kv[h.cy][h.cx];
        if (here) r.appendChild(el("div", "weight   " + here.map(fmt).join(" / ")));
        r.appendChild(el("div", b.kind === "rgb" ? "weights (R, G, B)" : "weights"));
        r.appendChild(kernelTables(kv, h, b.kind === "rgb"));
      }
    }
    drawColorbar(b, rg, h);
  }

  /* A long image path as its last two parts (the demo's photographs sit deep in site-packages);
   * the readout's tooltip and data-image keep it whole. */
  function shortPath(p) {
    p = String(p);
    if (p.length <= 48) return p;
    var parts = p.split(/[\\/]/);
    return parts.length > 2 ? "\u2026/" + parts.slice(-2).join("/") : p;
  }

  /* An example: which image, where, its score and box; the channel over the whole dataset. */
  function drawExample(r, h) {
    var b = h.block, q = cellNames(b, h.k), e = (b.examples[q.channel] || [])[q.rank], st = b.stats, lines = [];
    r.dataset.layer = b.layer; r.dataset.channel = q.channel; r.dataset.rank = q.rank;
    lines.push("layer    " + safe(b.layer));
    lines.push("channel  " + q.channel + (b.dead.indexOf(q.channel) >= 0 ? "  (dead: never above 0)" : ""));
    lines.push("rank     " + q.rank + " of " + b.top + " (by spatial " + b.score + ")");
    if (e) {
      r.dataset.image = e.image; r.dataset.score = fmt(e.score); r.dataset.box = e.box.join(",");
      lines.push("image    " + safe(shortPath(e.image)));
      lines.push("y, x     " + e.y + ", " + e.x + "  (in the " + b.map_shape[0] + " x " + b.map_shape[1] + " map)");
      lines.push("score    " + fmt(e.score));
      lines.push("box      " + e.box.join(", ") + "  (top, left, bottom, right in input pixels)");
    } else {
      lines.push("(fewer than " + b.top + " images)");
    }
    lines.push("");
    lines.push("over " + st.images + " images:");
    lines.push("mean     " + fmt(st.mean[q.channel]));
    lines.push("max      " + fmt(st.max[q.channel]));
    lines.push("positive " + fmt(100 * st.positive[q.channel]) + "% of images");
    if (b.field) lines.push("field    " + b.field.size.join(" x ") + " px, stride " + b.field.jump.join(" x "));
    var text = r.appendChild(el("div", lines.join("\n")));
    if (e) text.title = e.image;
    var cb = $("colorbar");
    cb.querySelector(".caption").textContent = "examples: the input patches themselves (RGB); the gap colour marks pixels past the image";
    cb.querySelector(".range").textContent = "";
  }

  /* ---- colour bar: what its ends mean in the current mode, and their values ---- */
  var GROUPS = {
    features: { grid: { layer: "each layer: one range over all its maps", image: "this image: one range over all layers" },
                cell: "each map: its own min .. max" },
    kernels: { grid: { global: "each layer: one range over all its weights",
                       symmetric: "each layer: -max|w| .. +max|w|, 0 at the centre" },
               row: "each filter (row): its own min .. max", col: "each input channel (column): its own min .. max",
               cell: "each kernel: its own min .. max" }
  };
  function scaleCaption(b) {
    var g = GROUPS[b.kind === "features" ? "features" : "kernels"][b.normalize.group], clip = b.normalize.clip;
    var text = typeof g === "string" ? g : (g && g[b.normalize.mode]) || b.normalize.mode;
    if (clip > 0) text += "; clipped at percentiles " + fmt(clip) + " .. " + fmt(100 - clip);
    return text;
  }
  function drawColorbar(b, rg, h) {
    var c = $("colorbar").querySelector("canvas"), ctx = c.getContext("2d");
    var lut = M.colormap.lut, img = ctx.createImageData(256, 1);
    for (var i = 0; i < 256; i++) {
      img.data[4 * i] = lut[i][0]; img.data[4 * i + 1] = lut[i][1]; img.data[4 * i + 2] = lut[i][2];
      img.data[4 * i + 3] = 255;
    }
    for (var y = 0; y < c.height; y++) ctx.putImageData(img, 0, y);
    var cb = $("colorbar"), rng = cb.querySelector(".range"), cap = cb.querySelector(".caption");
    var perGroup = b.normalize.group !== "grid", names = h && cellNames(b, h.k);
    var what = !perGroup ? safe(b.layer) : !h ? "" : b.kind === "features" ? "this map: channel " + names.channel
      : b.normalize.group === "row" ? "this filter: " + names.filter
        : b.normalize.group === "col" ? "this input channel: " + names.channel
          : "this kernel";
    cap.textContent = scaleCaption(b) + (what ? "\n" + what + (perGroup ? " of " + safe(b.layer) : "") : "");
    cb.dataset.mode = b.normalize.mode;
    rng.textContent = "";
    var known = !perGroup || h;
    rng.appendChild(el("span", known ? fmt(rg[0]) : "min"));
    rng.appendChild(el("span", safe(M.colormap.name)));
    rng.appendChild(el("span", known ? fmt(rg[1]) : "max"));
  }

  function colorbarIdle() {
    var bs = view().blocks;
    if (bs.length && !bs[0].normalize) return;
    if (bs.length && bs[0].normalize) drawColorbar(bs[0], cellRange(bs[0], 0), null);
  }

  /* ---- viewer ---- */
  var prefix = window.MONTAGE_OSD_PREFIX || "openseadragon/images/";
  function tileSources() {
    var out = [];
    shown().forEach(function (en) {
      M.views[en.i].tiles.forEach(function (t) {
        out.push({ tileSource: { Image: t.dzi }, x: en.dx + t.x, y: en.dy + t.y, width: +t.dzi.Size.Width });
      });
    });
    return out;
  }
  var viewer = OSD({
    id: "viewer", prefixUrl: prefix, tileSources: tileSources(),
    drawer: "canvas", imageSmoothingEnabled: false,   // magnified kernels stay crisp squares
    showNavigator: true, navigatorPosition: "BOTTOM_RIGHT",
    maxZoomPixelRatio: 128, minZoomImageRatio: 0.3, visibilityRatio: 0.1,
    zoomPerScroll: 1.4, animationTime: 0.4, showRotationControl: false,
    gestureSettingsMouse: { clickToZoom: false }
  });
  window.montage.viewer = viewer;

  /* Home: the world with room on screen for the names and axis titles beside the blocks, clear
   * of the zoom buttons (top left). */
  var PAD = { top: 64, left: 40, right: 24, bottom: 24 };
  function worldBounds() {
    var w = view().world, c = viewer.container;
    var width = w[0], height = w[1];
    if (state.compare) {
      var n = state.compare.length, c = gridCols();
      width = (c - 1) * stride() + w[0];
      height = (Math.ceil(n / c) - 1) * strideY() + w[1];
    }
    var z = Math.min(Math.max(c.clientWidth - PAD.left - PAD.right, 64) / width,
                     Math.max(c.clientHeight - PAD.top - PAD.bottom, 64) / height);   // screen px per world px
    return new OSD.Rect(-PAD.left / z, -PAD.top / z, width + (PAD.left + PAD.right) / z,
                        height + (PAD.top + PAD.bottom) / z);
  }
  function goHome(immediate) { viewer.viewport.fitBounds(worldBounds(), immediate); }

  function pointerWorld(ev) {
    var p = viewer.viewport.viewerElementToViewportCoordinates(new OSD.Point(ev.position.x, ev.position.y));
    return p;
  }
  new OSD.MouseTracker({
    element: viewer.element,
    moveHandler: function (ev) {
      var p = pointerWorld(ev);
      state.hover = hit(p.x, p.y);
      var near = state.hover ? state.hover.block : blockAt(p.x, p.y);
      if (near) loadValues(near);   // before the pointer reaches a cell
      if (!state.pinned) drawReadout(state.hover);
      drawLabels();
    }
  });
  viewer.addHandler("canvas-click", function (ev) {
    if (!ev.quick) return;
    var p = pointerWorld(ev);
    var h = hit(p.x, p.y);
    pin(h, false);
  });

  /* the block whose area (gaps included) holds world point (x, y), in any image shown */
  function blockAt(wx, wy) {
    var entries = shown();
    for (var e = 0; e < entries.length; e++) {
      var blocks = M.views[entries[e].i].blocks, x = wx - entries[e].dx, y = wy - entries[e].dy;
      for (var i = 0; i < blocks.length; i++) {
        var b = blocks[i], s = gridSize(b.grid);
        if (x >= b.x && y >= b.y && x < b.x + s[1] && y < b.y + s[0]) return b;
      }
    }
    return null;
  }

  function pin(h, zoom) {
    state.pinned = h;
    drawReadout(h);
    drawLabels();
    if (!h) { history.replaceState(null, "", location.pathname + location.search); return; }
    selectLayer(h.block.layer);   // the form starts from the pinned cell's layer
    var q = cellNames(h.block, h.k), parts = [];
    if (M.kind === "features") parts.push("image=" + encodeURIComponent(nameOf(h.view === undefined ? state.view : h.view)));
    parts.push("layer=" + encodeURIComponent(h.block.layer));
    Object.keys(q).forEach(function (k) { parts.push(k + "=" + q[k]); });
    history.replaceState(null, "", "#" + parts.join("&"));
    if (zoom) {
      var r = cellRect(h.block, h.k, h.dx, h.dy), m = Math.max(r.width, r.height) * 2;
      viewer.viewport.fitBounds(new OSD.Rect(r.x - m, r.y - m, r.width + 2 * m, r.height + 2 * m), true);
    }
  }
  function findBlock(layer) {
    var bs = view().blocks;
    for (var i = 0; i < bs.length; i++) if (bs[i].layer === layer) return bs[i];
    return null;
  }
  function jumpTo(q) {
    var vi = state.view, at = { dx: 0, dy: 0 };
    if (q.image !== undefined && state.compare) {
      var j = state.compare.indexOf(findImage(q.image));
      if (j < 0) return false;
      vi = state.compare[j];
      at = placeOf(j);
    } else if (q.image !== undefined && q.image !== nameOf(state.view)) {
      var i = findImage(q.image);
      if (i < 0) return false;
      var rest = Object.assign({}, q);
      delete rest.image;
      setView(i, false, function () { jumpTo(rest); });
      return true;
    }
    var b = findBlock(q.layer);
    if (!b) return false;
    var k = cellIndex(b, { filter: +(q.filter || 0), channel: +(q.channel || 0), rank: +(q.rank || 0) });
    if (!(k >= 0 && k < b.grid.n)) return false;
    pin({ block: b, k: k, row: Math.floor(k / b.grid.cols), col: k % b.grid.cols, cy: 0, cx: 0,
          view: vi, dx: at.dx, dy: at.dy }, true);
    return true;
  }
  function parseHash() {
    var q = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i <= 0) return;
      try {
        var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1));
      } catch (e) {   // a hand-edited link such as "#layer=%ZZ": drop that part, keep the rest
        return;
      }
      q[k] = v;
    });
    return q;
  }

  /* ---- views (images) and blocks (layers) ---- */
  function setView(i, keepViewport, then) {
    if (i === state.view) { if (then) then(); return; }
    var bounds = viewer.viewport.getBounds(true);
    state.view = i;
    state.pinned = null;
    reload(bounds, keepViewport, then);
    markActive();
    buildBlocks();
    drawReadout(null);
  }
  function reload(bounds, keepViewport, then) {
    viewer.world.removeAll();
    var sources = tileSources(), left = sources.length;
    sources.forEach(function (ts) {
      // OpenSeadragon re-homes an emptied world when its first image opens: restore after.
      ts.success = function () {
        if (--left > 0) return;
        if (keepViewport) viewer.viewport.fitBounds(bounds, true);
        if (then) then();
      };
      viewer.addTiledImage(ts);
    });
  }
  /* Side by side: a page of up to COMPARE_MAX images in a grid — the page of the search's
   * matches that holds the current image — its region kept in view. */
  function setCompare(on) {
    if (on === !!state.compare) return;
    var b = viewer.viewport.getBounds(true), c = viewer.viewport.getCenter(true);
    if (on) {
      var list = state.matches, at = Math.max(0, list.indexOf(state.view));
      at -= at % COMPARE_MAX;   // the page of matches that holds the current image
      state.compare = list.slice(at, at + COMPARE_MAX);
      if (state.compare.indexOf(state.view) < 0) state.compare.unshift(state.view);
      state.compare = state.compare.slice(0, COMPARE_MAX);
    } else {
      var where = imageAt(c.x, c.y), p = placeOf(where.j);
      b.x -= p.dx; b.y -= p.dy;
      state.view = where.i;
      state.compare = false;
    }
    state.pinned = null;
    reload(b, !on, on ? function () { goHome(true); } : null);
    markActive();
    drawReadout(null);
  }
  function markActive() {
    var cmp = $("views").querySelector("button.compare");
    if (cmp) cmp.classList.toggle("active", !!state.compare);
    drawList();
    window.montage.compare = state.compare ? state.compare.slice() : null;
  }
  /* The image switcher: a search box and a virtual list (only the rows in sight are in the
   * page), each row with a thumbnail from a small level of that image's own pyramid. */
  var ROW = 22;
  state.matches = [];
  function thumbUrl(i) {
    var d = M.layout ? M.layout.dzi : M.views[i].tiles[0].dzi;
    var w = +d.Size.Width, h = +d.Size.Height, top = Math.ceil(Math.log2(Math.max(w, h, 1)));
    var level = Math.max(0, top - Math.max(0, Math.ceil(Math.log2(Math.max(w, h) / 20))));
    var base = M.layout ? "images/" + M.images.bases[i] + "_files/" : M.views[i].tiles[0].dzi.Url;
    return base + level + "/0_0." + d.Format;
  }
  function search(text) {
    var q = text.toLowerCase(), n = M.views.length, out = [];
    for (var i = 0; i < n; i++) if (!q || nameOf(i).toLowerCase().indexOf(q) >= 0) out.push(i);
    state.matches = out;
    var list = $("views").querySelector(".vlist");
    list.querySelector(".vspace").style.height = out.length * ROW + "px";
    list.scrollTop = 0;
    $("views").querySelector(".count").textContent = out.length + " of " + n + " images";
    drawList();
  }
  function drawList() {
    var list = $("views").querySelector(".vlist");
    if (!list) return;
    var rows = list.querySelector(".vrows"), first = Math.floor(list.scrollTop / ROW);
    var last = Math.min(state.matches.length, first + Math.ceil((list.clientHeight || 200) / ROW) + 2);
    rows.textContent = "";
    rows.style.top = first * ROW + "px";
    for (var r = first; r < last; r++) {
      (function (i) {
        var btn = el("button");
        btn.dataset.view = i;
        var img = el("img");
        img.src = thumbUrl(i);
        img.alt = "";
        btn.appendChild(img);
        btn.appendChild(el("span", safe(nameOf(i))));
        btn.classList.toggle("active", state.compare ? state.compare.indexOf(i) >= 0 : i === state.view);
        btn.addEventListener("click", function () { choose(i); });
        rows.appendChild(btn);
      })(state.matches[r]);
    }
  }
  function choose(i) {
    if (state.compare) {   // in the grid: go to that image's copy of the current region
      var j = state.compare.indexOf(i);
      if (j < 0) { setCompare(false); setView(i, true); setCompare(true); return; }
      var c = viewer.viewport.getCenter(true), cur = imageAt(c.x, c.y), bb = viewer.viewport.getBounds(true);
      var p0 = placeOf(cur.j), p1 = placeOf(j);
      bb.x += p1.dx - p0.dx; bb.y += p1.dy - p0.dy;
      viewer.viewport.fitBounds(bb);
    } else setView(i, true);
  }
  /* up/down in the search box or the list: the previous or next image the search matched */
  function step(by) {
    var m = state.matches, at = m.indexOf(state.view), next = m[Math.max(0, Math.min(m.length - 1, at + by))];
    if (next === undefined) return;
    choose(next);
    var list = $("views").querySelector(".vlist"), y = m.indexOf(next) * ROW;
    if (y < list.scrollTop) list.scrollTop = y;
    else if (y + ROW > list.scrollTop + list.clientHeight) list.scrollTop = y + ROW - list.clientHeight;
    drawList();
  }
  function buildViews() {
    var nav = $("views");
    if (M.views.length < 2) { nav.style.display = "none"; return; }
    var bar = el("div", undefined, "vbar");
    var box = el("input");
    box.type = "search"; box.placeholder = "search images"; box.className = "search";
    box.addEventListener("input", function () { search(box.value); });
    var cmp = el("button", "side by side", "compare");
    cmp.addEventListener("click", function () { setCompare(!state.compare); });
    bar.appendChild(box);
    bar.appendChild(cmp);
    nav.appendChild(bar);
    nav.appendChild(el("div", "", "count"));
    var list = el("div", undefined, "vlist");
    list.tabIndex = 0;
    var space = el("div", undefined, "vspace"), rows = el("div", undefined, "vrows");
    space.appendChild(rows);
    list.appendChild(space);
    list.addEventListener("scroll", drawList);
    nav.appendChild(list);
    [box, list].forEach(function (e) {
      e.addEventListener("keydown", function (ev) {
        if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          ev.stopPropagation();
          step(ev.key === "ArrowDown" ? 1 : -1);
        }
      });
    });
    search("");
    markActive();
  }
  /* The layer buttons and the jump form's select name the same layer: choosing either moves both. */
  function selectLayer(layer) {
    state.layer = layer;
    var sel = $("jump").querySelector("select");
    if (sel) sel.value = layer;
    Array.prototype.forEach.call($("blocks").querySelectorAll("button"), function (btn) {
      btn.classList.toggle("active", btn.dataset.layer === layer);
    });
  }
  function showBlock(b) {
    var s = gridSize(b.grid), c = viewer.viewport.getCenter(true);
    var p = state.compare ? placeOf(imageAt(c.x, c.y).j) : { dx: 0, dy: 0 };
    selectLayer(b.layer);
    loadValues(b);
    viewer.viewport.fitBounds(new OSD.Rect(p.dx + b.x, p.dy + b.y, s[1], s[0]));
  }
  function buildBlocks() {
    var nav = $("blocks");
    nav.textContent = "";
    view().blocks.forEach(function (b) {
      var g = b.grid;
      var size = b.kind === "examples" ? b.channels + " channels x top " + b.top : g.rows + " x " + g.cols;
      var btn = el("button", safe(b.layer) + "  (" + size + ")");
      btn.dataset.layer = b.layer;
      btn.addEventListener("click", function () { showBlock(b); });
      btn.addEventListener("mouseenter", function () { loadValues(b); });
      nav.appendChild(btn);
    });
    buildJump();
    var layer = state.layer;
    selectLayer(layer && findBlock(layer) ? layer : view().blocks.length ? view().blocks[0].layer : null);
  }
  function buildJump() {
    var f = $("jump");
    f.textContent = "";
    var sel = el("select");
    sel.name = "layer";
    view().blocks.forEach(function (b) { var o = el("option", safe(b.layer)); o.value = b.layer; sel.appendChild(o); });
    f.appendChild(sel);
    sel.addEventListener("change", function () { var b = findBlock(sel.value); if (b) showBlock(b); });
    var fields = M.kind === "filters" ? ["filter", "channel"] : M.kind === "examples" ? ["channel", "rank"] : ["channel"];
    fields.forEach(function (name) {
      var i = el("input");
      i.name = name; i.placeholder = name; i.type = "number"; i.min = 0;
      f.appendChild(i);
    });
    f.appendChild(el("button", "go"));
    f.onsubmit = function (ev) {
      ev.preventDefault();
      var q = { layer: sel.value };
      fields.forEach(function (n) { q[n] = f.elements[n].value || 0; });
      jumpTo(q);
    };
  }

  /* ---- labels: layer names and axis titles beside blocks, indices along visible grid edges ----
   * Every label is a box on screen; a box that would overlap one already placed, or OpenSeadragon's
   * controls, moves to its next candidate place or is not drawn. Names and titles sit on dark
   * plates, indices have a dark halo: legible over any cell colour. window.montage.labelBoxes
   * holds what the last frame drew. */
  var labels = $("labels");
  var FONT = { name: "bold 12px system-ui, sans-serif", title: "italic 11px system-ui, sans-serif",
               index: "11px system-ui, sans-serif" };
  var LINE = 16;   // plate height
  function axisTitles(b) {
    if (b.kind === "filters") return { across: "input channels \u2192", down: "filters \u2192" };
    if (b.kind === "examples") {
      return { across: "top " + b.top + " images, best first \u2192  (then the next " + b.band_rows + " channels)",
               down: "channels \u2192" };
    }
    var n = b.grid.n - 1;
    var what = b.kind === "rgb" ? "filters" : b.kind === "depthwise" ? "output channels" : "channels";
    return { across: what + " 0 .. " + n + ", row by row \u2192" };
  }
  function controlBoxes() {
    var c = viewer.container.getBoundingClientRect(), out = [];
    [viewer.navControl, viewer.navigator && viewer.navigator.element].forEach(function (e) {
      if (!e) return;
      var r = e.getBoundingClientRect();
      if (r.width && r.height) out.push({ x: r.left - c.left - 2, y: r.top - c.top - 2, w: r.width + 4, h: r.height + 4 });
    });
    return out;
  }
  function overlaps(a, b) { return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h; }
  function drawLabels() {
    var c = viewer.container, dpr = window.devicePixelRatio || 1;
    var W = c.clientWidth, H = c.clientHeight;
    if (labels.width !== W * dpr || labels.height !== H * dpr) {
      labels.width = W * dpr; labels.height = H * dpr;
      labels.style.width = W + "px"; labels.style.height = H + "px";
    }
    var ctx = labels.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.textBaseline = "middle";
    var vp = viewer.viewport;
    function px(x, y) { return vp.viewportToViewerElementCoordinates(new OSD.Point(x, y)); }
    var h = state.pinned || state.hover;
    if (h) {   // outline the cell the readout describes
      var cr = cellRect(h.block, h.k, h.dx, h.dy), a = px(cr.x, cr.y), z = px(cr.x + cr.width, cr.y + cr.height);
      ctx.strokeStyle = state.pinned ? "#fc0" : "rgba(255,255,0,0.7)";
      ctx.lineWidth = 2;
      ctx.strokeRect(a.x - 1, a.y - 1, z.x - a.x + 2, z.y - a.y + 2);
    }
    var controls = controlBoxes(), placed = [], blockBoxes = [];
    function free(r, own) {
      if (r.x < 0 || r.y < 0 || r.x + r.w > W || r.y + r.h > H) return false;
      for (var i = 0; i < controls.length; i++) if (overlaps(r, controls[i])) return false;
      for (var j = 0; j < placed.length; j++) if (overlaps(r, placed[j])) return false;
      if (own) {   // a name or title never lies over another block: it would seem to name that one
        for (var k = 0; k < blockBoxes.length; k++) {
          if (blockBoxes[k].b !== own && overlaps(r, blockBoxes[k])) return false;
        }
      }
      return true;
    }
    /* a plate with text at the first free candidate (x, y: its top-left); rotated reads downwards */
    function plate(text, kind, own, cands, rotated) {
      ctx.font = FONT[kind];
      var tw = Math.ceil(ctx.measureText(text).width) + 8;
      var w = rotated ? LINE : tw, hh = rotated ? tw : LINE;
      for (var i = 0; i < cands.length; i++) {
        if (!cands[i]) continue;
        var r = { x: Math.round(cands[i][0]), y: Math.round(cands[i][1]), w: w, h: hh, kind: kind, text: text };
        if (!free(r, own)) continue;
        placed.push(r);
        ctx.fillStyle = "rgba(17,17,17,0.82)";
        ctx.fillRect(r.x, r.y, r.w, r.h);
        ctx.fillStyle = kind === "name" ? "#fff" : "#bcd6ff";
        ctx.save();
        if (rotated) { ctx.translate(r.x + LINE / 2, r.y + 4); ctx.rotate(Math.PI / 2); ctx.fillText(text, 0, 0); }
        else ctx.fillText(text, r.x + 4, r.y + LINE / 2 + 0.5);
        ctx.restore();
        return r;
      }
      return null;
    }
    function index(text, x, cy, centred) {   // from x, or centred on x; vertically centred on cy
      var w = Math.ceil(ctx.measureText(text).width) + 2;
      var r = { x: Math.round(centred ? x - w / 2 : x), y: Math.round(cy - 6), w: w, h: 12, kind: "index", text: text };
      if (!free(r)) return;
      placed.push(r);
      ctx.strokeText(text, r.x + 1, cy);
      ctx.fillText(text, r.x + 1, cy);
    }
    var vb = viewer.viewport.getBounds(true), all = [];
    shown().forEach(function (en) {
      var w = M.views[en.i].world;
      if (en.dx > vb.x + vb.width || en.dx + w[0] < vb.x || en.dy > vb.y + vb.height || en.dy + w[1] < vb.y) return;
      M.views[en.i].blocks.forEach(function (b) {
        all.push(en.dx || en.dy ? Object.assign({}, b, { x: b.x + en.dx, y: b.y + en.dy }) : b);
      });
    });
    var onScreen = [];
    all.forEach(function (b) {
      var s = gridSize(b.grid), tl = px(b.x, b.y), br = px(b.x + s[1], b.y + s[0]);
      if (br.x < 0 || br.y < 0 || tl.x > W || tl.y > H) return;
      blockBoxes.push({ b: b, x: tl.x, y: tl.y, w: br.x - tl.x, h: br.y - tl.y });
      if (br.x - tl.x < 8) return;   // too small to name
      onScreen.push({ b: b, s: s, tl: tl, br: br, area: (br.x - tl.x) * (br.y - tl.y) });
    });
    onScreen.sort(function (p, q) { return q.area - p.area; });   // the largest blocks are named first
    onScreen.forEach(function (o) {
      var tl = o.tl, br = o.br, titles = axisTitles(o.b);
      var x0 = Math.max(tl.x, 0), y0 = Math.max(tl.y, 0), x1 = Math.min(br.x, W), y1 = Math.min(br.y, H);
      // Just above the block, else inside it below the column indices and right of the row
      // indices (either one moved right, clear of the zoom buttons); the across title follows
      // the name on its line, else on the next.
      var clear = controls.length ? controls[0].x + controls[0].w + 4 : x0, ix = x0 + 26, iy = y0 + 18;
      var name = plate(safe(o.b.layer), "name", o.b, [[x0, tl.y - LINE - 2], [Math.max(x0, clear), tl.y - LINE - 2],
                                                      [ix, iy], [Math.max(ix, clear), iy]]);
      if (!name) return;   // the titles go only where the name says whose they are
      ctx.font = FONT.title;
      var aw = ctx.measureText(titles.across).width + 8, mid = (x0 + x1) / 2 - aw / 2;
      var after = name.x + name.w + 4, inside = name.y >= tl.y;
      plate(titles.across, "title", o.b, [[Math.max(mid, after), name.y], [after, name.y],
                                          inside ? [name.x, name.y + LINE + 2] : null]);
      if (titles.down) {
        ctx.font = FONT.title;
        var dh = ctx.measureText(titles.down).width + 8, midy = (y0 + y1) / 2 - dh / 2;
        plate(titles.down, "title", o.b, [[tl.x - LINE - 2, midy], [tl.x - LINE - 2, y0 + LINE + 6],
                                          [x0 + 2, midy]], true);
      }
    });
    ctx.font = FONT.index;
    ctx.fillStyle = "rgba(255,255,0,0.95)";
    ctx.strokeStyle = "rgba(0,0,0,0.85)";
    ctx.lineWidth = 3;
    ctx.lineJoin = "round";
    onScreen.forEach(function (o) {
      var b = o.b, g = b.grid, p = pitch(g), zoom = (o.br.x - o.tl.x) / o.s[1];
      if (b.kind === "examples") return;   // banded: grid rows and columns are not channels and ranks
      if (b.kind !== "filters") { labelCells(b, g, p, zoom, W, H, px, index); return; }
      var widest = ctx.measureText(String(Math.max(g.rows, g.cols) - 1)).width + 6;
      if (p[1] * zoom < Math.max(18, widest) || p[0] * zoom < 14) return;   // too small to label each
      var left = Math.max(o.tl.x, 0), top = Math.max(o.tl.y, 0);
      var a0 = vp.viewerElementToViewportCoordinates(new OSD.Point(0, 0));
      for (var col = Math.max(0, Math.floor((a0.x - b.x) / p[1])); col < g.cols; col++) {
        var x = px(b.x + col * p[1] + p[1] / 2, 0).x;
        if (x > W) break;
        index(String(col), x, top + 8, true);
      }
      for (var row = Math.max(0, Math.floor((a0.y - b.y) / p[0])); row < g.rows; row++) {
        var y = px(0, b.y + row * p[0] + p[0] / 2).y;
        if (y > H) break;
        index(String(row), left + 3, y, false);
      }
    });
    window.montage.labelBoxes = placed;
    window.montage.controlBoxes = controls;
  }
  /* feature maps and RGB kernels: a cell is one channel (or filter); number the visible ones */
  function labelCells(b, g, p, zoom, W, H, px, index) {
    if (p[1] * zoom < 36) return;
    var vp = viewer.viewport;
    var a = vp.viewerElementToViewportCoordinates(new OSD.Point(0, 0));
    var z = vp.viewerElementToViewportCoordinates(new OSD.Point(W, H));
    var c0 = Math.max(0, Math.floor((a.x - b.x) / p[1])), c1 = Math.min(g.cols - 1, Math.floor((z.x - b.x) / p[1]));
    var r0 = Math.max(0, Math.floor((a.y - b.y) / p[0])), r1 = Math.min(g.rows - 1, Math.floor((z.y - b.y) / p[0]));
    for (var r = r0; r <= r1; r++) {
      for (var c = c0; c <= c1; c++) {
        var k = r * g.cols + c;
        if (k >= g.n) break;
        var q = px(b.x + c * p[1], b.y + r * p[0]);
        index(String(k), q.x + 3, q.y + 9, false);
      }
    }
  }
  viewer.addHandler("update-viewport", drawLabels);
  viewer.addHandler("resize", drawLabels);

  /* ---- keyboard: arrows pan, +/- zoom, 0 home, f full page ---- */
  document.addEventListener("keydown", function (ev) {
    if (ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT")) return;
    var vp = viewer.viewport, b = vp.getBounds(), step = 0.2;
    var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[ev.key]) { vp.panBy(new OSD.Point(b.width * moves[ev.key][0], b.height * moves[ev.key][1])); }
    else if (ev.key === "+" || ev.key === "=") vp.zoomBy(1.5);
    else if (ev.key === "-" || ev.key === "_") vp.zoomBy(1 / 1.5);
    else if (ev.key === "0") goHome(false);
    else if (ev.key === "f") viewer.setFullPage(!viewer.isFullPage());
    else return;
    ev.preventDefault();
  }, true);

  $("subtitle").textContent = M.kind + " \u00b7 " + safe(M.model && M.model.name || "") +
    " \u00b7 " + safe(M.weights && M.weights.source || "");
  document.title = safe(document.title);
  if (M.background) $("viewer").style.background = "rgb(" + M.background.join(",") + ")";
  var skipped = M.skipped || [];
  if (skipped.length) {   // the files a run left out: the manifest lists each with its reason
    var sk = $("skipped");
    sk.textContent = skipped.length + (skipped.length === 1 ? " input file" : " input files") +
      " skipped (manifest.json says why): " + skipped.slice(0, 3).map(function (e) {
        return safe(String(e.path).split(/[\\/]/).pop());
      }).join(", ") + (skipped.length > 3 ? ", ..." : "");
    sk.dataset.count = skipped.length;
    sk.title = skipped.map(function (e) { return safe(e.path) + ": " + safe(e.reason); }).join("\n");
    sk.hidden = false;
  }
  /* image i with the first cell of a layer pinned (for scripts and benchmarks) */
  window.montage.show = function (i, layer) {
    setView(i, false, function () { jumpTo({ layer: layer, channel: 0, filter: 0 }); });
  };
  buildViews();
  buildBlocks();
  drawReadout(null);
  viewer.addOnceHandler("open", function () {
    var q = parseHash();
    if (!(q.layer && jumpTo(q))) goHome(true);
    window.montage.ready = true;
  });
})();
