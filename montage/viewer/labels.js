/* Labels drawn on a canvas over the viewer: block names, axis titles, channel numbers;
 * placed where they overlap neither each other nor the controls. */
(function (app) {
  "use strict";
  var $ = app.$, M = app.manifest, OSD = app.OSD, cellRect = app.cellRect, gridSize = app.gridSize,
      pitch = app.pitch, safe = app.safe, state = app.state, shown = app.shown, viewer = app.viewer;

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
      return { across: (b.optimum ? "optimum, then " : "") + "top " + b.top + " images, best first \u2192  (then the next " +
               b.band_rows + " channels)",
               down: "channels \u2192" };
    }
    if (b.kind === "optimize") {
      return { across: "channels " + b.channels[0] + " .. " + b.channels[b.channels.length - 1] + ", row by row \u2192" };
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
        var r = { x: Math.round(cands[i][0]), y: Math.round(cands[i][1]), w: w, h: hh, kind: kind, text: text,
                  layer: own && own.layer };
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
      if (br.x - tl.x < 1 || br.y - tl.y < 1) return;   // not a pixel on screen
      onScreen.push({ b: b, s: s, tl: tl, br: br, area: (br.x - tl.x) * (br.y - tl.y) });
    });
    onScreen.sort(function (p, q) { return q.area - p.area; });   // the largest blocks are named first
    // Every name before any title: a title says less than a neighbour's name would.
    var named = onScreen.filter(function (o) { o.name = placeName(o); return o.name; });
    named.forEach(function (o) {
      var tl = o.tl, br = o.br, titles = axisTitles(o.b), name = o.name;
      var x0 = Math.max(tl.x, 0), y0 = Math.max(tl.y, 0), x1 = Math.min(br.x, W), y1 = Math.min(br.y, H);
      if (name.x > br.x || name.y > br.y || name.x + name.w < tl.x) return;   // named beside or below: no room for titles
      // the across title follows the name on its line, else on the next
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
    /* Just above the block, else inside it below the column indices and right of the row indices
     * (either one moved right, clear of the zoom buttons), else below, right or left of it. */
    function placeName(o) {
      var tl = o.tl, br = o.br, text = safe(o.b.layer), x0 = Math.max(tl.x, 0), y0 = Math.max(tl.y, 0);
      var clear = controls.length ? controls[0].x + controls[0].w + 4 : x0, ix = x0 + 26, iy = y0 + 18;
      ctx.font = FONT.name;
      var tw = Math.ceil(ctx.measureText(text).width) + 8;
      return plate(text, "name", o.b, [[x0, tl.y - LINE - 2], [Math.max(x0, clear), tl.y - LINE - 2],
                                       [ix, iy], [Math.max(ix, clear), iy], [x0, br.y + 2], [br.x + 4, y0],
                                       [tl.x - tw - 4, y0], [br.x - tw, tl.y - LINE - 2], [br.x - tw, br.y + 2]]);
    }
    ctx.font = FONT.index;
    ctx.fillStyle = "rgba(255,255,0,0.95)";
    ctx.strokeStyle = "rgba(0,0,0,0.85)";
    ctx.lineWidth = 3;
    ctx.lineJoin = "round";
    onScreen.forEach(function (o) {
      var b = o.b, g = b.grid, p = pitch(g), zoom = (o.br.x - o.tl.x) / o.s[1];
      if (b.kind === "examples") return;   // banded: grid rows and columns are not channels and ranks
      if (b.kind !== "filters") { labelCells(b, g, p, zoom, W, H, px, index, ctx); return; }
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
  function labelCells(b, g, p, zoom, W, H, px, index, ctx) {
    // a number covers at most a twelfth of its cell: the map under it stays readable
    var wide = ctx.measureText(String(g.n - 1)).width + 2;
    if (p[1] * zoom < Math.max(36, 2 * wide) || p[1] * zoom * p[0] * zoom < 12 * wide * 12) return;
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
        index(String(b.kind === "optimize" ? b.channels[k] : k), q.x + 3, q.y + 9, false);
      }
    }
  }
  viewer.addHandler("update-viewport", drawLabels);
  viewer.addHandler("resize", drawLabels);

  app.drawLabels = drawLabels;
})(window.montage);
