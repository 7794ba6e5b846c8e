/* The OpenSeadragon viewer over the manifest's tiles: home view, pointer to world, pinning,
 * jumping to a layer or cell, the URL hash, switching views and side by side. */
(function (app) {
  "use strict";
  var $ = app.$, M = app.manifest, OSD = app.OSD, cellIndex = app.cellIndex, cellNames = app.cellNames,
      cellRect = app.cellRect, gridSize = app.gridSize, state = app.state, loadValues = app.loadValues,
      COMPARE_MAX = app.COMPARE_MAX, drawReadout = app.drawReadout, findImage = app.findImage,
      gridCols = app.gridCols, hit = app.hit, imageAt = app.imageAt, nameOf = app.nameOf,
      placeOf = app.placeOf, shown = app.shown, stride = app.stride, strideY = app.strideY, view = app.view;

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
  /* The first "open" may come before the later scripts have run (the parser can yield between
   * them): it is remembered here, and main.js starts on it whenever it comes. */
  viewer.addOnceHandler("open", function () {
    app.opened = true;
    if (app.onOpen) app.onOpen();
  });

  /* Home: the world with room on screen for the names and axis titles beside the blocks, clear
   * of the zoom buttons (top left). */
  var PAD = { top: 64, left: 40, right: 24, bottom: 24 };
  function worldBounds() {
    var w = view().world, c = viewer.container;
    var width = w[0], height = w[1];
    if (state.compare) {   // the grid of atlases: its own names, the container's is c
      var n = state.compare.length, cols = gridCols();
      width = (cols - 1) * stride() + w[0];
      height = (Math.ceil(n / cols) - 1) * strideY() + w[1];
    }
    return padded(new OSD.Rect(0, 0, width, height));
  }
  /* world rect r with room around it on screen (PAD), so that its first row is not under the controls */
  function padded(r) {
    var c = viewer.container;
    var z = Math.min(Math.max(c.clientWidth - PAD.left - PAD.right, 64) / r.width,
                     Math.max(c.clientHeight - PAD.top - PAD.bottom, 64) / r.height);   // screen px per world px
    return new OSD.Rect(r.x - PAD.left / z, r.y - PAD.top / z, r.width + (PAD.left + PAD.right) / z,
                        r.height + (PAD.top + PAD.bottom) / z);
  }
  function goHome(immediate) { viewer.viewport.fitBounds(worldBounds(), immediate); }

  /* The layer list and the jump form follow the view: once zoomed in (the whole world no longer
   * in sight), the block under the middle of the screen is the current layer. */
  function followView() {
    if (!window.montage.ready) return;
    var vb = viewer.viewport.getBounds(true), whole = worldBounds();
    if (vb.width >= whole.width * 0.999 && vb.height >= whole.height * 0.999) return;   // home: no one block
    var c = viewer.viewport.getCenter(true), b = blockAt(c.x, c.y);
    if (b && b.layer !== state.layer) app.selectLayer(b.layer);
  }
  viewer.addHandler("animation-finish", followView);

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
      app.drawLabels();
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
    app.drawLabels();
    if (!h) { history.replaceState(null, "", location.pathname + location.search); return; }
    app.selectLayer(h.block.layer);   // the form starts from the pinned cell's layer
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
    app.buildBlocks();
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
    app.drawList();
    window.montage.compare = state.compare ? state.compare.slice() : null;
  }

  app.goHome = goHome;
  app.padded = padded;
  app.pin = pin;
  app.findBlock = findBlock;
  app.jumpTo = jumpTo;
  app.parseHash = parseHash;
  app.setView = setView;
  app.setCompare = setCompare;
  app.markActive = markActive;
})(window.montage);
