"""Examples' pictures: what drawing and writing every channel's patches costs beside the pass.

Targets (issue 26): with pictures, in both score modes, at least 0.8x a bare predict of the same
outputs (VGG16, 256 images, batches of 32), and at most 1.5x the pass alone (``shard=(0, 1)``:
top-k lists, no pictures) on a torchvision ResNet-18 over 48 images.
"""

from .suite import _loaded, _target, keras_predict, make_images, row
from .timing import measure, measure_into


def _runs(loaded, folder, work, bs, layers, repeat=1):
    """Seconds of the pass alone and of the whole run with pictures, for each score mode (median
    of ``repeat``, each run into a fresh folder)."""
    import montage

    common = dict(batch_size=bs, quiet=True, layers=layers)
    return {name: measure_into(lambda out, extra=extra: montage.examples(loaded, [folder], out, **common, **extra),
                               work / "out", repeat)
            for name, extra in [("pass", {"shard": (0, 1)}), ("max", {"score": "max"}),
                                ("mean", {"score": "mean"})]}


def _bare(loaded, folder, bs, layers):
    """A bare predict of the same outputs over the same batches, after one untimed batch."""
    from montage.images import batches, find_images
    from montage.models import prepare

    fwd = prepare(loaded, layers)
    xs = [b.x for b in batches(find_images([folder]), fwd.input_shape[0], bs, fwd.loaded)]
    predict = keras_predict(fwd)
    predict(xs[0])
    return measure(lambda: [predict(x) for x in xs], repeat=1, warmup=0)


def examples_pictures(work, quick):
    import montage
    from montage.models import load_model

    rows, details = [], {}
    n, bs = (4, 4) if quick else (256, 32)
    layers = ["block1_conv1", "block1_conv2"] if quick else None   # quick: the code runs, nothing is measured
    folder = make_images(work / "vgg-in", n, seed=7)
    loaded = _loaded()
    montage.examples(loaded, [make_images(work / "warm", 2, seed=3)], work / "warm-out", quiet=True, layers=layers)
    bare = _bare(loaded, folder, bs, layers)
    runs = _runs(loaded, folder, work / "vgg", bs, layers)
    for mode in ("max", "mean"):
        ratio = bare["median_s"] / runs[mode]["median_s"]
        rows.append(row(f"examples with pictures (--score {mode}), VGG16, {n} images (batches of {bs})",
                        n / runs[mode]["median_s"], "img/s", n / bare["median_s"],
                        "bare model.predict of the same outputs", ratio, ">= 0.8x", _target(quick, ratio >= 0.8)))
    details["vgg16"] = {"bare": bare, **runs}

    m = 4 if quick else 48
    layers = ["conv1", "layer1.0.conv1"] if quick else None
    folder = make_images(work / "r18-in", m, seed=7)
    r18 = load_model("torchvision:resnet18", "random")
    montage.examples(r18, [make_images(work / "warm", 2, seed=3)], work / "warm-r18", quiet=True, layers=layers)
    runs = _runs(r18, folder, work / "r18", 32, layers, 1 if quick else 3)   # seconds each: the median of 3
    for mode in ("max", "mean"):
        times = runs[mode]["median_s"] / runs["pass"]["median_s"]
        rows.append(row(f"examples with pictures (--score {mode}), torchvision ResNet-18, {m} images: end to end "
                        "against the pass alone", runs[mode]["median_s"], "s", runs["pass"]["median_s"],
                        "the same pass without pictures (--shard 0/1)", 1 / times, "<= 1.5x the pass",
                        _target(quick, times <= 1.5)))
    details["resnet18"] = runs
    return rows, details
