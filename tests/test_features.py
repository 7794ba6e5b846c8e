"""Feature maps: batched activations, pixel-exact atlases, many images, bad images."""

import json

import numpy as np
import pytest

import montage
from helpers import random_images, read_dzi_level, small_model, write_image
from montage.cli import main
from montage.colormap import colormap_lut, extended_lut
from montage.images import read_rgb
from montage.normalize import grid_ranges
from montage.style import GAP_COLOR
from reference import grid_reference


@pytest.fixture(scope="module")
def model():
    return small_model(side=32)


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "small32.keras"
    model.save(path)
    return str(path)


def test_batched_multi_output_equals_each_layer_alone(model, tmp_path):
    import keras

    paths = random_images(tmp_path / "in", 5)
    names = ["conv_a", "conv_b", "pool", "conv_c"]
    got = {}
    for batch_paths, acts in montage.activations(model, [str(tmp_path / "in")], names, batch_size=2,
                                                 size=32):
        for j, p in enumerate(batch_paths):
            got[str(p)] = {k: v[j] for k, v in acts.items()}
    assert sorted(got) == sorted(str(p) for p in paths)
    for name in names:
        sub = keras.Model(model.inputs, model.get_layer(name).output)
        for p in paths:
            x = read_rgb(p, 32).astype(np.float32)[None]
            want = np.asarray(sub(x))[0]
            np.testing.assert_allclose(got[str(p)][name], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("normalize", ["channel", "layer", "image"])
def test_atlas_is_pixel_exact(model, tmp_path, normalize):
    import keras

    img = random_images(tmp_path / "in", 1, seed=3)[0]
    m = montage.features(model, [str(img)], tmp_path / "o", layers=["conv_a", "conv_b", "pool", "conv_c"],
                         size=32, cell=20, normalize=normalize, gap=2, quiet=True)
    view = m["views"][0]
    atlas = read_dzi_level(tmp_path / "o", view["tiles"][0])
    lut = extended_lut(colormap_lut("viridis"), "magenta", GAP_COLOR, GAP_COLOR)
    x = read_rgb(img, 32).astype(np.float32)[None]
    acts = {b["layer"]: np.asarray(keras.Model(model.inputs, model.get_layer(b["layer"]).output)(x))[0]
            for b in view["blocks"]}
    if normalize == "image":
        allv = np.concatenate([a.ravel() for a in acts.values()])
        ilo, ihi = float(allv.min()), float(allv.max())
    shapes = set()
    for b in view["blocks"]:
        a = acts[b["layer"]][..., None]
        g = b["grid"]
        if normalize == "image":
            lo, hi = np.full(g["n"], ilo), np.full(g["n"], ihi)
        else:
            lo, hi, _, _ = grid_ranges(a, "cell" if normalize == "channel" else "global", g["cols"])
        want = grid_reference(a, g["rows"], g["cols"], g["scale"], g["gap"], lo, hi, lut, 3)
        got = atlas[b["y"]:b["y"] + want.shape[0], b["x"]:b["x"] + want.shape[1]]
        # float32 activations may differ in the last bit between batched and single runs
        mismatch = np.mean(np.any(got != want, axis=-1))
        assert mismatch < 1e-3, (b["layer"], mismatch)
        np.testing.assert_allclose(b["normalize"]["lo"], np.unique(lo) if normalize != "channel" else lo,
                                   rtol=1e-4, atol=1e-5)
        shapes.add((g["cell_h"], g["scale"], g["n"]))
    assert len(shapes) >= 3   # layers of different map sizes, scales and channel counts


def test_many_images_give_one_view_each_and_skip_bad(model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    random_images(folder, 4)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    out = tmp_path / "o"
    assert main(["features", "--model", model_file, "--image", str(folder), "--out", str(out),
                 "--size", "32", "--batch-size", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.jpg" in err and "--skip-bad" in err
    assert not out.exists()
    assert main(["features", "--model", model_file, "--image", str(folder), "--out", str(out),
                 "--size", "32", "--batch-size", "3", "--skip-bad", "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert [v["name"].split("/")[-1] for v in m["views"]] == [f"img{i:02d}.png" for i in range(4)]
    assert len(m["skipped"]) == 1 and m["skipped"][0]["path"].endswith("broken.jpg")
    assert len(list((out / "images").glob("*.dzi"))) == 4
    html = (out / "index.html").read_text()
    assert "img03.png" in html


def test_bad_images_through_the_cli(model_file, tmp_path, capsys):
    def fails(args, *needles):
        assert main(["features", "--model", model_file, "--size", "32", "--out", str(tmp_path / "o")]
                    + args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        for n in needles:
            assert n in err, err

    fails(["--image", str(tmp_path / "missing.png")], "missing.png", "does not exist")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    fails(["--image", str(text)], "notes.png", "not a readable image")
    good = write_image(tmp_path / "ok.jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    fails(["--image", str(cut)], "cut.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(["--image", str(empty)], "has no images")
    fails(["--image", str(good), "--layer", "nope"], "unknown layer 'nope'", "conv_a")
    assert not (tmp_path / "o").exists()


def test_reading_grey_rgba_and_16_bit(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 40, 3), np.uint8)
    ref = read_rgb(write_image(tmp_path / "rgb.png", rgb), 40)
    np.testing.assert_array_equal(ref, rgb)
    grey = read_rgb(write_image(tmp_path / "g.png", rgb[..., 0]), 40)
    assert grey.shape == (40, 40, 3) and (grey[..., 0] == grey[..., 2]).all()
    rgba = np.concatenate([rgb, np.full((40, 40, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(read_rgb(write_image(tmp_path / "a.png", rgba), 40), rgb)
    deep = read_rgb(write_image(tmp_path / "d.png", rgb.astype(np.uint16) * 257), 40)
    np.testing.assert_array_equal(deep, rgb)
    assert read_rgb(tmp_path / "rgb.png", 224).shape == (224, 224, 3)


def test_default_image_is_a_real_photograph():
    from montage.images import find_images

    [p] = find_images(None)
    a = read_rgb(p, 224)
    assert a.std() > 20 and p.name == "grace_hopper.jpg"


def test_a_skipped_gif_is_one_line_on_the_console_and_listed_in_the_manifest(model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    random_images(folder, 2)
    (folder / "anim.gif").write_bytes(b"GIF89a\x01\x00\x01\x00")
    (folder / ".DS_Store").write_bytes(b"\x00")     # hidden: left out without a word
    out = tmp_path / "o"
    assert main(["features", "--model", model_file, "--image", str(folder), "--out", str(out), "--size", "32"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "anim.gif" in x]
    assert len(lines) == 1 and "skipped 1 file" in lines[0] and "manifest.json" in lines[0], lines
    m = json.loads((out / "manifest.json").read_text())
    assert [(s["path"], s["reason"].split(":")[0]) for s in m["skipped"]] == [(str(folder / "anim.gif"), ".gif")]
    assert len(m["views"]) == 2


def test_atlas_space_outside_the_blocks_is_the_page_background(model, tmp_path):
    from montage.layout import Grid
    from montage.style import BACKGROUND

    img = random_images(tmp_path / "in", 1)[0]
    m = montage.features(model, [str(img)], tmp_path / "o", size=32, cell=20, quiet=True)
    view = m["views"][0]
    atlas = read_dzi_level(tmp_path / "o", view["tiles"][0])
    outside = np.ones(atlas.shape[:2], bool)
    for b in view["blocks"]:
        g = Grid(**b["grid"])
        outside[b["y"]:b["y"] + g.height, b["x"]:b["x"] + g.width] = False
    assert outside.sum() > 0.05 * outside.size       # the packing does leave room
    assert (atlas[outside][:, :3] == BACKGROUND).all()
    assert m["background"] == list(BACKGROUND)


def test_overwrite_knows_values_in_parts_as_montage_s_own(model, tmp_path, monkeypatch):
    import montage.manifest

    monkeypatch.setattr(montage.manifest, "VALUES_PART", 1200)
    img = random_images(tmp_path / "in", 1)[0]
    out = tmp_path / "o"
    montage.features(model, [str(img)], out, size=32, quiet=True)
    assert list((out / "images").glob("*.values.1.js"))
    montage.features(model, [str(img)], out, size=32, overwrite=True, quiet=True)
    (out / "images" / "notes.txt").write_text("mine")
    with pytest.raises(montage.MontageError, match="not written by montage"):
        montage.features(model, [str(img)], out, size=32, overwrite=True, quiet=True)


def test_values_are_written_for_the_first_n_images_only(tmp_path):
    imgs = random_images(tmp_path / "in", 3)
    m = montage.features(small_model(side=32), [str(p) for p in imgs], tmp_path / "o", layers=["conv_a"],
                         values=2, quiet=True)
    keys = [v["blocks"][0]["values"] for v in m["views"]]
    assert keys[0] and keys[1] and keys[2] is None
    assert all((tmp_path / "o" / k).is_file() for k in keys[:2])
    assert len(list((tmp_path / "o" / "images").glob("*.values.js"))) == 2
    with pytest.raises(montage.MontageError, match="--values"):
        montage.features(small_model(side=32), [str(imgs[0])], tmp_path / "p", values=-2, quiet=True)
