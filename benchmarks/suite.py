"""The benchmarks. Each takes (work folder, quick) and returns (rows, details).

A row: name, value, unit, and where there is one the same-run baseline, the ratio
(oriented so that bigger is better for montage), the target and whether it was met.
"""

import itertools
import json
import sys
from pathlib import Path

import numpy as np

from .timing import measure, measure_into, process

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9


def row(name, value, unit, baseline=None, baseline_name=None, ratio=None, target="", met=None):
    return {"name": name, "value": value, "unit": unit, "baseline": baseline,
            "baseline_name": baseline_name, "ratio": ratio, "target": target, "met": met}


def _target(quick, ok):
    return None if quick else bool(ok)


def _montage(*args):
    return ["-m", "montage", *map(str, args), "--quiet", "--overwrite"]


def _loaded(weights="hed"):
    from montage.models import load_model

    return load_model("vgg16", weights)


def keras_predict(fwd):
    """A bare Keras ``predict_on_batch`` of the same outputs as ``fwd``: the baseline, what one
    writes by hand (montage's own pass reads TensorFlow's buffers in place; this copies them)."""
    import keras

    model = fwd.loaded.model
    ext = keras.Model(model.inputs, [model.get_layer(n).output for n in fwd.names])
    return ext.predict_on_batch


def filters_block1_conv2(work, quick):
    """The tutorial's figure, whole: 64 x 64 kernels of block1_conv2."""
    from montage.graph import kernel_of
    import montage

    from .baselines import tutorial_filters

    work.mkdir(parents=True)
    n = 8 if quick else None
    m_e2e = process(_montage("filters", "--layer", "block1_conv2", "--out", work / "m"),
                    repeat=1 if quick else 3, cwd=ROOT)
    t_args = ["-m", "benchmarks.baselines", "tutorial-filters", "--out", str(work / "t.png")]
    t_e2e = process(t_args + (["--n", str(n)] if n else []), cwd=ROOT)
    loaded = _loaded()
    render = measure(lambda: montage.filters(loaded, "block1_conv2", work / "r", overwrite=True, quiet=True),
                     repeat=2 if quick else 5)
    kernel = kernel_of(loaded.model.get_layer("block1_conv2"))
    plot = measure(lambda: tutorial_filters(kernel, work / "p.png", n, n), repeat=1, warmup=0)
    note = " (quick: tutorial at 8 x 8)" if quick else ""
    e2e_ratio = t_e2e["median_s"] / m_e2e["median_s"]
    r_ratio = plot["median_s"] / render["median_s"]
    rows = [
        row("filters block1_conv2 (4,096 kernels), process start to page on disk" + note, m_e2e["median_s"], "s",
            t_e2e["median_s"], "tutorial's matplotlib subplots", e2e_ratio, "<= 1.0 s and >= 60x",
            _target(quick, e2e_ratio >= 60 and m_e2e["median_s"] <= 1.0)),
        row("filters block1_conv2, peak memory" + note, m_e2e["peak_bytes"] / GB, "GB", t_e2e["peak_bytes"] / GB,
            "tutorial", t_e2e["peak_bytes"] / m_e2e["peak_bytes"], "<= 0.3 GB",
            _target(quick, m_e2e["peak_bytes"] <= 0.3 * GB)),
        row("filters block1_conv2, render stage (weights in memory to files)" + note, render["median_s"], "s",
            plot["median_s"], "matplotlib plotting + savefig", r_ratio, ">= 300x", _target(quick, r_ratio >= 300)),
    ]
    return rows, {"montage_e2e": m_e2e, "tutorial_e2e": t_e2e, "render": render, "plot": plot}


