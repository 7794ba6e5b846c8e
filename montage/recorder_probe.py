"""Probe images for :class:`montage.recorder.Recorder`: each chosen layer's activations on a few
fixed pictures at every step, reduced to per-channel statistics (mean, max, dead channels).

The pictures are read and preprocessed once; each snapshot runs one forward pass of the live
model over them on the training thread (its weights must not move meanwhile), so the loop waits
for that pass too. Feature maps themselves are not drawn.
"""

from __future__ import annotations

import numpy as np

from . import images as imgs
from .errors import MontageError
from .input_options import FedOptions
from .models import load_model, prepare

PROBE_OPTIONS = ("size", "preprocess", "mean", "std", "bgr", "resize")


class Probe:
    """A forward pass over fixed pictures through the live model's layers ``names``."""

    def __init__(self, model, images, names, options=None):
        options = dict(options or {})
        unknown = set(options) - set(PROBE_OPTIONS)
        if unknown:
            raise MontageError(f"probe option(s) {', '.join(sorted(unknown))}: choose from {', '.join(PROBE_OPTIONS)}")
        feed = FedOptions(model=model, **options).feed   # features' checks of these options
        loaded = load_model(model, size=options.get("size"))
        self.fwd = prepare(loaded, names, options.get("size"), 8, feed=feed)
        self.batches = [batch.x.copy() for batch, _ in self.fwd.run(imgs.find_images(images))]
        self.names = self.fwd.names

    def stats(self):
        """Per layer: each channel's mean and max over the pictures and positions, and the dead ones
        (never above 0 on any picture: a ReLU that no longer fires)."""
        sums, maxs, count = {}, {}, {}
        for x in self.batches:
            for name, out in zip(self.names, self.fwd.maps(x)):
                a = np.asarray(out, np.float64).reshape(-1, out.shape[-1])
                sums[name] = sums.get(name, 0) + np.nansum(a, axis=0)
                count[name] = count.get(name, 0) + len(a)
                m = np.nanmax(a, axis=0)
                maxs[name] = m if name not in maxs else np.maximum(maxs[name], m)
        out = {}
        for name in self.names:
            mean, mx = sums[name] / max(1, count[name]), maxs[name]
            dead = np.flatnonzero(mx <= 0)
            out[name] = {"act_mean": _finite(mean), "act_max": _finite(mx), "act_dead": [int(i) for i in dead],
                         "act_dead_share": float(len(dead) / max(1, len(mx)))}
        return out


def _finite(a):
    return [float(np.float32(v)) if np.isfinite(v) else None for v in a]
