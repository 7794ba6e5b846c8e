/* The readout: what is under the pointer (or pinned), the cell's values and kernel tables,
 * examples' patches, and the colour bar; side-by-side placement of compared images. */
(function (app) {
  "use strict";
  var $ = app.$, M = app.manifest, asked = app.asked, cellNames = app.cellNames, cellRange = app.cellRange,
      el = app.el, fmt = app.fmt, locate = app.locate, safe = app.safe, state = app.state,
      kernelValues = app.kernelValues, loadValues = app.loadValues, loading = app.loading;

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
    if (h.block.kind === "optimize") { drawOptimum(r, h); return; }
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
    if (app.cellFlat(b, h.k)) {   // a dead or constant channel: stretched, its rounding would look vivid
      r.dataset.flat = "1";
      lines.push("flat     range negligible beside the layer's (at most 1e-6 of it): drawn as one colour");
    }
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
    var b = h.block, q = cellNames(b, h.k), e = q.rank >= 0 ? (b.examples[q.channel] || [])[q.rank] : null;
    var st = b.stats, lines = [];
    r.dataset.layer = b.layer; r.dataset.channel = q.channel; r.dataset.rank = q.rank;
    lines.push("layer    " + safe(b.layer));
    lines.push("channel  " + q.channel + (b.dead.indexOf(q.channel) >= 0 ? "  (dead: never above 0)" : ""));
    if (q.rank < 0) {   // the channel's feature visualisation (--optimum)
      r.dataset.start = fmt(b.optimum.start[q.channel]); r.dataset.end = fmt(b.optimum.end[q.channel]);
      lines.push("optimum  the picture this channel responds to most (feature visualisation, " +
                 (M.method ? M.method.steps + " steps" : "") + ")");
      lines.push("objective " + fmt(b.optimum.start[q.channel]) + " -> " + fmt(b.optimum.end[q.channel]) +
                 "  (mean of its map, from noise to the picture)");
    } else lines.push("rank     " + q.rank + " of " + b.top + " (by spatial " + b.score + ")");
    if (e && q.rank >= 0) {
      r.dataset.image = e.image; r.dataset.score = fmt(e.score); r.dataset.box = e.box.join(",");
      lines.push("image    " + safe(shortPath(e.image)));
      lines.push("y, x     " + e.y + ", " + e.x + "  (in the " + b.map_shape[0] + " x " + b.map_shape[1] + " map)");
      lines.push("score    " + fmt(e.score));
      lines.push("box      " + e.box.join(", ") + "  (top, left, bottom, right in input pixels)");
    } else if (q.rank >= 0) {
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
  /* feature visualisation: the channel's picture and how far the ascent took its objective */
  function drawOptimum(r, h) {
    var b = h.block, q = cellNames(b, h.k), o = b.objective, m = M.method || {};
    var start = o.start[h.k], end = o.end[h.k];
    r.dataset.layer = b.layer; r.dataset.channel = q.channel;
    r.dataset.start = fmt(start); r.dataset.end = fmt(end);
    var lines = ["layer    " + safe(b.layer), "channel  " + q.channel,
                 "objective " + safe(m.objective || "") + (b.map_shape.length === 3 ? " (" +
                   (m.objective === "neuron" ? "the unit at the centre" : "mean") + " of its " + b.map_shape[0] +
                   " x " + b.map_shape[1] + " map)" : ""),
                 "start    " + fmt(start), "end      " + fmt(end) + (end > start ? "" : "  (no gain: a dead channel?)"),
                 "y, x     " + h.cy + ", " + h.cx + "  (in the " + b.grid.cell_h + " x " + b.grid.cell_w + " picture)",
                 "", safe(m.param || "") + " parameters, " + m.steps + " steps, Adam " + m.lr + ", seed " + m.seed];
    r.appendChild(el("div", lines.join("\n")));
    var cb = $("colorbar");
    cb.querySelector(".caption").textContent = "feature visualisation: each picture in its own colours (RGB)";
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
    var rgb = b.kind === "rgb", lut = M.colormap.lut, img = ctx.createImageData(256, 1);
    for (var i = 0; i < 256; i++) {   // an RGB kernel is its own colour: each of R, G, B runs dark .. full
      var e = rgb ? [i, i, i] : lut[i];
      img.data[4 * i] = e[0]; img.data[4 * i + 1] = e[1]; img.data[4 * i + 2] = e[2];
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
    rng.appendChild(el("span", rgb ? "each of R, G, B (no colormap)" : safe(M.colormap.name)));
    rng.appendChild(el("span", known ? fmt(rg[1]) : "max"));
  }

  function colorbarIdle() {
    var bs = view().blocks;
    if (bs.length && !bs[0].normalize) return;
    if (bs.length && bs[0].normalize) drawColorbar(bs[0], cellRange(bs[0], 0), null);
  }

  app.view = view;
  app.nameOf = nameOf;
  app.findImage = findImage;
  app.COMPARE_MAX = COMPARE_MAX;
  app.stride = stride;
  app.strideY = strideY;
  app.gridCols = gridCols;
  app.placeOf = placeOf;
  app.imageAt = imageAt;
  app.shown = shown;
  app.hit = hit;
  app.redraw = redraw;
  app.drawReadout = drawReadout;
})(window.montage);
