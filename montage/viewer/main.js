/* Keyboard (arrows pan, +/- zoom, 0 home, f full page), and start-up: the skipped-files
 * note, the lists, the first view, the hash. */
(function (app) {
  "use strict";
  var $ = app.$, M = app.manifest, OSD = app.OSD, safe = app.safe, drawReadout = app.drawReadout,
      goHome = app.goHome, jumpTo = app.jumpTo, parseHash = app.parseHash, setView = app.setView,
      viewer = app.viewer, buildBlocks = app.buildBlocks, buildViews = app.buildViews, step = app.step;

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
  app.onOpen = function () {
    var q = parseHash();
    if (!(q.layer && jumpTo(q))) goHome(true);
    window.montage.ready = true;
  };
  if (app.opened) app.onOpen();
})(window.montage);
