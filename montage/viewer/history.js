/* Training history (montage.Recorder, montage history): a step slider over the views (three a
 * step: the kernels, their change since the previous step, since the first), play, left/right
 * keys, per-layer curves that jump the slider, and the value with its changes in the readout.
 * Loaded after main.js on history pages only. */
(function (app) {
  "use strict";
  var M = app.manifest, H = M.history, $ = app.$, el = app.el, fmt = app.fmt, safe = app.safe, state = app.state;
  if (!H) return;
  var MODES = H.modes, NAMES = { value: "kernels", previous: "change since previous step", first: "change since first step" };
  var cur = { i: 0, mode: 0, timer: null };

  var box = el("div"), slider = el("input"), label = el("span"), play = el("button", "\u25b6"), modes = el("select");
  box.id = "history";
  slider.type = "range"; slider.id = "step"; slider.min = 0; slider.max = H.steps.length - 1; slider.value = 0;
  label.id = "step-label";
  play.type = "button"; play.title = "play the steps";
  MODES.forEach(function (m, j) { var o = el("option", NAMES[m]); o.value = j; modes.appendChild(o); });
  var row = el("div");
  [play, slider, label].forEach(function (e) { row.appendChild(e); });
  box.appendChild(row);
  box.appendChild(modes);
  var curves = el("div"), extra = el("div");
  curves.className = "curves"; extra.id = "history-readout";
  box.appendChild(curves);
  $("panel").insertBefore(box, $("views"));
  $("views").hidden = true;   // three views a step: the slider and the mode choose among them
  $("readout").parentNode.insertBefore(extra, $("readout"));
  $("subtitle").textContent = "history \u00b7 " + safe(M.model && M.model.name || "") + " \u00b7 " +
    H.steps.length + " steps";
  if (H.range === "steps") box.appendChild(el("div", "one range for every step (the first step's)", "note"));

  function go(i, mode) {
    i = Math.max(0, Math.min(H.steps.length - 1, i));
    if (mode !== undefined) cur.mode = mode;
    cur.i = i;
    slider.value = i;
    modes.value = cur.mode;
    label.textContent = "step " + H.steps[i] + (H.labels && H.labels[i] ?
      " (" + safe(String(H.labels[i]).split(/[\\/]/).pop()) + ")" : "");
    box.dataset.step = H.steps[i];
    box.dataset.mode = MODES[cur.mode];
    M.colormap = cur.mode ? H.colormaps.diff : H.colormaps.value;   // the colour bar's table
    if (state.compare) app.setCompare(false);
    app.setView(i * MODES.length + cur.mode, true);
    update();
  }
  slider.addEventListener("input", function () { go(+slider.value); });
  modes.addEventListener("change", function () { go(cur.i, +modes.value); });
  play.addEventListener("click", function () {
    if (cur.timer) { clearInterval(cur.timer); cur.timer = null; play.textContent = "\u25b6"; return; }
    play.textContent = "\u23f8";
    if (cur.i === H.steps.length - 1) go(0);
    cur.timer = setInterval(function () {
      if (cur.i >= H.steps.length - 1) { play.click(); return; }
      go(cur.i + 1);
    }, 700);
  });
  /* left/right step the slider (before main.js' panning, which keeps up/down) */
  window.addEventListener("keydown", function (ev) {
    if (ev.target && ev.target.tagName === "SELECT") return;
    if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    go(cur.i + (ev.key === "ArrowRight" ? 1 : -1));
  }, true);

  /* the weight under the pointer at this step, and its change since the previous and first steps */
  function valueAt(view, h) {
    var b = M.views[view].blocks.filter(function (x) { return x.layer === h.block.layer; })[0];
    var v = b && app.loadValues(b);
    if (!v || !v.done) return null;
    var s = v.shape;
    return v.data[((h.cy * s[1] + h.cx) * s[2] + h.k) * s[3]];
  }
  function update() {
    var h = state.pinned || state.hover;
    extra.textContent = "";
    Object.keys(extra.dataset).forEach(function (k) { delete extra.dataset[k]; });
    if (!h) return;
    // the value views hold the weights; a change is the difference of two steps' (in float32, as drawn)
    var n = MODES.length, v = valueAt(cur.i * n, h), p = valueAt(Math.max(0, cur.i - 1) * n, h),
        f = valueAt(0, h), got = { value: v };
    if (v === null || p === null || f === null) { extra.textContent = "step " + H.steps[cur.i] + ": loading..."; return; }
    got.previous = Math.fround(v - p);
    got.first = Math.fround(v - f);
    extra.dataset.value = fmt(got.value);
    extra.dataset.change = fmt(got.previous);
    extra.textContent = "step " + H.steps[cur.i] + "  value " + fmt(got.value) + "\nchange   " +
      fmt(got.previous) + " since previous, " + fmt(got.first) + " since first";
  }
  ["drawLabels", "redraw"].forEach(function (name) {   // called on every pointer move and values' arrival
    var orig = app[name];
    app[name] = function () { var r = orig.apply(this, arguments); update(); return r; };
  });

  /* per layer: mean kernel norm (line) and share of dead channels (bars) over steps; a click jumps */
  Object.keys(H.series).forEach(function (layer) {
    var d = H.series[layer], c = el("canvas"), n = d.mean_norm.length, w = 300, hh = 36;
    c.width = w; c.height = hh; c.title = safe(layer) + ": mean kernel norm (line), dead channels (bars)";
    var ctx = c.getContext("2d"), hi = Math.max.apply(null, d.mean_norm.filter(isFinite)) || 1, x = function (i) { return n > 1 ? i * (w - 4) / (n - 1) + 2 : w / 2; };
    ctx.fillStyle = "#a33";
    d.dead_share.forEach(function (s, i) { ctx.fillRect(x(i) - 1, hh * (1 - s), 2, hh * s); });
    ctx.strokeStyle = "#8bd"; ctx.beginPath();
    d.mean_norm.forEach(function (v, i) { ctx[i ? "lineTo" : "moveTo"](x(i), hh - 2 - (hh - 4) * v / hi); });
    ctx.stroke();
    c.addEventListener("click", function (ev) {
      var r = c.getBoundingClientRect();
      go(Math.round((ev.clientX - r.left) / r.width * (n - 1)));
    });
    var clip = d.clipped && d.clipped[n - 1] ? ", beyond the range " + Math.round(100 * d.clipped[n - 1]) + "%" : "";
    if (d.act_dead_share && d.act_dead_share[n - 1] !== null && d.act_dead_share[n - 1] !== undefined)
      clip += ", silent on the probes " + Math.round(100 * d.act_dead_share[n - 1]) + "%";
    curves.appendChild(el("div", safe(layer) + "  norm " + fmt(d.mean_norm[n - 1]) + ", dead " +
                          Math.round(100 * d.dead_share[n - 1]) + "%" + clip, "note"));
    curves.appendChild(c);
  });

  window.montage.history = { go: go, current: function () { return { step: H.steps[cur.i], mode: MODES[cur.mode] }; } };
  var start = function () { go(H.steps.length - 1); };
  if (window.montage.ready) start(); else {
    var prev = app.onOpen;
    app.onOpen = function () { if (prev) prev(); start(); };
  }
})(window.montage);
