"""What the API gives back in a notebook: results with arrays and thumbnails, the layers table."""

import base64
import gc
import json
import re
from pathlib import Path

import numpy as np
import pytest

import montage
import test_viewer
from helpers import random_images, read_dzi_level, small_model
from montage.viewer import inline


def test_filters_result_is_the_manifest_and_more(tmp_path):
    m = montage.filters(small_model(), ["conv_a", "conv_b"], out=None, quiet=True)
    assert m["kind"] == "filters" and m.manifest == dict(m)          # still the manifest dict
    text = repr(m)
    assert len(text) < 200 and "50 kernels of 2 layers -> a temporary folder" in text and str(m.path) not in text
    view = m["views"][0]
    gray = read_dzi_level(m.path, view["tiles"][1])
    assert gray.shape[2] == 1 and m.canvas("conv_b").shape == gray.shape[:2] + (3,)   # RGB, whatever the colormap
    np.testing.assert_array_equal(m.canvas("conv_b"), np.repeat(gray, 3, axis=2))
    png = m._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import pyvips

    thumb = pyvips.Image.new_from_buffer(png, "")
    assert 0 < max(thumb.width, thumb.height) <= 512
    html = m._repr_html_()      # out=None: no link to the folder that goes with the result
    assert "data:image/png;base64," in html and "index.html" not in html and 'out="folder"' in html
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


# ---- the inline viewer and the example notebook ----

browser = test_viewer.browser          # the module's headless Chromium fixture
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tutorial.ipynb"


def _top(root):
    return max(int(p.name) for p in root.iterdir() if p.name.isdigit())


def _inline_data(doc):
    return json.loads(re.search(r"var D = (\{.*?\});\n", doc).group(1))


def test_inline_view_holds_the_pyramids_own_tiles_up_to_the_budget(tmp_path):
    m = montage.filters(small_model(), ["conv_a", "conv_b"], tmp_path / "o", cell=40, quiet=True)
    view = m["views"][0]
    doc, complete = inline.page(m.path, view, "caption <b>", budget=1 << 30)
    data = _inline_data(doc)
    assert complete and data["complete"] and "caption &lt;b&gt;" in doc
    for t, s in zip(view["tiles"], data["sources"]):
        root = m.path / t["dzi"]["Url"]
        top = _top(root)
        assert s["maxLevel"] == top and (s["width"], s["full"]) == (int(t["dzi"]["Size"]["Width"]),) * 2
        for level, files in s["tiles"].items():       # every tile, byte for byte, as a data URL
            on_disk = {p.stem: p.read_bytes() for p in (root / level).iterdir()}
            assert {k: base64.b64decode(v.split(",", 1)[1]) for k, v in files.items()} == on_disk
        assert len(s["tiles"]) == top + 1
    small = sum(len(p.read_bytes()) for p in (m.path / "layers").rglob("*_files/[0-5]/*"))
    doc, complete = inline.page(m.path, view, "x", budget=small)
    data = _inline_data(doc)
    assert not complete and not data["complete"]
    for t, s in zip(view["tiles"], data["sources"]):   # fewer levels, drawn at the same world width
        w = int(t["dzi"]["Size"]["Width"])
        assert s["maxLevel"] == max(map(int, s["tiles"])) < _top(m.path / t["dzi"]["Url"]) and s["full"] == w
        assert s["width"] == -(-w // 2 ** (_top(m.path / t["dzi"]["Url"]) - s["maxLevel"]))
    assert "stops short" in str(m.show(budget=small)) and "<iframe srcdoc=" in m._repr_html_()


def test_example_notebook_runs_offline_and_shows_inline(tmp_path, browser):
    nbformat = pytest.importorskip("nbformat", reason="the test extras install nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLE, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert list(tmp_path.iterdir()) == []               # out=None: nothing left in the working folder
    results = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "execute_result"]
    views = [o for o in results if "<iframe srcdoc=" in o.data.get("text/html", "")]
    assert len(views) == 3                             # RGB filters, block1_conv2, feature maps
    assert all(o.data["image/png"] for o in views)     # and a thumbnail for front ends without HTML
    assert "block1_conv2" in results[0].data["text/html"]          # the layers table as HTML
    assert any(o.output_type == "display_data" and "image/png" in o.data      # grid() through matplotlib
               for o in nb.cells[-1].outputs)
    assert results[-1].data["text/plain"] == "(206, 206, 3)"      # 64 colour kernels, 8 x 8: not a sliver
    saved = json.dumps([o for c in nb.cells if c.cell_type == "code" for o in c.outputs])
    streams = "".join(o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")
    assert "%|" not in streams and "0/1" not in streams            # no text progress bars (red stderr boxes)
    assert not re.search(r"montage-\w+/out", saved), re.search(r".{80}montage-\w+/out.{40}", saved)   # no dead links
    page_file = tmp_path / "conv2.html"
    page_file.write_text(f"<!doctype html><html><body>{views[1].data['text/html']}</body></html>",
                         encoding="utf-8")
    page = browser.new_page(viewport={"width": 900, "height": 600})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    frame = page.frames[1]
    frame.wait_for_function("window.montageInline && montageInline.viewer.world.getItemCount() > 0 && "
                            "montageInline.viewer.world.getItemAt(0).getFullyLoaded()", timeout=30000)
    page.wait_for_timeout(500)
    import pyvips

    shot = pyvips.Image.new_from_buffer(page.locator("iframe").screenshot(), "").numpy()[:, :, :3]
    page.close()
    assert not errors
    body = shot[40:].reshape(-1, 3)                    # below the button bar
    background = np.array([0x2B, 0x2B, 0x2B])
    drawn = np.any(np.abs(body.astype(int) - background) > 8, axis=1)
    assert drawn.mean() > 0.2                          # tiles, not a blank frame
    assert len(np.unique(body[drawn], axis=0)) > 50    # many grey levels of 4,096 kernels
