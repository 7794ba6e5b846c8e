"""Receptive fields against the footprint of each unit: the input pixels whose change changes it."""

import numpy as np
import pytest

from montage.errors import MontageError
from montage.receptive import field


def _footprints(model, layer, side, channels=1):
    """Bounding box of the input pixels that change each unit of ``layer`` (a linear model):
    {(y, x): [top, left, bottom, right]}, measured by perturbing one input pixel at a time."""
    import keras

    sub = keras.Model(model.inputs, model.get_layer(layer).output) if "/" not in layer else layer
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, side, side, channels)).astype("float32")
    batch = np.repeat(base, side * side + 1, axis=0)
    for p in range(side * side):
        batch[p + 1, p // side, p % side, :] += 1.0
    out = np.asarray(sub.predict(batch, verbose=0), np.float64)
    changed = np.abs(out[1:] - out[:1]).max(axis=-1) > 1e-5      # (pixel, H, W)
    boxes = {}
    for y in range(out.shape[1]):
        for x in range(out.shape[2]):
            pix = np.flatnonzero(changed[:, y, x])
            ys, xs = pix // side, pix % side
            boxes[(y, x)] = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1] if len(pix) else None
    return boxes


def _probe_model(side):
    """Linear layers with strides, dilation, same/valid padding, pooling, padding, a branch."""
    import keras

    keras.utils.set_random_seed(1)
    L = keras.layers
    i = keras.Input((side, side, 1))
    a = L.Conv2D(3, 3, strides=2, padding="same", name="s2same")(i)
    b = L.Conv2D(3, (3, 2), dilation_rate=2, padding="valid", name="dil")(a)
    c = L.AveragePooling2D(2, padding="same", name="pool")(b)
    d = L.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(c)
    e = L.Conv2D(2, 2, strides=(1, 2), padding="valid", name="after_pad")(d)
    # a branch: a 1x1 path and a 3x3 path meet in an Add
    f1 = L.Conv2D(2, 1, name="one")(b)
    f2 = L.Conv2D(2, 3, padding="same", name="three")(b)
    g = L.Add(name="meet")([f1, f2])
    h = L.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(g)
    return keras.Model(i, [e, h])


@pytest.mark.parametrize("layer", ["s2same", "dil", "pool", "pad", "after_pad", "meet", "dw"])
def test_fields_equal_the_footprint_of_every_unit(layer):
    side = 23                      # odd: 'same' padding splits unevenly
    model = _probe_model(side)
    f = field(model, layer, (side, side))
    got = _footprints(model, layer, side)
    assert (f.axes[0].n, f.axes[1].n) == tuple(model.get_layer(layer).output.shape[1:3])
    for (y, x), want in got.items():
        box = f.box(y, x)
        clipped = [max(box[0], 0), max(box[1], 0), min(box[2], side), min(box[3], side)]
        if want is None:         # a unit that sees only a padding layer's own zeros sees no pixel
            assert layer in ("pad", "after_pad"), (y, x)
            continue
        assert clipped == want, (y, x, box, want)


def test_padding_units_lie_outside_the_image():
    model = _probe_model(23)
    f = field(model, "pad", (23, 23))
    top = f.box(0, 5)
    assert top[2] <= 0 or top[0] < 0       # the first row of the padding sees above the image


def test_nested_models_are_followed_inside():
    import keras

    keras.utils.set_random_seed(2)
    inner_in = keras.Input((None, None, 2))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 3, strides=2, name="in_conv")(inner_in), name="base")
    i = keras.Input((17, 17, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="pre")(i)
    model = keras.Model(i, keras.layers.Conv2D(1, 2, name="post")(inner(x)))
    f = field(model, "base/in_conv", (17, 17))
    assert [(a.jump, a.start, a.size, a.n) for a in f.axes] == [(2, -1, 5, 8)] * 2
    g = field(model, "post", (17, 17))
    assert [(a.jump, a.size, a.n) for a in g.axes] == [(2, 7, 7)] * 2


def test_layers_without_a_field_are_named():
    import keras

    i = keras.Input((8, 8, 1))
    x = keras.layers.UpSampling2D(name="up")(i)
    model = keras.Model(i, keras.layers.Conv2D(1, 3, name="c")(x))
    with pytest.raises(MontageError, match="'up' \\(UpSampling2D\\)"):
        field(model, "c", (8, 8))
