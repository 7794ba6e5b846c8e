/* Readout values: loaded as scripts when a block is shown (a page on file:// cannot fetch),
 * decoded from base64 float32, the least recently used evicted past CACHE_BYTES. */
(function (app) {
  "use strict";
  var now = app.now, state = app.state;

  /* ---- cell values (kernel weights, activations), loaded on demand ----
   * From NAME.js, NAME.1.js, ...: scripts, since a page on file:// cannot fetch. Each part
   * calls montageValues(key, shape, parts, i, base64 of little-endian float32[, encoding]). Part 0 says how
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
      if (v) { v.failed = true; app.redraw(); }
    };
  }
  function decode(b64, into, offset) {
    if (Uint8Array.fromBase64) { into.set(Uint8Array.fromBase64(b64), offset); return; }
    var bin = atob(b64), n = bin.length;
    for (var i = 0; i < n; i++) into[offset + i] = bin.charCodeAt(i);
  }
  /* enc {zeros: "bits", bytes: N}: a bit per value (1: stored; little-endian bit order), padded
   * to whole float32s, then the stored values; the rest are +0 (mostly-zero post-ReLU maps) */
  function expand(raw, n) {
    var mask = Math.ceil(n / 8), off = mask + (4 - mask % 4) % 4;
    var vals = new Float32Array(raw.buffer, off, (raw.length - off) / 4), out = new Float32Array(n);
    for (var k = 0, j = 0; k < n; k++) if ((raw[k >> 3] >> (k & 7)) & 1) out[k] = vals[j++];
    return out;
  }
  window.montageValues = function (key, shape, parts, i, b64, enc) {
    var v = state.values[key];
    if (!v || v.done) return;
    if (i === 0) {
      v.count = shape.reduce(function (a, b) { return a * b; }, 1);
      v.raw = enc ? new Uint8Array(enc.bytes) : null;
      v.data = enc ? null : new Float32Array(v.count);
      v.shape = shape; v.parts = parts; v.partBytes = b64.length / 4 * 3;
      for (var j = 1; j < parts; j++) addScript(partUrl(key, j), valuesFailed(key));
    }
    decode(b64, v.raw || new Uint8Array(v.data.buffer), i * v.partBytes);
    v.got++;
    if (v.got === v.parts) {
      if (v.raw) { v.data = expand(v.raw, v.count); v.raw = null; }
      v.done = true;
      evict(key);
    }
    app.redraw();
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
    if (waited < 250) { setTimeout(app.redraw, 260 - waited); return ""; }
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

  app.addScript = addScript;
  app.loadValues = loadValues;
  app.loading = loading;
  app.kernelValues = kernelValues;
})(window.montage);