def tiling_kernel(work, quick):
    """The numba kernel alone, against memory bandwidth and numpy tiling."""
    from montage.colormap import colormap_lut, extended_lut
    from montage.layout import Grid
    from montage.canvas import allocate, paint
    from montage.kernel_cells import filter_cells

    from .baselines import numpy_tile

    cin = cout = 64 if quick else 512
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, cin, cout)).astype(np.float32)
    src = filter_cells(kernel, "filters", "rgb")
    grid = Grid(cout, cin, cin * cout, 3, 3, 2, 1)
    colors = colormap_lut("viridis")
    lut = extended_lut(colors, "magenta", "white", "white")
    out = allocate(grid.height, grid.width, 3)
    lo, hi = float(kernel.min()), float(kernel.max())
    t_kernel = measure(lambda: paint(src, grid, lo, hi, lut, out), repeat=5 if quick else 20)
    source = np.random.default_rng(1).integers(0, 255, out.shape, np.uint8)
    dest = np.empty_like(source)
    t_copy = measure(lambda: np.copyto(dest, source), repeat=5 if quick else 20)
    t_numpy = measure(lambda: numpy_tile(kernel, colors, 2, 1), repeat=2 if quick else 5)
    gbps = lambda t: out.nbytes / t["median_s"] / GB  # noqa: E731
    rows = [
        row(f"tiling kernel, {cout} x {cin} kernels -> {out.nbytes / 1e6:.0f} MB canvas", gbps(t_kernel), "GB/s",
            gbps(t_copy), "numpy copy of the same bytes", gbps(t_kernel) / gbps(t_copy), ">= 0.5x",
            _target(quick, gbps(t_kernel) / gbps(t_copy) >= 0.5)),
        row("tiling kernel vs numpy reshape/transpose tiling", gbps(t_kernel), "GB/s", gbps(t_numpy),
            "numpy tiling", gbps(t_kernel) / gbps(t_numpy), "", None),
    ]
    return rows, {"kernel": t_kernel, "copy": t_copy, "numpy": t_numpy, "bytes": out.nbytes}


def filters_all(work, quick):
    """Every kernel of every VGG16 layer in one zoomable page."""
    import json

    work.mkdir(parents=True)
    layers = ["block1_conv1", "block1_conv2"] if quick else ["all"]
    m = process(_montage("filters", "--layer", *layers, "--out", work / "m"), repeat=1 if quick else 2, cwd=ROOT)
    man = json.loads((work / "m" / "manifest.json").read_text())
    blocks = man["views"][0]["blocks"]
    kernels = sum(b["grid"]["n"] for b in blocks)
    px = sum((b["grid"]["rows"] * (b["grid"]["cell_h"] * b["grid"]["scale"] + b["grid"]["gap"]))
             * (b["grid"]["cols"] * (b["grid"]["cell_w"] * b["grid"]["scale"] + b["grid"]["gap"])) for b in blocks)
    base = process(["-m", "benchmarks.baselines", "numpy-all-dzsave", "--out", str(work / "b")]
                   + (["--layers", "2"] if quick else []), cwd=ROOT)
    from montage.graph import conv_layers

    shapes = [tuple(x.kernel.shape) for x in conv_layers(_loaded("random").model)][: 2 if quick else None]
    base_px = sum((cout * 25) * (cin * 25) for _, _, cin, cout in shapes)   # 24 px cells + 1 px gaps
    name = f"filters of every VGG16 layer ({kernels:,} kernels)" if not quick else "filters, quick: 2 layers"
    rows = [
        row(name + ", process start to page on disk", m["median_s"], "s", base["median_s"],
            "numpy canvas at 24 px + one dzsave", base["median_s"] / m["median_s"], "<= 3 s",
            _target(quick, m["median_s"] <= 3)),
        row(name + ", peak memory", m["peak_bytes"] / GB, "GB", base["peak_bytes"] / GB, "same numpy baseline",
            base["peak_bytes"] / m["peak_bytes"], "<= 1 GB", _target(quick, m["peak_bytes"] <= 1 * GB)),
        row(name + ", written megapixels/s (2 px per weight)", px / 1e6 / m["median_s"], "MP/s",
            base_px / 1e6 / base["median_s"], "baseline at 24 px cells", None, "", None),
    ]
    details = {"montage": m, "baseline": base, "pixels": px, "baseline_pixels": base_px}
    if not quick:   # the same gigapixel as the baseline, to compare pixel rates like for like
        g = process(_montage("filters", "--layer", "all", "--cell", "24", "--no-png", "--out", work / "g"), cwd=ROOT)
        details["montage_24px"] = g
        rows.append(row("filters of every VGG16 layer at --cell 24 (the gigapixel itself)", g["median_s"], "s",
                        base["median_s"], "numpy canvas at 24 px + one dzsave", base["median_s"] / g["median_s"],
                        "", None))
        rows.append(row("... its peak memory (one layer's canvas at a time)", g["peak_bytes"] / GB, "GB",
                        base["peak_bytes"] / GB, "same numpy baseline", base["peak_bytes"] / g["peak_bytes"], "", None))
    return rows, details


