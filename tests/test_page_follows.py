"""The page follows what the user does (issue 27): side by side by its button, image names that
keep the file name, the layer list and the readout following zooms and choices, the jump form's
out-of-range note, channel numbers that leave the maps readable. Driven by clicks, wheel and keys."""

import math

import pytest

import montage
from helpers import random_images, small_model
import test_viewer
from test_viewer import cell_point, hover, label_boxes, open_page, readout, wait_drawn

browser = test_viewer.browser   # the module's Chromium fixture

ACTIVE = "() => Array.from(document.querySelectorAll('#blocks button.active')).map(b => b.dataset.layer)"
BOUNDS = "() => { var r = montage.viewer.viewport.getBounds(true); return [r.x, r.y, r.width, r.height]; }"


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Features of three images deep in a long folder path, as the demo's photographs are."""
    root = tmp_path_factory.mktemp("three")
    deep = root / ".venv" / "lib" / "python3.11" / "site-packages" / "some_package_with_a_long_name" / "data"
    imgs = random_images(deep, 3, side=32)
    out = root / "out"
    m = montage.features(small_model(side=32), [str(p) for p in imgs], out, size=32, cell=20, quiet=True)
    return out, m, imgs


@pytest.fixture(scope="module")
def filters_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("filt") / "out"
    return out, montage.filters(small_model(), ["conv_a", "conv_b"], out, cmap="viridis", quiet=True)


def test_side_by_side_button_shows_every_image_and_reads_each(browser, three):
    out, m, imgs = three
    page = open_page(browser, (out / "index.html").as_uri())
    page.click("#views button.compare")
    page.wait_for_function("() => montage.compare && montage.viewer.world.getItemCount() === 3")
    page.wait_for_timeout(300)
    wait_drawn(page)
    box = page.evaluate(BOUNDS)
    assert all(math.isfinite(v) for v in box) and box[2] > 0, box
    items = page.evaluate("() => { var w = montage.viewer.world, out = []; for (var i = 0; i < w.getItemCount(); i++)"
                          " { var r = w.getItemAt(i).getBounds(true); out.push([r.x, r.y, r.width, r.height]); }"
                          " return out; }")
    for x, y, w, h in items:        # home of the grid: every atlas in sight
        assert box[0] <= x and box[1] <= y and x + w <= box[0] + box[2] + 1e-6 and y + h <= box[1] + box[3] + 1e-6
    block = m["views"][0]["blocks"][1]
    for j in range(3):
        p = page.evaluate(f"montage.placeOf({j})")
        i = page.evaluate(f"montage.compare[{j}]")
        hover(page, dict(block, x=block["x"] + p["dx"], y=block["y"] + p["dy"]), 4, (0.4, 0.6))
        page.wait_for_function(f"() => document.getElementById('readout').innerText.includes('{imgs[i].name}')")
        ro = readout(page)
        assert ro["data"]["channel"] == "4" and "NaN" not in ro["text"], ro
    assert page.errors == []
    page.close()


def test_image_list_keeps_each_file_name_whole(browser, three):
    out, m, imgs = three
    page = open_page(browser, (out / "index.html").as_uri())
    rows = page.evaluate("() => Array.from(document.querySelectorAll('#views .vrows button')).map(b => {"
                         " var d = b.querySelector('.dir'), f = b.querySelector('.file'); return {title: b.title,"
                         " file: f.textContent, fileCut: f.scrollWidth > f.clientWidth + 1,"
                         " dirCut: d.scrollWidth > d.clientWidth + 1}; })")
    assert [r["file"] for r in rows] == [p.name for p in imgs]
    assert not any(r["fileCut"] for r in rows) and all(r["dirCut"] for r in rows), rows   # the folders give way
    assert [r["title"] for r in rows] == [v["name"] for v in m["views"]]
    page.close()


