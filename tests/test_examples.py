"""Dataset examples: top-k images, positions and boxes against what the test computes on its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import montage
from helpers import read_dzi_level, small_model, write_image

ROOT = Path(__file__).resolve().parents[1]
SIDE = 32


def probe_model():
    """A 1x1 conv that copies the colour channels, then a 2x2 max pool."""
    import keras

    i = keras.Input((SIDE, SIDE, 3), name="image")
    copy = keras.layers.Conv2D(3, 1, use_bias=False, name="copy")
    x = copy(i)
    copy.set_weights([np.eye(3, dtype="float32").reshape(1, 1, 3, 3)])
    pool = keras.layers.MaxPooling2D(2, name="pool")(x)
    wide = keras.layers.Conv2D(40, 1, name="wide")      # 40 channels: several column bands
    out = wide(pool)
    wide.set_weights([np.random.default_rng(3).uniform(0.1, 1, (1, 1, 3, 40)).astype("float32"), np.zeros(40, "float32")])
    return keras.Model(i, out, name="probe")


def spot_images(folder, n=14, seed=0):
    """Dim noise with one bright spot per image, in a known channel, place and brightness."""
    import pyvips

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, arrays = [], []
    for i in range(n):
        a = rng.integers(0, 60, size=(SIDE, SIDE, 3)).astype(np.uint8)
        y, x, c = rng.integers(0, SIDE), rng.integers(0, SIDE), i % 3
        a[y, x, c] = 100 + 11 * ((i * 7) % n)           # spots of different brightness
        a[(y + 5) % SIDE, (x + 3) % SIDE, c] = a[y, x, c]  # and a tie in the same map: first one wins
        if i == 5:
            a[...] = arrays[2]                           # a tie between images: the lower index wins
        p = folder / f"spot{i:02d}.png"
        write_image(p, a)
        assert (pyvips.Image.new_from_file(str(p)).numpy() == a).all()
        paths.append(p)
        arrays.append(a)
    return paths, np.stack(arrays).astype(np.float32)


def expected(maps, k, score):
    """Per channel, in rank order: (image, y, x, score) computed directly from the maps (n, H, W, C)."""
    n, h, w, c = maps.shape
    flat = maps.reshape(n, h * w, c)
    peak = flat.max(axis=1)
    where = flat.argmax(axis=1)
    s = peak if score == "max" else flat.mean(axis=1)
    out = []
    for ch in range(c):
        order = sorted(range(n), key=lambda i: (-s[i, ch], i))[:k]
        out.append([(i, int(where[i, ch] // w), int(where[i, ch] % w), float(s[i, ch])) for i in order])
    return out


def _pool(a):
    n, h, w, c = a.shape
    return a.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


@pytest.mark.parametrize("score", ["max", "mean"])
def test_probe_top_k_positions_and_boxes(tmp_path, score):
    paths, arrays = spot_images(tmp_path / "in")
    model = probe_model()
    m = montage.examples(model, [str(tmp_path / "in")], tmp_path / "o", layers=["copy", "pool"], top=4,
                         score=score, cell=8, preprocess="none", quiet=True)
    blocks = {b["layer"]: b for b in m["views"][0]["blocks"]}
    for layer, maps, jump in (("copy", arrays, 1), ("pool", _pool(arrays), 2)):
        b = blocks[layer]
        assert b["map_shape"] == list(maps.shape[1:]) and b["top"] == 4 and b["score"] == score
        want = expected(maps, 4, score)
        for ch in range(3):
            got = b["examples"][ch]
            assert [Path(e["image"]).name for e in got] == [paths[i].name for i, *_ in want[ch]]
            assert [(e["y"], e["x"]) for e in got] == [(y, x) for _, y, x, _ in want[ch]]
            np.testing.assert_allclose([e["score"] for e in got], [s for *_, s in want[ch]], rtol=1e-6)
            for e in got:
                box = [e["y"] * jump, e["x"] * jump, e["y"] * jump + jump, e["x"] * jump + jump]
                assert e["box"] == (box if score == "max" else [0, 0, SIDE, SIDE])
        stats = b["stats"]
        flat = maps.reshape(len(maps), -1, 3)
        s = flat.max(axis=1) if score == "max" else flat.mean(axis=1)
        np.testing.assert_allclose(stats["mean"], s.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(stats["max"], s.max(axis=0), rtol=1e-6)
        assert stats["positive"] == [1.0, 1.0, 1.0] and b["dead"] == [] and stats["images"] == len(paths)
    # the pictures: row = channel, column = rank; each cell is its patch scaled to the cell
    b = blocks["copy"]
    canvas = read_dzi_level(tmp_path / "o", m["views"][0]["tiles"][0])
    g = b["grid"]
    for ch in range(3):
        for r, e in enumerate(b["examples"][ch]):
            cell = canvas[ch * (g["cell_h"] + g["gap"]):][:8, r * (g["cell_w"] + g["gap"]):][:, :8, :3]
            i = [p.name for p in paths].index(Path(e["image"]).name)
            if score == "max":     # a 1-pixel field: one colour over the whole cell
                assert (cell == arrays[i, e["y"], e["x"]].astype(np.uint8)).all()
            else:                  # the whole image, 4 x 4 block means
                means = arrays[i].reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))
                np.testing.assert_array_equal(cell, np.round(means).astype(np.uint8))


def test_bands_place_each_channel_where_the_manifest_says(tmp_path):
    paths, arrays = spot_images(tmp_path / "in", n=6)
    m = montage.examples(probe_model(), [str(tmp_path / "in")], tmp_path / "o", layers=["wide"], top=3, cell=4,
                         preprocess="none", quiet=True)
    b = m["views"][0]["blocks"][0]
    rows, g = b["band_rows"], b["grid"]
    assert rows == 16 and (g["rows"], g["cols"]) == (16, 3 * 4 - 1)
    canvas = read_dzi_level(tmp_path / "o", m["views"][0]["tiles"][0])
    pooled = _pool(arrays)
    w = np.random.default_rng(3).uniform(0.1, 1, (3, 40)).astype("float32")
    names = [p.name for p in paths]
    for ch in (0, 15, 16, 33, 39):
        for r, e in enumerate(b["examples"][ch]):
            y0, x0 = (ch % rows) * 5, ((ch // rows) * 4 + r) * 5
            i = names.index(Path(e["image"]).name)
            want = (pooled[i] @ w[:, ch]).reshape(-1)
            assert e["y"] * 16 + e["x"] == int(np.argmax(want))                    # the unit's own maximum
            cell = canvas[y0:y0 + 4, x0:x0 + 4, :3]
            patch = arrays[i, e["box"][0]:e["box"][2], e["box"][1]:e["box"][3]]     # a 2 x 2 field
            np.testing.assert_array_equal(cell, np.repeat(np.repeat(patch, 2, 0), 2, 1).astype(np.uint8))
    assert (canvas[:, 3 * 5:3 * 5 + 4] == m["gap_color"]).all()                     # the empty column


def test_shards_merge_into_the_single_pass(tmp_path):
    paths, _ = spot_images(tmp_path / "in", n=11)
    model_file = tmp_path / "probe.keras"
    probe_model().save(model_file)
    kw = dict(layers=["copy", "pool"], top=3, cell=6, preprocess="none", quiet=True)
    whole = montage.examples(str(model_file), [str(tmp_path / "in")], tmp_path / "whole", **kw)
    for i in range(3):
        part = montage.examples(str(model_file), [str(tmp_path / "in")], tmp_path / f"part{i}", shard=(i, 3), **kw)
        assert part["kind"] == "partial" and not (tmp_path / f"part{i}" / "layers").exists()
    # model, weights, size and preprocessing come from the partial results; --image bounds what is read
    merged = montage.examples(out=tmp_path / "merged", quiet=True, cell=6, images=[str(tmp_path / "in")],
                              merge=[str(tmp_path / f"part{i}") for i in (2, 0, 1)])
    assert merged.manifest == whole.manifest
    for t in whole["views"][0]["tiles"]:
        np.testing.assert_array_equal(read_dzi_level(tmp_path / "whole", t), read_dzi_level(tmp_path / "merged", t))


def test_bad_shards_and_partials_are_one_line(tmp_path):
    spot_images(tmp_path / "in", n=4)
    model_file = tmp_path / "probe.keras"
    probe_model().save(model_file)
    small_model().save(tmp_path / "other.keras")
    kw = dict(preprocess="none", quiet=True, cell=4, top=2)
    for i in range(2):
        montage.examples(str(model_file), [str(tmp_path / "in")], tmp_path / f"p{i}", shard=(i, 2), **kw)
    montage.examples(str(model_file), [str(tmp_path / "in")], tmp_path / "q0", shard=(0, 2),
                     **{**kw, "top": 3})
    cases = [
        (dict(shard="3/2"), "0 <= I < N"),
        (dict(shard="a/b"), "I/N"),
        (dict(top=0), "--top 0"),
        (dict(merge=[str(tmp_path / "p0")]), "shards 1/2 are missing"),
        (dict(merge=[str(tmp_path / "p0"), str(tmp_path / "q0")]), "top differ"),
        (dict(merge=[str(tmp_path / "p0"), str(tmp_path / "p0") + "/"]), "given twice"),
        (dict(merge=[str(tmp_path / "in")]), "not a partial result"),
    ]
    merge_kw = {k: v for k, v in kw.items() if k != "top"}     # a merge takes --top from the shards
    for extra, msg in cases:
        with pytest.raises(montage.MontageError, match=msg):
            montage.examples(str(model_file), [str(tmp_path / "in")], tmp_path / "bad", **{**(merge_kw if "merge" in extra else kw), **extra})
    with pytest.raises(montage.MontageError, match="another model"):
        montage.examples(str(tmp_path / "other.keras"), [str(tmp_path / "in")], out=tmp_path / "bad",
                         merge=[str(tmp_path / f"p{i}") for i in range(2)], **merge_kw)
    with pytest.raises(montage.MontageError, match="--size differs: the partial results were fed 32 x 32"):
        montage.examples(None, [str(tmp_path / "in")], out=tmp_path / "bad", size=48,
                         merge=[str(tmp_path / f"p{i}") for i in range(2)], quiet=True)
    with pytest.raises(montage.MontageError, match="--preprocess/--mean/--std differ: .* none"):
        montage.examples(None, [str(tmp_path / "in")], out=tmp_path / "bad", preprocess="tf",
                         merge=[str(tmp_path / f"p{i}") for i in range(2)], quiet=True)
    assert not (tmp_path / "bad").exists()
    r = subprocess.run([sys.executable, "-m", "montage", "examples", "--model", str(model_file), "--image",
                        str(tmp_path / "in"), "--layer", "copy", "--shard", "2/2", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--shard" in r.stderr


def test_dask_cluster_of_two_workers_equals_one_process(tmp_path):
    distributed = pytest.importorskip("dask.distributed", reason="the test extras install dask[distributed]")
    spot_images(tmp_path / "in", n=9)
    model_file = tmp_path / "probe.keras"
    probe_model().save(model_file)
    kw = dict(layers=["copy", "pool"], top=3, cell=6, preprocess="none", quiet=True)
    montage.examples(str(model_file), [str(tmp_path / "in")], tmp_path / "whole", **kw)
    n = 3
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        futures = [client.submit(montage.examples, str(model_file), [str(tmp_path / "in")],
                                 str(tmp_path / f"part{i}"), shard=(i, n), pure=False, **kw) for i in range(n)]
        done = client.gather(futures)
    assert sorted(d["shard"][0] for d in done) == [0, 1, 2]
    montage.examples(str(model_file), [str(tmp_path / "in")], out=tmp_path / "merged",
                     merge=[str(tmp_path / f"part{i}") for i in range(n)],
                     **{k: v for k, v in kw.items() if k not in ("layers", "top")})
    assert json.loads((tmp_path / "merged" / "manifest.json").read_text()) == \
        json.loads((tmp_path / "whole" / "manifest.json").read_text())


def test_memory_stays_flat_with_the_number_of_images(tmp_path):
    """The running state holds (top, channels) arrays per layer, whatever the image count."""
    from montage.topk import Running

    sizes = []
    for n in (10, 1000):
        r = Running(5, 64)
        rng = np.random.default_rng(0)
        for s in range(0, n, 10):
            scores = rng.normal(size=(10, 64)).astype(np.float32)
            r.add(scores, np.zeros((10, 64), np.int32), scores, np.arange(s, s + 10))
        sizes.append(sum(a.nbytes for a in r.arrays("x").values()))
    assert sizes[0] == sizes[1]


def test_jax_backend_gives_the_same_examples_and_features(tmp_path):
    pytest.importorskip("jax", reason="the test extras install jax (the GPU machines' backend)")
    paths, arrays = spot_images(tmp_path / "in", n=6)
    model_file = tmp_path / "probe.keras"
    probe_model().save(model_file)
    code = (
        "import sys, json, numpy as np, montage\n"
        "import keras; assert keras.backend.backend() == 'jax'\n"
        f"m = montage.examples({str(model_file)!r}, [{str(tmp_path / 'in')!r}], {str(tmp_path / 'jx')!r}, "
        "layers=['copy', 'pool'], top=3, cell=4, preprocess='none', quiet=True)\n"
        f"f = montage.features({str(model_file)!r}, [{str(paths[1])!r}], {str(tmp_path / 'jf')!r}, "
        "layers=['pool'], preprocess='none', quiet=True)\n"
        "print(m['device'], f['device'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "jax" in r.stdout
    tf = montage.examples(str(model_file), [str(tmp_path / "in")], tmp_path / "tf", layers=["copy", "pool"], top=3,
                          cell=4, preprocess="none", quiet=True)
    jx = json.loads((tmp_path / "jx" / "manifest.json").read_text())
    assert [b["examples"] for b in jx["views"][0]["blocks"]] == [b["examples"] for b in tf["views"][0]["blocks"]]
    fm = json.loads((tmp_path / "jf" / "manifest.json").read_text())
    b = fm["views"][0]["blocks"][0]
    want = _pool(arrays[1:2])[0]                           # the pool map, straight from the pixels
    lo = np.asarray(b["normalize"]["lo"], np.float32)
    hi = np.asarray(b["normalize"]["hi"], np.float32)
    np.testing.assert_allclose(lo, want.reshape(-1, 3).min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(hi, want.reshape(-1, 3).max(axis=0), rtol=1e-6)


def test_overlay_darkens_each_patch_by_its_activation(tmp_path):
    paths, arrays = spot_images(tmp_path / "in", n=6)
    m = montage.examples(probe_model(), [str(tmp_path / "in")], tmp_path / "o", layers=["copy"], top=3, cell=4,
                         preprocess="none", overlay=True, quiet=True)
    b = m["views"][0]["blocks"][0]
    canvas = read_dzi_level(tmp_path / "o", m["views"][0]["tiles"][0])
    names = [p.name for p in paths]
    for ch in range(3):
        best = b["examples"][ch][0]["score"]
        for r, e in enumerate(b["examples"][ch]):
            pixel = arrays[names.index(Path(e["image"]).name), e["y"], e["x"]]
            a = min(max(pixel[ch] / best, 0.0), 1.0)        # the copy layer's map is the pixel itself
            want = np.round(pixel * (0.25 + 0.75 * a)).astype(np.uint8)
            cell = canvas[ch * 5:ch * 5 + 4, r * 5:r * 5 + 4, :3]
            assert (cell == want).all(), (ch, r, cell[0, 0], want)


def test_page_reads_out_each_example(tmp_path):
    """In the real Chromium: pointing at a cell names its channel, rank, image, position, score and box."""
    import test_viewer
    from test_viewer import assert_apart, hover, label_boxes, open_page, readout, zoom_to_block

    if test_viewer.CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (the CI script does)")
    from playwright.sync_api import sync_playwright

    spot_images(tmp_path / "in", n=8)
    m = montage.examples(probe_model(), [str(tmp_path / "in")], tmp_path / "o", layers=["copy", "pool", "wide"],
                         top=4, cell=16, preprocess="none", quiet=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=test_viewer.CHROMIUM, args=test_viewer.ARGS, headless=True)
        page = open_page(browser, (tmp_path / "o" / "index.html").as_uri())
        b = m["views"][0]["blocks"][1]                      # pool
        zoom_to_block(page, b)
        for ch, rank in ((0, 0), (2, 3), (1, 2)):
            hover(page, b, ch * b["grid"]["cols"] + rank)
            r = readout(page)["data"]
            e = b["examples"][ch][rank]
            assert (r["layer"], r["channel"], r["rank"]) == ("pool", str(ch), str(rank))
            assert r["image"] == e["image"] and r["box"] == ",".join(map(str, e["box"]))
            assert float(r["score"]) == pytest.approx(e["score"], rel=1e-6)
        text = readout(page)["text"]
        assert "positive" in text and "field    2 x 2 px" in text, text
        assert len(e["image"]) > 48 and e["image"] not in text and "\u2026/in/" + Path(e["image"]).name in text
        assert page.evaluate("() => document.querySelector('#readout div[title]').title") == e["image"]
        w = m["views"][0]["blocks"][2]                      # wide: 40 channels in bands of band_rows
        assert w["band_rows"] < 40 and w["grid"]["cols"] == -(-40 // w["band_rows"]) * 5 - 1
        zoom_to_block(page, w)
        for ch, rank in ((0, 1), (w["band_rows"] + 3, 2), (39, 3)):
            hover(page, w, (ch % w["band_rows"]) * w["grid"]["cols"] + (ch // w["band_rows"]) * 5 + rank)
            r = readout(page)["data"]
            assert (r["channel"], r["rank"]) == (str(ch), str(rank)) and r["image"] == w["examples"][ch][rank]["image"]
        hover(page, w, 4)                                   # the empty column after a band: a gap
        assert "channel" not in readout(page)["data"]
        boxes, controls = label_boxes(page)
        assert any("channels" in x["text"] for x in boxes) and any("best first" in x["text"] for x in boxes)
        assert_apart(boxes, controls)
        assert not page.errors
        browser.close()


def test_review_edge_cases(tmp_path, monkeypatch):
    """A free input size, an empty shard, relative paths merged from elsewhere, a huge --top,
    NaN maps, and what a shard's result shows."""
    import keras

    paths, arrays = spot_images(tmp_path / "in", n=5)
    i = keras.Input((None, None, 3))
    free = keras.Model(i, keras.layers.Conv2D(2, 3, padding="same", name="c")(i), name="free")
    free.save(tmp_path / "free.keras")
    m = montage.examples(str(tmp_path / "free.keras"), [str(tmp_path / "in")], tmp_path / "f", size=40,
                         top=50, cell=4, quiet=True, preprocess="none")
    b = m["views"][0]["blocks"][0]
    assert b["map_shape"] == [40, 40, 2] and b["top"] == 5 and len(b["examples"][0]) == 5   # top capped
    assert "5 images, 2 channels of 1 layer" in repr(m)
    np.testing.assert_array_equal(m.canvas("c"), read_dzi_level(tmp_path / "f", m["views"][0]["tiles"][0]))
    # relative image paths, shards run here, merged from another folder
    monkeypatch.chdir(tmp_path)
    probe_model().save(tmp_path / "probe.keras")
    kw = dict(top=2, cell=4, quiet=True, preprocess="none")
    parts = [montage.examples("probe.keras", ["in"], f"p{s}", shard=(s, 7), **kw) for s in range(7)]
    assert [p["images"] for p in parts] == [1, 1, 1, 1, 1, 0, 0]          # shards 5 and 6 are empty
    assert "shard 6/7: 0 images" in repr(parts[6]) and parts[6]._repr_png_() is None
    with pytest.raises(montage.MontageError, match="no pictures"):
        parts[0].canvas()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    merged = montage.examples("../probe.keras", ["../in"], out="../merged", merge=[f"../p{s}" for s in range(7)],
                              cell=4, quiet=True, preprocess="none")
    assert merged["views"][0]["blocks"][0]["examples"][0][0]["image"].startswith("in/")   # as given
    with pytest.raises(montage.MontageError, match="--layer, --top and --score"):
        montage.examples("../probe.keras", out="../m2", merge=["../p0"], top=3)
    with pytest.raises(montage.MontageError, match="--score 'median'"):
        montage.examples("../probe.keras", out="../m2", score="median")
    with pytest.raises(montage.MontageError, match="--shard"):
        montage.examples("../probe.keras", out="../m2", shard=(0, True))


def test_nan_maps_are_no_response(tmp_path):
    """A channel whose map holds NaN ranks by its finite values; an all-NaN channel has no mean."""
    import keras

    paths, _ = spot_images(tmp_path / "in", n=4)
    i = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Conv2D(2, 1, name="c", kernel_initializer="ones")(i)   # random weights could leave
    model = keras.Model(i, keras.layers.Lambda(lambda t: keras.ops.stack(    # channel 0 all NaN (a flake)
        [keras.ops.where(t[..., 0] > 30, t[..., 0], float("nan")), t[..., 1] * float("nan")], axis=-1),
        name="nan")(x))
    m = montage.examples(model, [str(tmp_path / "in")], tmp_path / "o", layers=["nan"], top=2, cell=4,
                         score="mean", quiet=True, preprocess="none")
    b = m["views"][0]["blocks"][0]
    assert b["stats"]["mean"][1] is None and b["stats"]["positive"][1] == 0.0 and b["dead"] == [1]