def features_one(work, quick):
    """One image, all 13 conv layers: each stage, and end to end against keract-style plots."""
    from montage.models import prepare
    from montage.graph import feature_layers
    from montage.images import read_rgb, sample_image
    from montage.preprocess import preprocess
    from montage.input_options import FeaturesOptions
    from montage.render_features import Atlas, AtlasWriter, draw_atlas
    from montage.style import Style
    from montage.write import write_dzi

    work.mkdir(parents=True)
    loaded = _loaded()
    layers = feature_layers(loaded.model)[: 4 if quick else None]
    fwd = prepare(loaded, [n.name for n in layers])
    path = sample_image()
    t_read = measure(lambda: preprocess(read_rgb(path, 224)[None], "caffe"), repeat=5)
    x = preprocess(read_rgb(path, 224)[None], "caffe")
    t_fwd = measure(lambda: fwd.outputs(x), repeat=5)
    outs = fwd.outputs(x)
    shapes = [o.shape[1:] for o in outs]
    opts = FeaturesOptions(out=work / "a")
    style = Style(opts)
    atlas = Atlas.layout([x.name for x in layers], shapes, None, 1)
    world = atlas.world

    class Keep(AtlasWriter):   # the painting stage alone: keep the canvas, write nothing
        def submit(self, fn, canvas, *rest):
            self.kept = canvas
            self.free = [canvas]

    keep = Keep()
    tile_stage = lambda: draw_atlas(outs, 0, None, atlas, style, keep, work / "a", opts)  # noqa: E731
    t_tile = measure(tile_stage, repeat=5)
    fresh = (work / f"w{i}" for i in itertools.count())   # a pyramid is written into a new folder
    t_write = measure(lambda: write_dzi(keep.kept, next(fresh), "png"), repeat=3)
    n_layers = [] if not quick else ["--layer"] + [x.name for x in layers]
    m = process(_montage("features", "--out", work / "m", *n_layers), repeat=1 if quick else 3, cwd=ROOT)
    k = process(["-m", "benchmarks.baselines", "keract-features", "--out", str(work / "k")]
                + (["--layers", "4"] if quick else []), cwd=ROOT)
    owns = []
    for i in range(1 if quick else 3):
        (work / f"b{i}").mkdir()
        process(["-m", "benchmarks.baselines", "features-own", "--out", str(work / f"b{i}")]
                + (["--layers", "4"] if quick else []), cwd=ROOT)
        owns.append(json.loads((work / f"b{i}" / "own.json").read_text()))
    own, framework = (float(np.median([o[key] for o in owns])) for key in ("montage_s", "framework_s"))
    maps = sum(s[2] for s in shapes)
    tw = t_tile["median_s"] + t_write["median_s"]
    ratio = k["median_s"] / m["median_s"]
    name = f"feature maps, 1 image, {len(layers)} conv layers ({maps:,} maps)"
    rows = [
        row(name + ", process start to page on disk", m["median_s"], "s", k["median_s"],
            "keract-style matplotlib, a figure per layer", ratio, ">= 20x", _target(quick, ratio >= 20)),
        row(name + ": tiling + writing vs the forward pass", tw, "s", t_fwd["median_s"], "forward pass",
            t_fwd["median_s"] / tw, "< forward (ratio > 1)", _target(quick, tw < t_fwd["median_s"])),
        row(name + ": montage's own time (end to end less Keras' import and the model build, one process)", own,
            "s", framework, "Keras' import and the model build in that process", None, "<= 0.5 s",
            _target(quick, own <= 0.5)),
        row("... read + preprocess stage", t_read["median_s"], "s"),
        row("... tiling stage (numba, %.1f MP atlas)" % (world[0] * world[1] / 1e6), t_tile["median_s"], "s"),
        row("... writing stage (DZI, PNG tiles)", t_write["median_s"], "s"),
    ]
    return rows, {"read": t_read, "forward": t_fwd, "tile": t_tile, "write": t_write, "e2e": m, "keract": k, "own": owns,
                  "atlas_pixels": world[0] * world[1]}


