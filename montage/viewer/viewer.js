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
  window.montage = { manifest: M, state: state };

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
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "string") return v;
    var a = Math.abs(v);
    return (a !== 0 && (a < 1e-3 || a >= 1e5)) ? v.toExponential(3) : v.toPrecision(4);
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
    return { block: b, row: row, col: col, k: k, cy: Math.floor(ry / g.scale), cx: Math.floor(rx / g.scale) };
  }
  function cellRect(b, k, dx) {
    var g = b.grid, p = pitch(g), row = Math.floor(k / g.cols), col = k % g.cols;
    return new OSD.Rect((dx || 0) + b.x + col * p[1], b.y + row * p[0], g.cell_w * g.scale, g.cell_h * g.scale);
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
    return { channel: k };
  }
  function cellIndex(b, q) {
    if (b.kind === "filters") return q.filter * b.grid.cols + q.channel - groupOffset(b, q.filter);
    if (b.kind === "rgb") return q.filter;
    return q.channel;
  }
  function cellRange(b, k) {
    var nrm = b.normalize, g = b.grid, i;
    if (nrm.group === "row") i = Math.floor(k / g.cols);
    else if (nrm.group === "col") i = k % g.cols;
    else if (nrm.group === "cell") i = k;
    else i = 0;
    return [nrm.lo[i], nrm.hi[i]];
  }

  /* ---- kernel values, loaded on demand from layers/NAME.values.js ---- */
  window.montageValues = function (key, b64, shape) {
    var bin = atob(b64), buf = new ArrayBuffer(bin.length), u8 = new Uint8Array(buf);
    for (var i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    state.values[key] = { data: new Float32Array(buf), shape: shape };
    drawReadout(state.pinned || state.hover);
  };
  function loadValues(b) {
    if (!b.values || state.values[b.values] !== undefined) return;
    state.values[b.values] = null;  // loading
    var s = document.createElement("script");
    s.src = b.values;
    document.body.appendChild(s);
  }
  function kernelValues(b, k) {
    var v = b.values && state.values[b.values];
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
  /* The images on screen: the current one, or all of them side by side ("compare"), each
   * shifted right by dx. Atlases of one run share their geometry, so blocks line up. */
  var stride = function () { return view().world[0] * 1.05 + 64; };
  /* which image's copy lies under world x, side by side */
  var imageAt = function (x) { return Math.max(0, Math.min(M.views.length - 1, Math.floor(x / stride()))); };
  function shown() {
    if (!state.compare) return [{ i: state.view, dx: 0 }];
    return M.views.map(function (v, i) { return { i: i, dx: i * stride() }; });
  }
  function hit(wx, wy) {
    var entries = shown();
    for (var e = 0; e < entries.length; e++) {
      var en = entries[e], blocks = M.views[en.i].blocks;
      if (wx < en.dx || wx > en.dx + M.views[en.i].world[0]) continue;
      for (var i = 0; i < blocks.length; i++) {
        var h = locate(blocks[i], wx - en.dx, wy);
        if (h) { h.view = en.i; h.dx = en.dx; return h; }
      }
    }
    return null;
  }
  function drawReadout(h) {
    var r = $("readout");
    r.textContent = "";
    r.classList.toggle("pinned", !!state.pinned && h === state.pinned);
    Object.keys(r.dataset).forEach(function (k) { delete r.dataset[k]; });
    if (!h) { r.textContent = "point at a cell"; return; }
    var b = h.block, names = cellNames(b, h.k), lines = [];
    r.dataset.layer = b.layer;
    Object.keys(names).forEach(function (k) { r.dataset[k] = names[k]; });
    if (M.kind === "features") lines.push("image    " + safe(M.views[h.view === undefined ? state.view : h.view].name));
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
    if (b.kind === "features") lines.push("y, x     " + h.cy + ", " + h.cx);
    var rg = cellRange(b, h.k);
    lines.push("range    " + fmt(rg[0]) + " .. " + fmt(rg[1]) + "  (" + b.normalize.mode + ")");
    r.appendChild(el("div", lines.join("\n")));
    if (b.values) {
      var kv = kernelValues(b, h.k);
      if (!kv) { loadValues(b); r.appendChild(el("div", "weights  loading...")); return; }
      var t = el("table");
      kv.forEach(function (row, y) {
        var tr = el("tr");
        row.forEach(function (cell, x) {
          var td = el("td", cell.map(fmt).join("/"));
          if (y === h.cy && x === h.cx) td.style.background = "#3a3a1a";
          tr.appendChild(td);
        });
        t.appendChild(tr);
      });
      r.appendChild(el("div", b.kind === "rgb" ? "weights (R/G/B)" : "weights"));
      r.appendChild(t);
    }
    drawColorbar(b, rg);
  }

  /* ---- colour bar ---- */
  function drawColorbar(b, rg) {
    var c = $("colorbar").querySelector("canvas"), ctx = c.getContext("2d");
    var lut = M.colormap.lut, img = ctx.createImageData(256, 1);
    for (var i = 0; i < 256; i++) {
      img.data[4 * i] = lut[i][0]; img.data[4 * i + 1] = lut[i][1]; img.data[4 * i + 2] = lut[i][2];
      img.data[4 * i + 3] = 255;
    }
    for (var y = 0; y < c.height; y++) ctx.putImageData(img, 0, y);
    var rng = $("colorbar").querySelector(".range");
    rng.textContent = "";
    rng.appendChild(el("span", fmt(rg[0])));
    rng.appendChild(el("span", safe(M.colormap.name)));
    rng.appendChild(el("span", fmt(rg[1])));
  }

  /* ---- viewer ---- */
  var prefix = window.MONTAGE_OSD_PREFIX || "openseadragon/images/";
  function tileSources() {
    var out = [];
    shown().forEach(function (en) {
      M.views[en.i].tiles.forEach(function (t) {
        out.push({ tileSource: { Image: t.dzi }, x: en.dx + t.x, y: t.y, width: +t.dzi.Size.Width });
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

  function worldBounds() {
    var w = view().world, m = Math.max(w[0], w[1]) * 0.03 + 24;   // room for the layer names
    var width = state.compare ? (M.views.length - 1) * stride() + w[0] : w[0];
    return new OSD.Rect(-m, -m, width + 2 * m, w[1] + 2 * m);
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

  function pin(h, zoom) {
    state.pinned = h;
    drawReadout(h);
    drawLabels();
    if (!h) { history.replaceState(null, "", location.pathname + location.search); return; }
    var sel = $("jump").querySelector("select");
    if (sel) sel.value = h.block.layer;   // the form starts from the pinned cell's layer
    var q = cellNames(h.block, h.k), parts = [];
    if (M.kind === "features") parts.push("image=" + encodeURIComponent(M.views[h.view === undefined ? state.view : h.view].name));
    parts.push("layer=" + encodeURIComponent(h.block.layer));
    Object.keys(q).forEach(function (k) { parts.push(k + "=" + q[k]); });
    history.replaceState(null, "", "#" + parts.join("&"));
    if (zoom) {
      var r = cellRect(h.block, h.k, h.dx), m = Math.max(r.width, r.height) * 2;
      viewer.viewport.fitBounds(new OSD.Rect(r.x - m, r.y - m, r.width + 2 * m, r.height + 2 * m), true);
    }
  }
  function findBlock(layer) {
    var bs = view().blocks;
    for (var i = 0; i < bs.length; i++) if (bs[i].layer === layer) return bs[i];
    return null;
  }
  function jumpTo(q) {
    var vi = state.view;
    if (q.image !== undefined && state.compare) {
      vi = -1;
      for (var j = 0; j < M.views.length; j++) if (M.views[j].name === q.image) vi = j;
      if (vi < 0) return false;
    } else if (q.image !== undefined && q.image !== view().name) {
      for (var i = 0; i < M.views.length; i++) {
        if (M.views[i].name === q.image) {
          var rest = Object.assign({}, q);
          delete rest.image;
          setView(i, false, function () { jumpTo(rest); });
          return true;
        }
      }
      return false;
    }
    var b = findBlock(q.layer);
    if (!b) return false;
    var k = cellIndex(b, { filter: +(q.filter || 0), channel: +(q.channel || 0) });
    if (!(k >= 0 && k < b.grid.n)) return false;
    pin({ block: b, k: k, row: Math.floor(k / b.grid.cols), col: k % b.grid.cols, cy: 0, cx: 0,
          view: vi, dx: state.compare ? vi * stride() : 0 }, true);
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
  /* side by side: every image in one row, the same region of the current one kept in view */
  function setCompare(on) {
    if (on === !!state.compare) return;
    var b = viewer.viewport.getBounds(true), c = viewer.viewport.getCenter(true);
    if (on) {
      b.x += state.view * stride();
    } else {
      var i = imageAt(c.x);
      b.x -= i * stride();
      state.view = i;
    }
    state.compare = on;
    state.pinned = null;
    reload(b, true);
    markActive();
    drawReadout(null);
  }
  function markActive() {
    Array.prototype.forEach.call($("views").querySelectorAll("button[data-view]"), function (b, j) {
      b.classList.toggle("active", !state.compare && j === state.view);
    });
    var cmp = $("views").querySelector("button.compare");
    if (cmp) cmp.classList.toggle("active", !!state.compare);
  }
  function buildViews() {
    var nav = $("views");
    if (M.views.length < 2) { nav.style.display = "none"; return; }
    var cmp = el("button", "side by side", "compare");
    cmp.addEventListener("click", function () { setCompare(!state.compare); });
    nav.appendChild(cmp);
    M.views.forEach(function (v, i) {
      var btn = el("button", safe(v.name));
      btn.dataset.view = i;
      btn.addEventListener("click", function () {
        if (state.compare) {   // jump to that image's copy of the current region
          var bb = viewer.viewport.getBounds(true), c = viewer.viewport.getCenter(true);
          var cur = imageAt(c.x);
          bb.x += (i - cur) * stride();
          viewer.viewport.fitBounds(bb);
        } else setView(i, true);
      });
      nav.appendChild(btn);
    });
    markActive();
  }
  function buildBlocks() {
    var nav = $("blocks");
    nav.textContent = "";
    view().blocks.forEach(function (b) {
      var g = b.grid;
      var btn = el("button", safe(b.layer) + "  (" + g.rows + " x " + g.cols + ")");
      btn.dataset.layer = b.layer;
      btn.addEventListener("click", function () {
        var s = gridSize(g), c = viewer.viewport.getCenter(true);
        var dx = state.compare ? imageAt(c.x) * stride() : 0;
        viewer.viewport.fitBounds(new OSD.Rect(dx + b.x, b.y, s[1], s[0]));
      });
      nav.appendChild(btn);
    });
    buildJump();
  }
  function buildJump() {
    var f = $("jump");
    f.textContent = "";
    var sel = el("select");
    sel.name = "layer";
    view().blocks.forEach(function (b) { var o = el("option", safe(b.layer)); o.value = b.layer; sel.appendChild(o); });
    f.appendChild(sel);
    var fields = M.kind === "filters" ? ["filter", "channel"] : ["channel"];
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

  /* ---- labels: indices along the visible grid edges, layer names over blocks ---- */
  var labels = $("labels");
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
    ctx.font = "11px system-ui, sans-serif";
    var vp = viewer.viewport;
    function px(x, y) { return vp.viewportToViewerElementCoordinates(new OSD.Point(x, y)); }
    var h = state.pinned || state.hover;
    if (h) {   // outline the cell the readout describes
      var cr = cellRect(h.block, h.k, h.dx), a = px(cr.x, cr.y), z = px(cr.x + cr.width, cr.y + cr.height);
      ctx.strokeStyle = state.pinned ? "#fc0" : "rgba(255,255,0,0.7)";
      ctx.lineWidth = 2;
      ctx.strokeRect(a.x - 1, a.y - 1, z.x - a.x + 2, z.y - a.y + 2);
    }
    var vb = viewer.viewport.getBounds(true), all = [];
    shown().forEach(function (en) {
      if (en.dx > vb.x + vb.width || en.dx + M.views[en.i].world[0] < vb.x) return;   // off screen
      M.views[en.i].blocks.forEach(function (b) { all.push(en.dx ? Object.assign({}, b, { x: b.x + en.dx }) : b); });
    });
    all.forEach(function (b) {
      var g = b.grid, s = gridSize(g), p = pitch(g);
      var tl = px(b.x, b.y), br = px(b.x + s[1], b.y + s[0]);
      if (br.x < 0 || br.y < 0 || tl.x > W || tl.y > H) return;
      var zoom = (br.x - tl.x) / s[1];
      if (br.x - tl.x > 60) {
        ctx.fillStyle = "#fff";
        ctx.fillText(safe(b.layer), Math.max(tl.x, 4), Math.max(tl.y - 4, 12));
      }
      if (b.kind !== "filters") { labelCells(ctx, b, g, p, zoom, W, H, px); return; }
      if (p[1] * zoom < 18) return;   // too small to label every row and column
      ctx.fillStyle = "rgba(255,255,0,0.9)";
      var left = Math.max(tl.x, 0), top = Math.max(tl.y, 0);
      var c0 = Math.max(0, Math.floor((vp.viewerElementToViewportCoordinates(new OSD.Point(0, 0)).x - b.x) / p[1]));
      for (var col = c0; col < g.cols; col++) {
        var x = px(b.x + col * p[1] + p[1] / 2, 0).x;
        if (x > W) break;
        ctx.fillText(String(col), x - 4, top + 11);
      }
      var r0 = Math.max(0, Math.floor((vp.viewerElementToViewportCoordinates(new OSD.Point(0, 0)).y - b.y) / p[0]));
      for (var row = r0; row < g.rows; row++) {
        var y = px(0, b.y + row * p[0] + p[0] / 2).y;
        if (y > H) break;
        ctx.fillText(String(row), left + 2, y + 4);
      }
    });
  }
  /* feature maps and RGB kernels: a cell is one channel (or filter); number the visible ones */
  function labelCells(ctx, b, g, p, zoom, W, H, px) {
    if (p[1] * zoom < 36) return;
    var vp = viewer.viewport;
    var a = vp.viewerElementToViewportCoordinates(new OSD.Point(0, 0));
    var z = vp.viewerElementToViewportCoordinates(new OSD.Point(W, H));
    var c0 = Math.max(0, Math.floor((a.x - b.x) / p[1])), c1 = Math.min(g.cols - 1, Math.floor((z.x - b.x) / p[1]));
    var r0 = Math.max(0, Math.floor((a.y - b.y) / p[0])), r1 = Math.min(g.rows - 1, Math.floor((z.y - b.y) / p[0]));
    ctx.fillStyle = "rgba(255,255,0,0.9)";
    for (var r = r0; r <= r1; r++) {
      for (var c = c0; c <= c1; c++) {
        var k = r * g.cols + c;
        if (k >= g.n) break;
        var q = px(b.x + c * p[1], b.y + r * p[0]);
        ctx.fillText(String(k), q.x + 2, q.y + 11);
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
  buildViews();
  buildBlocks();
  drawReadout(null);
  if (view().blocks.length) drawColorbar(view().blocks[0], cellRange(view().blocks[0], 0));
  viewer.addOnceHandler("open", function () {
    var q = parseHash();
    if (!(q.layer && jumpTo(q))) goHome(true);
    window.montage.ready = true;
  });
})();
