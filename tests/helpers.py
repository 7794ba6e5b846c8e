"""Shared test helpers: small models, reading outputs back."""

import json
import math
from pathlib import Path

import numpy as np


def small_model(seed=0, with_lambda=False, side=16):
    """A tiny functional conv net: 3 -> 5 -> 7 channels, non-square grids, plus a pool."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((side, side, 3), name="image")
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = keras.layers.Conv2D(7, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(4, (1, 2), padding="same", name="conv_c")(x)
    if with_lambda:
        x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    model = keras.Model(inp, x, name="small")
    # Biases too, so that no test passes by accident on zeros.
    for layer in model.layers:
        if layer.get_weights():
            k, b = layer.get_weights()
            layer.set_weights([k, np.random.default_rng(seed).normal(size=b.shape).astype("float32")])
    return model


def read_manifest(out):
    return json.loads((Path(out) / "manifest.json").read_text())


def read_dzi_level(out, tile):
    """The full-resolution level of a DZI, stitched from its tiles (overlap removed)."""
    import pyvips

    dzi = tile["dzi"]
    w, h = int(dzi["Size"]["Width"]), int(dzi["Size"]["Height"])
    ts, ov, fmt = int(dzi["TileSize"]), int(dzi["Overlap"]), dzi["Format"]
    level = math.ceil(math.log2(max(w, h)))
    folder = Path(out) / dzi["Url"] / str(level)
    canvas = None
    for row in range(math.ceil(h / ts)):
        for col in range(math.ceil(w / ts)):
            im = pyvips.Image.new_from_file(str(folder / f"{col}_{row}.{fmt}"))
            a = im.numpy()
            if a.ndim == 2:
                a = a[:, :, None]
            if canvas is None:
                canvas = np.zeros((h, w, a.shape[2]), np.uint8)
            oy, ox = (ov if row else 0), (ov if col else 0)
            th, tw = min(ts, h - row * ts), min(ts, w - col * ts)
            canvas[row * ts:row * ts + th, col * ts:col * ts + tw] = a[oy:oy + th, ox:ox + tw]
    return canvas


def write_image(path, array):
    """Save a numpy image (H, W[, bands]) with libvips; the format follows the suffix."""
    import pyvips

    a = np.ascontiguousarray(array)
    im = pyvips.Image.new_from_array(a)
    if a.dtype == np.uint16:
        im = im.copy(interpretation="rgb16" if a.ndim == 3 and a.shape[2] >= 3 else "grey16")
    im.write_to_file(str(path))
    return path


def random_images(folder, n, side=40, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_image(folder / f"img{i:02d}.png", rng.integers(0, 256, (side, side + 3, 3), np.uint8))
            for i in range(n)]
