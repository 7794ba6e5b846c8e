"""Training history: the kernels of a model recorded at steps of its training, for a step slider.

:class:`Recorder` copies the chosen layers' kernels on the training thread (the only wait the loop
sees) and draws, writes and publishes each step on one background thread (see
:mod:`montage.render_history` and :mod:`montage.history_store`).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import history_store as store
from ._lock import Lock
from ._output import check_out, disk_full
from ._version import __version__
from .colormap import colormap_lut
from .console import note
from .errors import MontageError
from .graph import find_layers, kernels, slug
from .kernel_cells import kernel_cells, kernel_grid
from .manifest import header
from .models import load_kernels
from .options import FiltersOptions
from .paths import shown
from .recorder_keras import callback
from .recorder_probe import Probe
from .render_history import DIFF_CMAP, channel_norms, draw_step, layer_range, stats
from .style import Style

RANGES = ("steps", "step")   # one range for every step (the first step's), or each step its own


class Recorder:
    """Record a model's kernels at steps of its training into ``out``: a page with a step slider.

    Parameters
    ----------
    out : path
        The history's folder: new or empty, or a history of the same model to continue.
    model : keras.Model or torch.nn.Module (or any model ``montage.filters`` takes)
        Read again at each :meth:`snapshot`.
    layers : str or list of str, optional
        Conv layers (default every one, as ``filters --layer all``).
    images : path or list of paths, optional
        A few fixed probe pictures: at each step, each layer's activations on them as per-channel
        statistics (mean, max, channels dead on every picture). Their feature maps are not drawn.
    probe : dict, optional
        How the probe pictures are fed: ``size``, ``preprocess``, ``mean``, ``std``, ``bgr``,
        ``resize`` as for ``montage.features``.
    range : {'steps', 'step'}
        'steps' (default): every step drawn with the first step's range, so that a brightness means
        the same weight on every step; 'step': each step with its own, as ``montage.filters``.
    on_full_disk : {'skip', 'stop'}
        A step that does not fit on the disk is skipped with a note (default), or raises.
    **options
        ``montage.filters``' options (``cell``, ``normalize``, ``clip``, ``cmap``, ``quiet``, ...).
    """

    def __init__(self, out, model, layers=None, images=None, range="steps", on_full_disk="skip", probe=None,
                 **options):
        if range not in RANGES or on_full_disk not in ("skip", "stop"):
            raise MontageError(f"range {range!r} / on_full_disk {on_full_disk!r}: choose range 'steps' or "
                               "'step', on_full_disk 'skip' or 'stop'")
        options.setdefault("png", False)   # a flat PNG per step and layer would double the bytes
        opts = FiltersOptions(model=model, layers=layers or ["all"], out=out, **options)
        if opts.rgb or opts.tiff or opts.png:
            raise MontageError("rgb, tiff and png are filters' options a history does not draw: leave them out")
        self.opts, self.model, self.range, self.on_full_disk = opts, model, range, on_full_disk
        self.out = Path(os.path.abspath(out))
        if not (self.out / "history.json").is_file():   # a history to continue is checked below
            check_out(out)
        self.loaded = load_kernels(model, opts.weights, opts.seed, opts.unsafe)
        chosen = self._capture()
        self.identity = {"model": self.loaded.name,
                         "layers": [[k.name, [int(d) for d in k.stored_shape]] for k in chosen]}
        self.probe = None
        if images is not None:
            nodes = [n.name for n in find_layers(self.loaded.model, opts.layers) if kernels(n)]
            self.probe = Probe(model, images, nodes, probe)
            self.node_of = {k.name: n for n in nodes for k in kernels(_node(self.loaded.model, n))}
        self.style = Style(opts)
        self.dstyle = Style(dataclasses.replace(opts, cmap=DIFF_CMAP, normalize="symmetric"))
        self.diff_lut = colormap_lut(DIFF_CMAP).tolist()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.lock = Lock(self.out).__enter__()
        try:
            self.state = store.check_folder(self.out, self.identity)
            self.out.mkdir(exist_ok=True)
            store.clear_partials(self.out)
            done = store.recorded(self.out)
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        self.steps = [s["step"] for s in done]
        if not done:   # a run killed before its first step was complete: its first-step ranges go too
            self.state = None
        self.prev = self.first = None
        if done:   # continuing: the previous and first steps' cells come back from their values
            self.first = self._cells_of(done[0])
            self.prev = self._cells_of(done[-1])
            store.rebuild_page(self.out, self.state, self.diff_lut)   # a killed run may have left it behind
        self.pool, self.pending, self.skipped = ThreadPoolExecutor(1), None, []

    # ---- the training thread ----
    def _capture(self, model=None):
        """The chosen kernel blocks with their weights copied now (the training may go on after)."""
        if model is not None:
            loaded = load_kernels(model)
        else:   # a Keras model's layers read its variables; a torch module is wrapped anew
            loaded = self.loaded if self.loaded.reader != "torch" else load_kernels(self.model)
        chosen = [k for node in find_layers(loaded.model, self.opts.layers) for k in kernels(node)]
        chosen = [dataclasses.replace(k, weights=np.array(k.weights, np.float32, copy=True)) for k in chosen
                  if k.weights.size]
        if not chosen:
            raise MontageError(f"model {self.loaded.name!r} has no kernels in layers {self.opts.layers}")
        return chosen

    def snapshot(self, step, model=None, label=None):
        """Record the kernels as they are now, as step ``step`` (a whole number above the last one).

        Returns once the weights are copied; drawing and writing go on in the background (the
        next snapshot, or :meth:`close`, waits for them). ``model``: another model of the same
        architecture to read instead (a checkpoint); ``label``: what the page calls the step.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 0 <= step <= store.MAX_STEP:
            raise MontageError(f"step {step!r} should be a whole number from 0 to {store.MAX_STEP}")
        self._wait()
        if self.steps and step <= self.steps[-1]:
            raise MontageError(f"step {step} is already recorded in {shown(self.out)} (the last is "
                               f"{self.steps[-1]}): give a later step")
        if self.pool is None:
            raise MontageError("this recorder is closed: make a new one to continue the history")
        chosen = self._capture(model)
        if [[k.name, [int(d) for d in k.stored_shape]] for k in chosen] != self.identity["layers"]:
            what = shown(label) if label is not None else "the model"
            raise MontageError(f"{what} is another architecture than the history's (other layers or kernel "
                               "shapes): record it into another folder")
        acts = self.probe.stats() if self.probe is not None and model is None else None
        self.steps.append(int(step))
        self.pending = self.pool.submit(self._record, int(step), chosen, label, acts)

    def _wait(self):
        """Wait for the step being written; raise what it raised (a full disk only when asked)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    # ---- the background thread ----
    def _cells(self, k):
        grid, kind = kernel_grid(k, False, self.opts.cell, self.opts.gap)
        return kernel_cells(k, kind, "rgb")

    def _cells_of(self, step):
        """A recorded step's cells per layer, from its values files."""
        view = step["views"][0]
        return {b["layer"]: store.read_values(self.out / b["values"]) for b in view["blocks"]}

    def _first_state(self, chosen):
        ranges = {k.name: [np.asarray(r, np.float64) for r in layer_range(k, self.opts)] for k in chosen}
        self.state = {"montage": __version__, "identity": self.identity,
                      "head": header("history", self.loaded, self.style), "range": self.range,
                      "options": {f: getattr(self.opts, f) for f in ("cell", "gap", "normalize", "clip", "cmap",
                                                                       "tile_format")},
                      "ranges": ranges if self.range == "steps" else None,
                      "median_norm": {k.name: float(np.nan_to_num(np.median(channel_norms(k)), posinf=0.0))
                                      for k in chosen}}
        store.write_json(self.out / "history.json", self.state)

    def _record(self, step, chosen, label=None, acts=None):
        tmp = None
        try:
            if self.state is None:
                self._first_state(chosen)
            fixed = self.state.get("ranges")
            cells = {k.name: self._cells(k) for k in chosen}
            blocks = [(f"{i:02d}_{slug(k.name)}", k, cells[k.name], (self.prev or {}).get(k.name),
                       (self.first or {}).get(k.name)) for i, k in enumerate(chosen)]
            tmp = store.step_folder(self.out, step)
            views = draw_step(tmp, f"steps/{step:08d}", blocks, self.opts, (self.style, self.dstyle), fixed)
            st = {k.name: stats(k, self.state["median_norm"][k.name], cells[k.name], (fixed or {}).get(k.name))
                  for k in chosen}
            for name in st if acts else ():
                st[name].update(acts[self.node_of[name]])
            store.publish(tmp, self.out, step, {"step": step, "label": None if label is None else str(label), "views": views, "stats": st})
            tmp = None
            self.prev, self.first = cells, self.first or cells
        except BaseException as e:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            if not disk_full(e) or self.on_full_disk == "stop":
                self.steps.remove(step)
                raise
            self.steps.remove(step)
            self.skipped.append(step)
            note(f"step {step} skipped: the disk is full in {shown(self.out)} ({e}); earlier steps are "
                 "kept, training goes on", self.opts.quiet)
            return
        try:   # the step is safe in steps/; a page left behind is rebuilt by the next step or recorder
            store.rebuild_page(self.out, self.state, self.diff_lut)
        except OSError as e:
            if not disk_full(e) or self.on_full_disk == "stop":
                raise
            note(f"the page could not be updated after step {step} (the disk is full: {e}); the step is "
                 "kept", self.opts.quiet)

    # ---- life cycle ----
    def close(self):
        """Wait for the last step to be written, then let go of the folder."""
        if self.pool is None:
            return
        try:
            self._wait()
        finally:
            self.pool.shutdown(wait=True)
            self.pool = None
            self.lock.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def keras_callback(self, every=1, every_batches=None):
        """A Keras callback: a snapshot before training (step 0, if none yet), then every ``every``
        epochs (step = epochs done) or every ``every_batches`` batches (step = batches done)."""
        return callback(self, every, every_batches)

    def __repr__(self):
        return f"<montage Recorder of {self.loaded.name}: {len(self.steps)} steps -> {self.out / 'index.html'}>"


def _node(model, name):
    return find_layers(model, [name])[0]