def make_images(folder, n, seed=0):
    """``n`` distinct JPEG photographs: random crops and flips of the sample photograph."""
    import pyvips

    from montage.images import sample_image

    folder.mkdir(parents=True, exist_ok=True)
    base = pyvips.Image.new_from_file(str(sample_image()))
    rng = np.random.default_rng(seed)
    for i in range(n):
        w = int(rng.integers(base.width // 2, base.width))
        h = int(rng.integers(base.height // 2, base.height))
        im = base.crop(int(rng.integers(0, base.width - w + 1)), int(rng.integers(0, base.height - h + 1)), w, h)
        if rng.random() < 0.5:
            im = im.fliphor()
        im.write_to_file(str(folder / f"img{i:05d}.jpg"), Q=90)
    return folder


def features_batches(work, quick):
    """Images/s end to end against a bare forward pass of the same multi-output model."""
    import montage
    from montage.models import prepare
    from montage.graph import feature_layers
    from montage.images import batches, find_images

    loaded = _loaded()
    layers = feature_layers(loaded.model)
    fwd = prepare(loaded, [n.name for n in layers])
    rows, details = [], {}
    for n in ([1, 2] if quick else [1, 8, 32, 128]):
        folder = make_images(work / f"in{n}", n, seed=n)
        bs = min(n, 32)
        paths = find_images([folder])
        xs = [b.x for b in batches(paths, 224, bs, fwd.loaded)]
        predict = keras_predict(fwd)
        predict(xs[0])   # warm-up: tracing stays out of the figures
        repeat = 1 if n > 32 else 3
        bare = measure(lambda: [predict(x) for x in xs], repeat=repeat, warmup=0)
        run = measure_into(lambda out: montage.features(loaded, [folder], out, batch_size=bs, quiet=True),
                           work / f"o{n}", repeat)
        m_ips, b_ips = n / run["median_s"], n / bare["median_s"]
        target = ">= 0.7x" if n in (32, 128) else ""
        met = _target(quick, m_ips / b_ips >= 0.7) if n in (32, 128) else None
        rows.append(row(f"feature maps, {n} images (batches of {bs}), end to end", m_ips, "img/s", b_ips,
                        "bare model.predict of the same outputs", m_ips / b_ips, target, met))
        details[n] = {"montage": run, "bare": bare}
    return rows, details


def memory_flat(work, quick):
    """Peak memory of many images against a few: compute, tile, write, drop."""
    small, large = (4, 12) if quick else (32, 1000)
    out = {}
    for n in (small, large):
        folder = make_images(work / f"in{n}", n, seed=n)
        out[n] = process(_montage("features", "--image", folder, "--out", work / f"o{n}", "--tile-format", "jpeg",
                                  "--batch-size", "16"), cwd=ROOT)
    ratio = out[large]["peak_bytes"] / out[small]["peak_bytes"]
    rows = [row(f"feature maps, peak memory for {large} images (jpeg tiles, batches of 16)",
                out[large]["peak_bytes"] / GB, "GB", out[small]["peak_bytes"] / GB, f"{small} images",
                1 / ratio, "large/small <= 1.5", _target(quick, ratio <= 1.5)),
            row(f"feature maps, {large} images end to end", large / out[large]["median_s"], "img/s")]
    return rows, {str(k): v for k, v in out.items()}


def examples(work, quick):
    """Dataset examples: images/s against a bare predict of the same outputs (same batches), and
    peak memory for many images against a few (the running state is (top, channels) per layer)."""
    import montage
    from montage.models import prepare
    from montage.images import batches, find_images

    n, bs = (16, 8) if quick else (256, 32)
    folder = make_images(work / "in", n, seed=7)
    loaded = _loaded()
    fwd = prepare(loaded)   # every conv layer, as features draws them
    xs = [b.x for b in batches(find_images([folder]), 224, bs, fwd.loaded)]
    predict = keras_predict(fwd)
    predict(xs[0])
    bare = measure(lambda: [predict(x) for x in xs], repeat=1, warmup=0)
    run = measure(lambda: montage.examples(loaded, [folder], work / "o", batch_size=bs, overwrite=True, quiet=True),
                  repeat=1, warmup=0)
    shard = measure(lambda: montage.examples(loaded, [folder], work / "s", batch_size=bs, overwrite=True, quiet=True,
                                             shard=(0, 1)), repeat=1, warmup=0)
    ratio = (n / shard["median_s"]) / (n / bare["median_s"])
    small, large = (8, 24) if quick else (256, 5000)
    peaks = {}
    for k in (small, large):
        f = make_images(work / f"m{k}", k, seed=k)
        peaks[k] = process(_montage("examples", "--image", f, "--out", work / f"mo{k}", "--batch-size", str(bs),
                                    "--shard", "0/1", "--size", "96"), cwd=ROOT)   # small inputs: minutes, not hours
    mem = peaks[large]["peak_bytes"] / peaks[small]["peak_bytes"]
    rows = [
        row(f"examples, {n} images (batches of {bs}): the pass (top-k lists, no pictures)", n / shard["median_s"],
            "img/s", n / bare["median_s"], "bare model.predict of the same outputs", ratio, ">= 0.8x",
            _target(quick, ratio >= 0.8)),
        row(f"examples, {n} images, end to end with the pictures of 4,224 channels x 9", n / run["median_s"],
            "img/s", n / bare["median_s"], "bare model.predict of the same outputs",
            (n / run["median_s"]) / (n / bare["median_s"]), "", None),
        row(f"examples, peak memory for {large} images (the pass, 96 px inputs)", peaks[large]["peak_bytes"] / GB, "GB",
            peaks[small]["peak_bytes"] / GB, f"{small} images", 1 / mem, "large/small <= 1.2",
            _target(quick, mem <= 1.2)),
    ]
    return rows, {"bare": bare, "run": run, "pass": shard, "peaks": {str(k): v for k, v in peaks.items()}}


def features_scale(work, quick):
    """The features page at dataset scale, in the real Chromium: page size, start-up, JS heap and
    switching for many images, against the same for few; render memory for many against few."""
    import shutil

    from .page import measure_page

    small, large = (8, 40) if quick else (1000, 10000)
    layers = ["--layer", "block1_conv1", "block1_conv2", "--size", "32", "--tile-format", "jpeg", "--values", "-1"]
    out, folder = {}, make_images(work / "in", large, seed=11)
    few = work / "few"
    few.mkdir()
    for f in sorted(folder.iterdir())[:small]:
        shutil.copy2(f, few / f.name)
    for n, src in ((small, few), (large, folder)):
        out[n] = process(_montage("features", "--image", src, *layers, "--out", work / f"o{n}"), cwd=ROOT)
    pages = {n: measure_page(work / f"o{n}" / "index.html") for n in (small, large)}
    p, q = pages[large], pages[small]
    mem = out[large]["peak_bytes"] / out[small]["peak_bytes"]
    rows = [
        row(f"features page of {large:,} images: index.html", p["html_bytes"] / 1e6, "MB", q["html_bytes"] / 1e6,
            f"{small:,} images", None, "<= 1 MB", _target(quick, p["html_bytes"] <= 1e6)),
        row("... page ready (tiles drawn), real Chromium", p["ready_s"], "s", q["ready_s"], f"{small:,} images",
            q["ready_s"] / p["ready_s"], "<= 1 s", _target(quick, p["ready_s"] <= 1)),
        row("... JS heap when ready", p["heap_bytes"] / 1e6, "MB", q["heap_bytes"] / 1e6, f"{small:,} images",
            q["heap_bytes"] / p["heap_bytes"], "<= 100 MB", _target(quick, p["heap_bytes"] <= 100e6)),
        row("... switching to the last image, tiles and readout value", p["switch_s"], "s", q["switch_s"],
            f"{small:,} images", q["switch_s"] / p["switch_s"], "<= 0.5 s", _target(quick, p["switch_s"] <= 0.5)),
        row(f"... render peak memory, {large:,} images", out[large]["peak_bytes"] / GB, "GB",
            out[small]["peak_bytes"] / GB, f"{small:,} images", 1 / mem, "flat (<= 1.1x)",
            _target(quick, mem <= 1.1)),
        row(f"... render, {large:,} images (32 px inputs, 2 layers)", large / out[large]["median_s"], "img/s"),
    ]
    return rows, {"render": {str(k): v for k, v in out.items()}, "pages": {str(k): v for k, v in pages.items()}}


def tile_formats(work, quick):
    """Each tile format through montage's writer against libvips' own dzsave defaults."""
    import pyvips

    from montage.colormap import colormap_lut
    from montage.write import write_dzi

    work.mkdir(parents=True)
    h, w = (800, 1200) if quick else (3000, 4500)
    rng = np.random.default_rng(0)
    a = np.kron(rng.normal(size=(h // 10, w // 10)), np.ones((10, 10))) + rng.normal(size=(h, w)) * 0.2
    canvas = np.ascontiguousarray(colormap_lut("viridis")[np.clip(np.maximum(a, 0) * 80, 0, 255).astype(int)])
    own = {"png": ".png", "webp": ".webp[lossless]", "jpeg": ".jpg"}
    rows, details = [], {}
    for fmt, suffix in own.items():
        fresh = (work / f"{fmt}{i}" for i in itertools.count())   # each write into a new folder
        t_m = measure(lambda: write_dzi(canvas, next(fresh), fmt), repeat=2 if quick else 3)
        t_v = measure(lambda: pyvips.Image.new_from_array(canvas).dzsave(str(next(fresh)), suffix=suffix),
                      repeat=1 if fmt == "webp" else (2 if quick else 3))
        mp = h * w / 1e6
        rows.append(row(f"DZI write, {fmt} tiles, {mp:.1f} MP", mp / t_m["median_s"], "MP/s",
                        mp / t_v["median_s"], f"libvips dzsave defaults ({suffix})",
                        t_v["median_s"] / t_m["median_s"], "", None))
        details[fmt] = {"montage": t_m, "libvips": t_v}
    return rows, details


def other_models(work, quick):
    """ResNet50 and MobileNetV2 (random weights, offline): every kernel, and one image's feature maps,
    each against the same model's bare start-up (`montage layers`: import, build, print)."""
    import json

    work.mkdir(parents=True)
    rows, details = [], {}
    for name in ["mobilenetv2"] if quick else ["resnet50", "mobilenetv2"]:
        model = ["--model", name, "--weights", "random"]
        base = process(["-m", "montage", "layers", *model], repeat=1 if quick else 2, cwd=ROOT)
        layers = ["--layer", "Conv1", "block_1_depthwise"] if quick else ["--layer", "all"]
        f = process(_montage("filters", *model, *layers, "--out", work / f"f-{name}"), repeat=1 if quick else 2,
                    cwd=ROOT)
        blocks = json.loads((work / f"f-{name}" / "manifest.json").read_text())["views"][0]["blocks"]
        kernels = sum(b["grid"]["n"] for b in blocks)
        g = process(_montage("features", *model, *(["--layer", "Conv1"] if quick else []), "--out",
                             work / f"g-{name}"), repeat=1 if quick else 2, cwd=ROOT)
        maps = sum(b["map_shape"][2] for b in
                   json.loads((work / f"g-{name}" / "manifest.json").read_text())["views"][0]["blocks"])
        bare = "`montage layers` on the same model (start-up, build)"
        rows += [
            row(f"{name}: filters of {len(blocks)} kernel blocks ({kernels:,} kernels), end to end", f["median_s"],
                "s", base["median_s"], bare, base["median_s"] / f["median_s"], "", None),
            row("... its peak memory", f["peak_bytes"] / GB, "GB", base["peak_bytes"] / GB, bare,
                base["peak_bytes"] / f["peak_bytes"], "", None),
            row(f"{name}: feature maps of 1 image ({maps:,} maps), end to end", g["median_s"], "s",
                base["median_s"], bare, base["median_s"] / g["median_s"], "", None),
            row("... its peak memory", g["peak_bytes"] / GB, "GB", base["peak_bytes"] / GB, bare,
                base["peak_bytes"] / g["peak_bytes"], "", None),
        ]
        details[name] = {"layers": base, "filters": f, "features": g, "kernels": kernels, "maps": maps}
    foreign_rows, details["foreign"] = _foreign_models(work, quick, details)
    return rows + foreign_rows, details


def _foreign_models(work, quick, keras_runs):
    """The same model from PyTorch (torchvision, random weights) and as its ONNX export, against the
    Keras run of it above (ResNet50; a quick run takes SqueezeNet's filters alone)."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("torchvision", "onnx", "onnxruntime")):
        return [], {"skipped": "torchvision, onnx or onnxruntime not installed"}
    name = "squeezenet1_0" if quick else "resnet50"
    onnx_file = work / f"{name}.onnx"
    process(["-m", "benchmarks.baselines", "save-onnx", name, "--out", str(onnx_file)], cwd=ROOT)
    keras = keras_runs.get(name)

    def against(what, mine, key="median_s", unit=1.0):
        """(baseline, its name, ratio) from the Keras run of the same model, or Nones."""
        if keras is None:
            return None, None, None
        base = keras[what][key]
        return base / unit, f"Keras' built-in {name}, same run", base / mine

    rows, details = [], {}
    for label, model in [(f"torchvision:{name}", ["--model", f"torchvision:{name}", "--weights", "random"]),
                         (f"{name}.onnx (its export)", ["--model", onnx_file])]:
        f = process(_montage("filters", *model, "--layer", "all", "--out", work / "tf"), repeat=1 if quick else 2,
                    cwd=ROOT)
        g = None if quick else process(_montage("features", *model, "--out", work / "tg"), repeat=2, cwd=ROOT)
        details[label] = {"filters": f, "features": g}
        rows.append(row(f"{label}: filters of every layer, end to end", f["median_s"], "s",
                        *against("filters", f["median_s"]), "", None))
        rows.append(row("... its peak memory", f["peak_bytes"] / GB, "GB",
                        *against("filters", f["peak_bytes"], "peak_bytes", GB), "", None))
        if g is not None:
            rows.append(row(f"{label}: feature maps of 1 image, end to end", g["median_s"], "s",
                            *against("features", g["median_s"]), "", None))
    return rows, details


def instant(work, quick):
    """No framework start-up where none is needed: the first run after install (a fresh numba
    cache), `montage layers`, and a `.keras` file's kernels, each beside the Keras path."""
    import tempfile

    work.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as fresh:   # numba compiles anew, as after `pip install`
        first = process(_montage("filters", "--layer", "block1_conv2", "--out", work / "first"),
                        env={"NUMBA_CACHE_DIR": fresh}, cwd=ROOT)
    keras_path = process(["-m", "benchmarks.baselines", "keras-filters", "--out", str(work / "k")], cwd=ROOT)
    layers = process(["-m", "montage", "layers"], repeat=1 if quick else 3, cwd=ROOT)
    keras_layers = process(["-m", "montage", "layers", "--model", "vgg16", "--weights", "random"], cwd=ROOT)
    name = "mobilenetv2" if quick else "resnet50"
    saved = work / f"{name}.keras"
    process(["-m", "benchmarks.baselines", "save-model", name, "--out", str(saved)], cwd=ROOT)
    f = process(_montage("filters", "--model", saved, "--layer", "all", "--out", work / "f"),
                repeat=1 if quick else 2, cwd=ROOT)
    k = process(_montage("filters", "--model", name, "--weights", "random", "--layer", "all", "--out", work / "g"),
                cwd=ROOT)
    rows = [
        row("filters block1_conv2, first run after install (fresh numba cache)", first["median_s"], "s",
            keras_path["median_s"], "the same through Keras (TensorFlow import, model build)",
            keras_path["median_s"] / first["median_s"], "<= 3 s", _target(quick, first["median_s"] <= 3)),
        row("`montage layers` (vgg16, the table)", layers["median_s"], "s", keras_layers["median_s"],
            "the same table from a Keras-built model", keras_layers["median_s"] / layers["median_s"], "<= 0.5 s",
            _target(quick, layers["median_s"] <= 0.5)),
        row(f"filters --layer all of a {name} .keras file, end to end", f["median_s"], "s", k["median_s"],
            f"built-in {name} through Keras", k["median_s"] / f["median_s"], "<= 3 s",
            _target(quick, f["median_s"] <= 3)),
        row("... its peak memory", f["peak_bytes"] / GB, "GB", k["peak_bytes"] / GB, "through Keras",
            k["peak_bytes"] / f["peak_bytes"], "", None),
    ]
    return rows, {"first_run": first, "keras_path": keras_path, "layers": layers, "keras_layers": keras_layers,
                  "file_filters": f, "keras_filters": k}


from .history import history  # noqa: E402 (its rows use row() above)

BENCHMARKS = {
    "instant": instant,
    "filters_block1_conv2": filters_block1_conv2,
    "tiling_kernel": tiling_kernel,
    "filters_all": filters_all,
    "features_one": features_one,
    "features_batches": features_batches,
    "memory_flat": memory_flat,
    "examples": examples,
    "features_scale": features_scale,
    "tile_formats": tile_formats,
    "other_models": other_models,
    "history": history,
}


def _more():
    from .ascent import optimize_cpu     # their own modules: suite.py holds the older products' benchmarks
    from .pictures import examples_pictures

    BENCHMARKS["optimize_cpu"] = optimize_cpu
    BENCHMARKS["examples_pictures"] = examples_pictures


_more()

if __name__ == "__main__":
    sys.exit("run: python -m benchmarks")
