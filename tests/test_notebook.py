"""What the API gives back in a notebook: results with arrays and thumbnails, the layers table."""

import gc

import numpy as np

import montage
from helpers import random_images, read_dzi_level, small_model


def test_filters_result_is_the_manifest_and_more(tmp_path):
    m = montage.filters(small_model(), ["conv_a", "conv_b"], out=None, quiet=True)
    assert m["kind"] == "filters" and m.manifest == dict(m)          # still the manifest dict
    text = repr(m)
    assert len(text) < 200 and "50 kernels of 2 layers" in text and str(m.path) in text
    view = m["views"][0]
    np.testing.assert_array_equal(m.canvas("conv_b"), read_dzi_level(m.path, view["tiles"][1]))
    png = m._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import pyvips

    thumb = pyvips.Image.new_from_buffer(png, "")
    assert 0 < max(thumb.width, thumb.height) <= 512
    assert "data:image/png;base64," in m._repr_html_() and "index.html" in m._repr_html_()
    folder = m.path.parent
    assert (m.path / "index.html").is_file()
    del m
    gc.collect()
    assert not folder.exists()                                        # out=None lives as long as the result


def test_features_canvas_is_the_layers_block(tmp_path):
    img = random_images(tmp_path / "in", 2)
    m = montage.features(small_model(side=32), [str(p) for p in img], tmp_path / "o",
                         layers=["conv_a", "pool"], quiet=True)
    view = m["views"][1]
    atlas = read_dzi_level(tmp_path / "o", view["tiles"][0])
    b = view["blocks"][1]
    got = m.canvas("pool", image=1)
    assert got.shape[:2] == (b["grid"]["rows"] * (b["grid"]["cell_h"] * b["grid"]["scale"] + 1) - 1,
                             b["grid"]["cols"] * (b["grid"]["cell_w"] * b["grid"]["scale"] + 1) - 1)
    np.testing.assert_array_equal(got, atlas[b["y"]:b["y"] + got.shape[0], b["x"]:b["x"] + got.shape[1]])
    assert "2 images x" in repr(m)


def test_layers_table_prints_and_shows_as_html():
    table = montage.layers(small_model())
    assert str(table).splitlines()[0].split()[:2] == ["layer", "kind"] and repr(table) == str(table)
    assert [r["layer"] for r in table.records] == ["conv_a", "conv_b", "conv_c"]
    assert table.records[1]["kernel"] == "(3, 3, 5, 7)"
    html = table._repr_html_()
    assert html.count("<tr>") == 4 and "conv_c" in html and "3 conv layers" in html
