/* The side panel: the image switcher (a search box over a virtual list), the views and
 * layer lists, and the jump form. */
(function (app) {
  "use strict";
  var $ = app.$, M = app.manifest, OSD = app.OSD, el = app.el, gridSize = app.gridSize, safe = app.safe,
      state = app.state, loadValues = app.loadValues, imageAt = app.imageAt, nameOf = app.nameOf,
      placeOf = app.placeOf, view = app.view, findBlock = app.findBlock, jumpTo = app.jumpTo,
      markActive = app.markActive, setCompare = app.setCompare, setView = app.setView, viewer = app.viewer;

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
        /* a long path loses the middle of its folder part: the file name, what tells images
         * apart, stays whole; the tooltip has the whole path */
        var name = String(nameOf(i)), cut = Math.max(name.lastIndexOf("/"), name.lastIndexOf("\\")) + 1;
        btn.title = safe(name);
        btn.appendChild(el("span", safe(name.slice(0, cut)), "dir"));
        btn.appendChild(el("span", safe(name.slice(cut)), "file"));
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
    if (state.hover && state.hover.block.layer !== b.layer) state.hover = null;   // the readout follows the choice
    if (state.pinned && state.pinned.block.layer !== b.layer) app.pin(null);
    viewer.viewport.fitBounds(app.padded(new OSD.Rect(p.dx + b.x, p.dy + b.y, s[1], s[0])));
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
    var note = f.appendChild(el("div", "", "note"));
    note.setAttribute("role", "status");
    f.onsubmit = function (ev) {
      ev.preventDefault();
      var q = { layer: sel.value };
      fields.forEach(function (n) { q[n] = f.elements[n].value || 0; });
      var b = findBlock(q.layer), bad = b && outOfRange(b, q, fields);
      note.textContent = bad || "";
      if (!bad) jumpTo(q);
    };
  }

  /* what the jump form cannot reach in block b: "filter 999 is out of range: conv_b has filters 0 .. 6" */
  function outOfRange(b, q, fields) {
    var g = b.grid, top = { filter: g.rows, channel: b.kind === "filters" ? g.cols * (b.groups || 1)
      : b.kind === "examples" ? b.channels : g.n, rank: b.top };
    if (b.kind === "rgb") top.filter = g.n;
    var named = app.cellNames(b, 0) || {};   // the fields this kind of block has (an RGB kernel: no channel)
    fields = fields.filter(function (n) { return named[n] !== undefined; });
    for (var i = 0; i < fields.length; i++) {
      var n = fields[i], v = +q[n];
      if (!(v >= 0 && v < top[n] && v === Math.floor(v))) {
        return n + " " + q[n] + " is out of range: " + safe(b.layer) + " has " + n + "s 0 .. " + (top[n] - 1);
      }
    }
    var k = app.cellIndex(b, { filter: +(q.filter || 0), channel: +(q.channel || 0), rank: +(q.rank || 0) }), nm;
    nm = k >= 0 && k < g.n ? app.cellNames(b, k) : null;
    if (!nm || fields.some(function (n) { return nm[n] !== undefined && nm[n] !== +q[n]; })) {
      return "no such cell in " + safe(b.layer) + (b.groups > 1 ? " (a grouped conv: each filter sees its group's channels)" : "");
    }
    return null;
  }

  app.drawList = drawList;
  app.step = step;
  app.buildViews = buildViews;
  app.selectLayer = selectLayer;
  app.buildBlocks = buildBlocks;
})(window.montage);
