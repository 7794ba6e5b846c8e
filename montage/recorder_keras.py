"""The Keras callback of :class:`montage.recorder.Recorder` (Keras imported only here)."""

from __future__ import annotations

import numbers

from .errors import MontageError


def _every(value, name, optional=False):
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise MontageError(f"{name} {value!r} should be a whole number of at least 1")
    return int(value)


def callback(recorder, every=1, every_batches=None):
    """A ``keras.callbacks.Callback`` that snapshots ``recorder``: step 0 before training (when the
    history is empty), then every ``every`` epochs (step = epochs done) or, with ``every_batches``,
    every that many batches (step = batches done, counted across epochs and fits)."""
    import keras

    every, every_batches = _every(every, "every"), _every(every_batches, "every_batches", optional=True)

    class MontageHistory(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if not recorder.steps:
                recorder.snapshot(0)
            if hasattr(self, "base"):
                del self.base
            self.batches = recorder.steps[-1] if every_batches else 0

        def on_epoch_begin(self, epoch, logs=None):
            if not hasattr(self, "base"):   # a fit that counts epochs from 0 again continues after the last step
                last = recorder.steps[-1] if recorder.steps else 0
                self.base = last - epoch if epoch < last else 0

        def on_train_batch_end(self, batch, logs=None):
            if every_batches:
                self.batches += 1
                if self.batches % every_batches == 0:
                    recorder.snapshot(self.batches)

        def on_epoch_end(self, epoch, logs=None):
            if not every_batches and (epoch + 1) % every == 0:
                recorder.snapshot(self.base + epoch + 1)

        def on_train_end(self, logs=None):
            recorder._wait()   # the last step written (and its error raised) before fit returns

    return MontageHistory()
