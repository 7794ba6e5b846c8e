"""``montage.open``: an output folder read back as the result object the API returned for it."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import MontageError
from .paths import shown
from .result import Result, _rgb, read_level


class History(Result):
    """A training history (``montage.Recorder``, ``montage history``): the manifest, its steps,
    and each step's canvases."""

    @property
    def steps(self):
        """The recorded step numbers, in order."""
        return list(self["history"]["steps"])

    def stats(self, layer, step=None):
        """Per-channel statistics of ``layer`` at ``step`` (default the last): norms, mean, dead channels."""
        i = self._step(step)
        if layer not in self["history"]["stats"][i]:
            raise MontageError(f"no layer {layer!r} here: the layers are {', '.join(self['history']['series'])}")
        return self["history"]["stats"][i][layer]

    def _step(self, step):
        steps = self.steps
        if not steps:
            raise MontageError(f"{shown(self.path)} holds no recorded step yet")
        if step is None:
            return len(steps) - 1
        if step not in steps:
            raise MontageError(f"step {step!r} is not recorded: the steps are {', '.join(map(str, steps))}")
        return steps.index(step)

    def canvas(self, layer=None, step=None, mode="value"):
        """A layer's canvas at ``step`` (default the last) as drawn: ``mode`` 'value' (the kernels),
        'previous' or 'first' (their change since the previous or the first step); uint8 (H, W, 3)
        as :meth:`montage.result.Result.canvas`."""
        modes = self["history"]["modes"]
        if mode not in modes:
            raise MontageError(f"mode {mode!r}: choose one of {', '.join(modes)}")
        view = self._view(self._step(step) * len(modes) + modes.index(mode))
        names = [b["layer"] for b in view["blocks"]]
        if layer is not None and layer not in names:
            raise MontageError(f"no layer {layer!r} here: the layers are {', '.join(names)}")
        return _rgb(read_level(self.path, view["tiles"][0 if layer is None else names.index(layer)]))

    def __repr__(self):
        steps = self.steps
        span = f"steps {steps[0]} .. {steps[-1]}" if steps else "no steps"
        return (f"<montage history of {self['model']['name']}: {len(steps)} {span}, "
                f"{len(self['history']['series'])} layers -> {self.path / 'index.html'}>")


def open_folder(path):
    """Read an output folder montage wrote (filters, features, examples, history, ...) back.

    Returns
    -------
    montage.result.Result
        As the API returned it (seconds 0); a history is a :class:`History` with ``.steps`` and
        ``.canvas(layer, step=k)``.
    """
    path = Path(path)
    try:
        with open(path / "manifest.json", encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise MontageError(f"{shown(path)} holds no manifest.json: not a folder montage wrote") from None
    except (OSError, ValueError, RecursionError) as e:
        raise MontageError(f"{shown(path / 'manifest.json')} cannot be read ({e})") from None
    if not isinstance(manifest, dict) or "montage" not in manifest or "kind" not in manifest:
        raise MontageError(f"{shown(path / 'manifest.json')} is not montage's manifest")
    return (History if manifest["kind"] == "history" else Result)(manifest, path, 0.0)
