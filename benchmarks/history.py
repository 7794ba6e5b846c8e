"""Training history (montage.Recorder): what a snapshot costs the training loop, and on disk."""

import os
import time

import numpy as np

GB = 1e9


def _du(folder):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(folder) for f in files)


def _small_cnn(side):
    """VGG16's first block (3 -> 64 -> 64 channels, 3 x 3) on small pictures, then a classifier."""
    import keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((side, side, 3)),
                          keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="block1_conv1"),
                          keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="block1_conv2"),
                          keras.layers.MaxPooling2D(4), keras.layers.Flatten(), keras.layers.Dense(10)])
    m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def overhead(work, quick):
    """Seconds the loop waits in ``snapshot`` (the weights' copy, and a step still being written)
    against one epoch of the same model in the same run, and the epochs' slowdown while steps are
    drawn and written on the background thread (two cores shared with training)."""
    import keras

    import montage

    from .suite import _target, row

    n, side, epochs = (256, 32, 3) if quick else (4096, 32, 5)
    rng = np.random.default_rng(0)
    x, y = rng.random((n, side, side, 3), np.float32), rng.integers(0, 10, n)
    times = {"plain": [], "recorded": [], "blocked": []}

    class Timing(keras.callbacks.Callback):
        def __init__(self, key, rec=None):
            super().__init__()
            self.key, self.rec = key, rec

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times[self.key].append(time.perf_counter() - self.t)
            if self.rec is not None:
                t = time.perf_counter()
                self.rec.snapshot(epoch + 1)
                times["blocked"].append(time.perf_counter() - t)

    for key in ("plain", "recorded"):
        m = _small_cnn(side)
        m.fit(x[:64], y[:64], epochs=1, verbose=0)   # compile and warm up outside the timings
        if key == "plain":
            m.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=[Timing(key)])
            continue
        with montage.Recorder(work / "h", m, quiet=True) as rec:
            rec.snapshot(0)
            rec._wait()
            m.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=[Timing(key, rec)])
    plain, recorded, block = (float(np.median(times[k])) for k in ("plain", "recorded", "blocked"))
    rows = [
        row(f"history: training loop blocked per snapshot (VGG16's block1, {n} images of {side}px an epoch)",
            block, "s", plain, "one epoch of the same model, same run", plain / block, "<= 5% of an epoch",
            _target(quick, block / plain <= 0.05)),
        row("history: an epoch while the previous step is drawn and written in the background", recorded, "s",
            plain, "an epoch without the recorder", plain / recorded, "", None),
    ]
    return rows, times


def vgg16_bytes(work, quick):
    """Bytes on disk per recorded step for VGG16's conv layers at the defaults (3 views a step),
    the second step's weights moved by noise of 1% of each layer's spread, as a training step moves
    every weight (identical weights would give flat change views that compress to nothing)."""
    import keras

    import montage

    from .suite import row

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)   # the architecture; no download
    layers = ["block1_conv1", "block1_conv2"] if quick else None
    rng = np.random.default_rng(0)
    with montage.Recorder(work / "v", model, layers=layers, quiet=True) as rec:
        rec.snapshot(0)
        rec._wait()
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D):
                k = np.asarray(layer.kernel)
                layer.kernel.assign(k + rng.normal(0, 0.01 * k.std(), k.shape).astype(k.dtype))
        t = time.perf_counter()
        rec.snapshot(1)
        rec._wait()
        step_s = time.perf_counter() - t
    size = _du(work / "v" / "steps" / "00000001")
    values = sum(os.path.getsize(p) for p in (work / "v" / "steps" / "00000001" / "layers").glob("*.js"))
    what = "block1" if quick else "all 13 conv layers"
    rows = [row(f"history: bytes per step, VGG16 {what} at defaults (kernels + 2 change views, png tiles, "
                f"{values / 1e6:.0f} MB of it the readout's weights)", size / 1e6, "MB", None, None, None, "", None),
            row(f"history: one VGG16 step ({what}) drawn and written (background thread)", step_s, "s",
                None, None, None, "", None)]
    return rows, {"bytes": size, "values_bytes": values, "seconds": step_s}


def history(work, quick):
    work.mkdir(parents=True)
    r1, d1 = overhead(work, quick)
    r2, d2 = vgg16_bytes(work, quick)
    return r1 + r2, {"overhead": d1, "vgg16": d2}
