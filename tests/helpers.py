"""Shared test helpers: small models, reading outputs back."""

import hashlib
import json
import math
import os
import subprocess
import sys
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


def hooked_outputs(module, x, names):
    """A torch module's named submodules' outputs for ``x`` (NCHW numpy), taken by the test's own
    forward hooks (the first call of each, as montage's)."""
    import torch

    mods, got = dict(module.named_modules()), {}

    def keep(name):
        def hook(mod, args, output):    # returns None: a hook's return value would replace the output
            got.setdefault(name, output.detach().numpy().copy())
        return hook

    hooks = [mods[n].register_forward_hook(keep(n)) for n in names]
    with torch.no_grad():
        module(torch.from_numpy(np.ascontiguousarray(x)))
    for h in hooks:
        h.remove()
    return [got[n] for n in names]


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
            a = im.numpy().reshape(im.height, im.width, im.bands)   # a 1x1 grey tile comes back 0-d
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


def kinds_model(seed=0):
    """Every 2-D conv kind in one functional model, with a nested submodel, a Dense head and
    random biases: (model, the nested model)."""
    import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inner_in = keras.Input((10, 10, 8))
    y = L.Conv2D(6, 3, padding="same", name="inner_conv")(inner_in)
    y = L.DepthwiseConv2D(3, padding="same", name="inner_dw")(y)
    inner = keras.Model(inner_in, y, name="base")
    i = keras.Input((20, 20, 4), name="image")
    outs = [L.Conv2D(6, (1, 3), name="c13")(i),
            L.Conv2D(8, 3, groups=2, padding="same", name="grouped")(i),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(i),
            L.SeparableConv2D(5, 3, padding="same", name="sep")(i),
            L.Conv2DTranspose(3, 3, strides=2, name="tr")(i),
            L.Conv2D(7, (7, 1), dilation_rate=2, name="tall")(i)]
    x = L.Conv2D(8, 1, strides=2, name="pw")(i)
    x = inner(x)
    x = L.Conv2D(3, 3, name="post")(x)
    outs.append(L.Dense(2, name="head")(L.GlobalAveragePooling2D()(x)))
    model = keras.Model(i, outs, name="kinds")
    rng = np.random.default_rng(seed)
    for layer in model.layers + inner.layers:
        w = layer.get_weights()
        if w:
            layer.set_weights(w[:-1] + [rng.normal(size=w[-1].shape).astype("float32")])
    return model, inner


def run(*args, cwd=None, env=None, preexec_fn=None, timeout=300):
    """``montage ARGS`` in a fresh process; arguments may be bytes (file names that are not UTF-8)."""
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "montage", *args], cwd=cwd, env=e, capture_output=True,
                          timeout=timeout, preexec_fn=preexec_fn)


def one_line(r, *needles, code=2):
    """Assert exit ``code`` and a single ``montage:`` line on stderr holding every needle."""
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == code, (r.returncode, err[-3000:])
    lines = [x for x in err.replace("\r", "\n").splitlines() if x.strip() and "%|" not in x]
    assert len(lines) == 1 and lines[0].startswith("montage: "), err[-3000:]
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def snapshot(folder):
    """Every file under ``folder`` (relative path -> sha256); symlinks by target."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, folder)
            out[rel] = ("link", os.readlink(p)) if os.path.islink(p) else \
                hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def siblings(folder):
    """Names in ``folder`` that start with a dot: montage's temporary and lock files."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))