def test_layer_list_follows_the_wheel_and_a_chosen_layer_unpins(browser, filters_out):
    out, m = filters_out
    page = open_page(browser, (out / "index.html").as_uri())
    assert page.evaluate(ACTIVE) == ["conv_a"]
    b = m["views"][0]["blocks"][1]
    g = b["grid"]
    x, y = cell_point(page, b, (g["rows"] // 2) * g["cols"] + g["cols"] // 2)
    page.mouse.move(x, y)
    for _ in range(4):
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(150)
    page.wait_for_timeout(800)
    assert page.evaluate(ACTIVE) == ["conv_b"] and page.input_value("#jump select") == "conv_b"
    x, y = hover(page, b, 12)
    page.mouse.click(x, y)
    page.wait_for_function("() => document.getElementById('readout').classList.contains('pinned')")
    page.click("#blocks button[data-layer='conv_a']")
    page.wait_for_timeout(1200)
    ro = readout(page)
    assert "point at a cell" in ro["text"] and "conv_b" not in ro["text"], ro
    assert page.evaluate("location.hash") == "" and page.evaluate(ACTIVE) == ["conv_a"]
    assert page.errors == []
    page.close()


def test_chosen_layer_keeps_its_first_row_clear_of_the_controls(browser, filters_out):
    out, m = filters_out
    page = open_page(browser, (out / "index.html").as_uri())
    for b in m["views"][0]["blocks"]:
        page.select_option("#jump select", b["layer"])
        page.wait_for_timeout(1200)
        _, controls = label_boxes(page)
        x0, y0 = cell_point(page, b, 0, (0, 0))
        x1, y1 = cell_point(page, b, 0, (1, 1))
        for c in controls:
            assert not (x0 < c["x"] + c["w"] and c["x"] < x1 and y0 < c["y"] + c["h"] and c["y"] < y1), (b["layer"], c)
        assert y0 >= 0 and x0 >= 0
    page.close()


def test_jump_form_says_when_a_number_is_out_of_range(browser, filters_out):
    out, m = filters_out
    page = open_page(browser, (out / "index.html").as_uri())
    page.select_option("#jump select", "conv_b")
    page.wait_for_timeout(1200)
    before = page.evaluate(BOUNDS)
    page.fill("#jump input[name='filter']", "999")
    page.press("#jump input[name='filter']", "Enter")
    assert page.inner_text("#jump .note") == "filter 999 is out of range: conv_b has filters 0 .. 6"
    assert page.evaluate(BOUNDS) == before
    page.fill("#jump input[name='filter']", "2")
    page.fill("#jump input[name='channel']", "5")
    page.click("#jump button")
    assert page.inner_text("#jump .note") == "channel 5 is out of range: conv_b has channels 0 .. 4"
    page.fill("#jump input[name='channel']", "4")
    page.click("#jump button")
    page.wait_for_function("() => document.getElementById('readout').dataset.filter === '2'")
    assert page.inner_text("#jump .note") == "" and readout(page)["data"]["channel"] == "4"
    page.close()


def test_rgb_kernels_colour_bar_does_not_name_a_colormap(browser, tmp_path):
    out = tmp_path / "rgb"
    m = montage.filters(small_model(), "conv_a", out, rgb=True, quiet=True)
    page = open_page(browser, (out / "index.html").as_uri())
    hover(page, m["views"][0]["blocks"][0], 2)
    page.wait_for_function("() => document.getElementById('readout').dataset.filter === '2'")
    ends = page.evaluate("() => Array.from(document.querySelectorAll('#colorbar .range span')).map(s => s.textContent)")
    assert ends[1] == "each of R, G, B (no colormap)", ends
    page.close()


def test_channel_numbers_leave_the_maps_readable(browser, tmp_path):
    import keras

    inp = keras.Input((14, 14, 3))
    model = keras.Model(inp, keras.layers.Conv2D(256, 3, padding="same", name="wide")(inp))
    img = random_images(tmp_path / "in", 1, side=14)[0]
    m = montage.features(model, [str(img)], tmp_path / "o", size=14, quiet=True)
    b = m["views"][0]["blocks"][0]
    g = b["grid"]
    page = open_page(browser, (tmp_path / "o" / "index.html").as_uri())
    x, y = cell_point(page, b, (g["rows"] // 2) * g["cols"] + g["cols"] // 2)
    page.mouse.move(x, y)
    seen = 0
    for _ in range(14):
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(500)
        boxes, _ = label_boxes(page)
        x0, _ = cell_point(page, b, 0, (0, 0))
        x1, _ = cell_point(page, b, 0, (1, 1))
        side = x1 - x0
        for box in (bx for bx in boxes if bx["kind"] == "index"):
            seen += 1
            assert box["w"] * box["h"] <= side * side / 10, (box, side)
    assert seen, "no channel numbers at any zoom"
    page.close()


def test_every_vgg16_layer_is_named_at_home_and_no_label_lies_on_another_block(browser, tmp_path):
    m = montage.filters("vgg16", "all", tmp_path / "all", quiet=True)
    blocks = m["views"][0]["blocks"]
    for size in ((1280, 800), (1000, 700)):
        page = open_page(browser, (tmp_path / "all" / "index.html").as_uri(), size=size)
        boxes, controls = label_boxes(page)
        test_viewer.assert_apart(boxes, controls)
        names = {b["text"] for b in boxes if b["kind"] == "name"}
        if size == (1280, 800):
            assert names == {b["layer"] for b in blocks}, names        # all 13, the 1-pixel-wide block1_conv1 too
        else:
            assert len(names) >= len(blocks) - 2, names
        screen = {}
        for b in blocks:
            x0, y0 = cell_point(page, b, 0, (0, 0))
            x1, y1 = cell_point(page, b, b["grid"]["n"] - 1, (1, 1))
            screen[b["layer"]] = (x0, y0, x1, y1)
        for box in (b for b in boxes if b["kind"] != "index"):
            for layer, (x0, y0, x1, y1) in screen.items():
                if box["x"] < x1 - 1 and x0 + 1 < box["x"] + box["w"] and box["y"] < y1 - 1 and y0 + 1 < box["y"] + box["h"]:
                    assert box["layer"] == layer, (box, layer)    # a label over a block is that block's
        page.close()
