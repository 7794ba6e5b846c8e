"""The approaches montage is measured against, re-expressed faithfully (not copied).

- ``tutorial_filters``: the tutorial's loop — one matplotlib subplot per kernel, grey, min-max
  normalised over the layer, axes ticks off — scaled up to the whole layer and saved as PNG.
- ``keract_features``: one figure per layer, one subplot per channel, as keract's
  ``display_activations`` does, saved as PNG.
- ``numpy_tile``: the same canvas montage draws, by reshape/transpose/repeat in numpy.
- ``numpy_canvas_dzsave``: every layer's numpy canvas pasted into one big image, one dzsave.

Run as a script for whole-process timings: ``python -m benchmarks.baselines tutorial-filters ...``.
"""

import argparse
import math
import os
import time
import sys

import numpy as np


def tutorial_filters(kernel, path, n_filters=None, n_channels=None, cell_px=25, dpi=100):
    """One subplot per (filter, channel) kernel, as the tutorial plots its first 6 x 3."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    f_min, f_max = kernel.min(), kernel.max()
    filters = (kernel - f_min) / (f_max - f_min)
    n_filters = n_filters or kernel.shape[3]
    n_channels = n_channels or kernel.shape[2]
    side_in = n_channels * cell_px / dpi, n_filters * cell_px / dpi
    fig = pyplot.figure(figsize=side_in, dpi=dpi)
    ix = 1
    for i in range(n_filters):
        f = filters[:, :, :, i]
        for j in range(n_channels):
            ax = pyplot.subplot(n_filters, n_channels, ix)
            ax.set_xticks([])
            ax.set_yticks([])
            pyplot.imshow(f[:, :, j], cmap="gray")
            ix += 1
    fig.savefig(path)
    pyplot.close(fig)


def keract_features(activations, folder, cmap="viridis"):
    """keract-style display: per layer a near-square grid of subplots, one per channel."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    for name, acts in activations.items():
        c = acts.shape[-1]
        cols = math.ceil(math.sqrt(c))
        rows = math.ceil(c / cols)
        fig, axes = pyplot.subplots(rows, cols, figsize=(12, 12))
        for i, ax in enumerate(np.ravel(axes)):
            ax.axis("off")
            if i < c:
                ax.imshow(acts[0, :, :, i], cmap=cmap)
        fig.suptitle(name)
        fig.savefig(f"{folder}/{name}.png")
        pyplot.close(fig)


def numpy_tile(kernel, lut, scale, gap, gap_value=255):
    """The montage filters canvas (global normalisation) with numpy array operations only."""
    kh, kw, cin, cout = kernel.shape
    lo, hi = float(kernel.min()), float(kernel.max())
    idx = np.clip(((kernel.astype(np.float64) - lo) * (256.0 / (hi - lo))).astype(np.int64), 0, 255)
    px = lut[idx]                                              # (kh, kw, cin, cout, 3)
    px = px.transpose(3, 0, 2, 1, 4)                           # (cout, kh, cin, kw, 3)
    px = np.repeat(np.repeat(px, scale, axis=1), scale, axis=3)
    full = np.full((cout, kh * scale + gap, cin, kw * scale + gap, lut.shape[1]), gap_value, np.uint8)
    full[:, :kh * scale, :, :kw * scale] = px
    h, w = cout * (kh * scale + gap) - gap, cin * (kw * scale + gap) - gap
    return np.ascontiguousarray(full.reshape(cout * (kh * scale + gap), cin * (kw * scale + gap), -1)[:h, :w])


def numpy_canvas_dzsave(kernels, lut, path, cell_px=24, gap=1):
    """Every layer at ``cell_px`` per kernel, pasted into one canvas, written with one dzsave."""
    import pyvips

    parts = [numpy_tile(k, lut, max(1, cell_px // k.shape[0]), gap) for k in kernels]
    width = sum(p.shape[1] for p in parts) + gap * (len(parts) - 1)
    height = max(p.shape[0] for p in parts)
    canvas = np.full((height, width, lut.shape[1]), 255, np.uint8)
    x = 0
    for p in parts:
        canvas[:p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + gap
    del parts
    pyvips.Image.new_from_array(canvas).dzsave(str(path), suffix=".png")
    return canvas.shape


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.baselines")
    p.add_argument("what", choices=["tutorial-filters", "keract-features", "numpy-all-dzsave", "keras-filters",
                                    "save-model", "save-onnx", "features-own"])
    p.add_argument("model", nargs="?", default="resnet50",
                   help="save-model: a keras.applications name; save-onnx: a torchvision one")
    p.add_argument("--layer", default="block1_conv2")
    p.add_argument("--n", type=int, default=None, help="filters and channels to plot (default all)")
    p.add_argument("--layers", type=int, default=None, help="first N layers (numpy-all-dzsave)")
    p.add_argument("--weights", default="hed")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    from montage.graph import conv_layers, kernel_of
    from montage.models import load_model

    if a.what == "save-model":     # random weights, offline: a model file for the file-reading benchmarks
        load_model(a.model, "random").model.save(a.out)
        return 0
    if a.what == "save-onnx":      # a torchvision model (random weights, seeded) exported to ONNX
        import torch
        import torchvision

        torch.manual_seed(0)
        module = getattr(torchvision.models, a.model)(weights=None).eval()
        torch.onnx.export(module, torch.zeros(1, 3, 224, 224), a.out, dynamo=False)
        return 0
    t0 = time.perf_counter()
    loaded = load_model("vgg16", a.weights)    # same weights and loading as montage
    model = loaded.model
    if a.what == "features-own":   # one process: Keras' import and the model build, then montage's run
        import json

        import montage

        t1 = time.perf_counter()
        montage.features(loaded, out=os.path.join(a.out, "m"), quiet=True, overwrite=True,
                         layers=[x.name for x in conv_layers(model)[: a.layers]])
        with open(os.path.join(a.out, "own.json"), "w") as f:
            json.dump({"framework_s": t1 - t0, "montage_s": time.perf_counter() - t1}, f)
        return 0
    if a.what == "keras-filters":   # montage's render, but with the model built by Keras (the old path)
        import montage

        montage.filters(loaded, "block1_conv2", a.out, quiet=True)
        return 0
    if a.what == "tutorial-filters":
        kernel = kernel_of(model.get_layer(a.layer))
        tutorial_filters(kernel, a.out, a.n, a.n)
    elif a.what == "keract-features":
        import keras

        from montage.images import read_rgb, sample_image
        from montage.preprocess import preprocess

        layers = conv_layers(model)[: a.layers]
        ext = keras.Model(model.inputs, [x.output for x in layers])
        x = preprocess(read_rgb(sample_image(), 224)[None], "caffe")
        acts = {x.name: np.asarray(o) for x, o in zip(layers, ext.predict_on_batch(x))}
        os.makedirs(a.out, exist_ok=True)
        keract_features(acts, a.out)
    else:
        from montage.colormap import colormap_lut

        kernels = [kernel_of(x) for x in conv_layers(model)[: a.layers]]
        numpy_canvas_dzsave(kernels, colormap_lut("gray"), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
