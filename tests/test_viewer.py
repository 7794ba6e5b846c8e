"""The page in a real browser: Debian's Chromium, driven headless by Playwright."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import montage
from helpers import read_dzi_level, small_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--allow-file-access-from-files"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (the CI script does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def filters_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "out"
    m = montage.filters(small_model(), ["conv_a", "conv_b"], out, cmap="viridis", normalize="cell",
                        quiet=True)
    return out, m


def open_page(browser, url, size=(1000, 700)):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.montage && window.montage.ready", timeout=20000)
    wait_drawn(page)
    page.errors = errors
    return page


# Every image on screen has all its tiles (images off screen load nothing).
DRAWN = ("(function(){var w=montage.viewer.world, v=montage.viewer.viewport.getBounds(true);"
         "if (!w.getItemCount()) return false;"
         "for (var i=0;i<w.getItemCount();i++){var it=w.getItemAt(i);"
         "if (it.getBounds(true).intersection(v) && !it.getFullyLoaded()) return false;}"
         "return true;})()")


def wait_drawn(page):
    page.wait_for_function(DRAWN, timeout=20000)


def cell_point(page, block, k, frac=(0.5, 0.5)):
    """Viewer-element pixel at a fraction (y, x) of cell k of a block (world -> screen, in the page)."""
    g = block["grid"]
    r, c = divmod(k, g["cols"])
    wx = block["x"] + c * (g["cell_w"] * g["scale"] + g["gap"]) + g["cell_w"] * g["scale"] * frac[1]
    wy = block["y"] + r * (g["cell_h"] * g["scale"] + g["gap"]) + g["cell_h"] * g["scale"] * frac[0]
    return page.evaluate(
        "([x, y]) => { var p = montage.viewer.viewport.viewportToViewerElementCoordinates("
        "new OpenSeadragon.Point(x, y)); return [p.x, p.y]; }", [wx, wy])


def zoom_to_block(page, block, margin=2):
    g = block["grid"]
    w = g["cols"] * (g["cell_w"] * g["scale"] + g["gap"])
    h = g["rows"] * (g["cell_h"] * g["scale"] + g["gap"])
    page.evaluate("([x, y, w, h]) => montage.viewer.viewport.fitBounds("
                  "new OpenSeadragon.Rect(x, y, w, h), true)",
                  [block["x"] - margin, block["y"] - margin, w + 2 * margin, h + 2 * margin])
    wait_drawn(page)
    page.wait_for_timeout(300)


def screenshot_array(page):
    import io

    from PIL import Image

    png = page.locator("#viewer").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_page_draws_tiles_from_file_url(browser, filters_page):
    out, m = filters_page
    page = open_page(browser, (out / "index.html").as_uri())
    view = m["views"][0]
    block, tile = view["blocks"][1], view["tiles"][1]
    zoom_to_block(page, block)
    shot = screenshot_array(page)
    assert shot.std() > 10                               # not blank
    canvas = read_dzi_level(out, tile)
    g = block["grid"]
    for k in (0, 6, g["n"] - 1):                          # first, middle, last row and column
        x, y = cell_point(page, block, k)
        r, c = divmod(k, g["cols"])
        cy = r * (g["cell_h"] * g["scale"] + g["gap"]) + g["cell_h"] * g["scale"] // 2
        cx = c * (g["cell_w"] * g["scale"] + g["gap"]) + g["cell_w"] * g["scale"] // 2
        want = canvas[cy, cx]
        got = shot[int(y), int(x)]
        # smoothing is off: magnified weights are flat squares of the exact colour
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 2, (k, got, want)
    assert page.errors == []
    page.close()


def test_page_works_without_local_openseadragon_via_fallback_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MONTAGE_OSD_DIR", str(tmp_path / "nowhere"))
    import montage.viewer as v

    monkeypatch.setattr(v, "osd_assets", lambda: None)
    montage.filters(small_model(), "conv_a", tmp_path / "o")
    err = capsys.readouterr().err
    assert "OpenSeadragon is not installed" in err and "CDN" in err
    html = (tmp_path / "o" / "index.html").read_text()
    assert "cdn.jsdelivr.net/npm/openseadragon@" in html
    assert not (tmp_path / "o" / "openseadragon").exists()


def hover(page, block, k, frac=(0.5, 0.5)):
    """Move the pointer over cell k of a block (at a fraction of the cell) and return the point."""
    x, y = cell_point(page, block, k, frac)
    page.mouse.move(1, 1)    # a move to where the pointer already is fires no event
    page.mouse.move(x, y, steps=2)
    return x, y


def readout(page):
    return page.evaluate("""() => { var r = document.getElementById('readout');
        return {data: Object.assign({}, r.dataset), text: r.innerText,
                cells: Array.from(r.querySelectorAll('td')).map(td => td.textContent)}; }""")


def zoom_to_cell(page, block, k, margin_cells=1.5):
    g = block["grid"]
    r, c = divmod(k, g["cols"])
    py, px = g["cell_h"] * g["scale"] + g["gap"], g["cell_w"] * g["scale"] + g["gap"]
    x, y = block["x"] + c * px, block["y"] + r * py
    page.evaluate("([x, y, w, h]) => montage.viewer.viewport.fitBounds(new OpenSeadragon.Rect(x, y, w, h), true)",
                  [x - margin_cells * px, y - margin_cells * py, (2 * margin_cells + 1) * px,
                   (2 * margin_cells + 1) * py])
    page.wait_for_timeout(200)


def test_readout_names_the_cell_and_its_weights_at_two_zooms(browser, filters_page):
    out, m = filters_page
    page = open_page(browser, (out / "index.html").as_uri())
    model = small_model()
    block = m["views"][0]["blocks"][1]          # conv_b: 7 filters x 5 channels
    kernel = model.get_layer("conv_b").get_weights()[0]
    g = block["grid"]
    cells = [0, g["cols"] - 1, (g["rows"] - 1) * g["cols"], g["n"] - 1, 12]
    for zoom in ("block", "cell"):
        for k in cells:
            if zoom == "block":
                zoom_to_block(page, block)
            else:
                zoom_to_cell(page, block, k)
            hover(page, block, k)
            f, c = divmod(k, g["cols"])
            page.wait_for_function(f"() => {{ var r = document.getElementById('readout'); return r.dataset.filter === '{f}'"
                                   f" && r.dataset.channel === '{c}' && r.querySelectorAll('td').length === 9; }}")
            ro = readout(page)
            assert ro["data"]["layer"] == "conv_b"
            assert f"filter   {f}" in ro["text"] and f"channel  {c}" in ro["text"]
            got = np.array([float(t) for t in ro["cells"]]).reshape(3, 3)
            np.testing.assert_allclose(got, kernel[:, :, c, f], rtol=2e-3, atol=1e-6)
    # a gap shows nothing
    zoom_to_block(page, block)
    hover(page, block, 0, frac=(0.5, 1.0 + 0.5 / (g["cell_w"] * g["scale"])))
    page.wait_for_function("() => document.getElementById('readout').innerText.includes('point at a cell')")
    assert page.errors == []
    page.close()


def test_pinned_link_reopens_on_the_same_cell(browser, filters_page):
    out, m = filters_page
    block = m["views"][0]["blocks"][1]
    page = open_page(browser, (out / "index.html").as_uri())
    zoom_to_block(page, block)
    x, y = hover(page, block, 33)       # filter 6, channel 3
    page.mouse.click(x, y)
    page.wait_for_function("() => location.hash.length > 1")
    link = page.evaluate("() => location.href")
    assert link.endswith("#layer=conv_b&filter=6&channel=3")
    page.close()
    again = open_page(browser, link)
    ro = readout(again)
    assert ro["data"] == {"layer": "conv_b", "filter": "6", "channel": "3"}
    centre = again.evaluate("() => { var c = montage.viewer.viewport.getCenter(true); return [c.x, c.y]; }")
    g = block["grid"]
    py, px = g["cell_h"] * g["scale"] + g["gap"], g["cell_w"] * g["scale"] + g["gap"]
    assert block["x"] + 3 * px <= centre[0] <= block["x"] + 4 * px
    assert block["y"] + 6 * py <= centre[1] <= block["y"] + 7 * py
    # the jump form goes to another cell the same way
    again.select_option("#jump select", "conv_a")
    again.fill("#jump input[name=filter]", "4")
    again.fill("#jump input[name=channel]", "2")
    again.click("#jump button")
    again.wait_for_function("() => location.hash === '#layer=conv_a&filter=4&channel=2'")
    again.close()


def test_layer_list_moves_the_viewport(browser, filters_page):
    out, m = filters_page
    page = open_page(browser, (out / "index.html").as_uri())
    for b in m["views"][0]["blocks"]:
        page.click(f"#blocks button[data-layer='{b['layer']}']")
        page.wait_for_timeout(1200)   # the animation
        box = page.evaluate("() => { var r = montage.viewer.viewport.getBounds(true); return [r.x, r.y, r.width, r.height]; }")
        g = b["grid"]
        w = g["cols"] * (g["cell_w"] * g["scale"] + g["gap"])
        h = g["rows"] * (g["cell_h"] * g["scale"] + g["gap"])
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        assert abs(cx - (b["x"] + w / 2)) < w * 0.1 and abs(cy - (b["y"] + h / 2)) < h * 0.1
        assert box[2] < w * 2 or box[3] < h * 2     # zoomed to the block, not the whole page
    page.close()


def test_image_switcher_keeps_the_viewport(browser, tmp_path):
    from helpers import random_images

    model = small_model(side=32)
    imgs = random_images(tmp_path / "in", 2)
    out = tmp_path / "f"
    m = montage.features(model, [str(p) for p in imgs], out, size=32, cell=20, quiet=True)
    page = open_page(browser, out.as_uri() + "/index.html")
    block = m["views"][0]["blocks"][1]
    zoom_to_cell(page, block, 3)
    before = page.evaluate("() => { var r = montage.viewer.viewport.getBounds(true); return [r.x, r.y, r.width, r.height]; }")
    hover(page, block, 3, frac=(0.25, 0.75))
    page.wait_for_function("() => document.getElementById('readout').dataset.channel === '3'")
    assert "img00.png" in readout(page)["text"]
    page.click("#views button[data-view='1']")
    page.wait_for_function("() => montage.state.view === 1 && montage.viewer.world.getItemCount() === 1 &&"
                           " montage.viewer.world.getItemAt(0).getFullyLoaded()")
    after = page.evaluate("() => { var r = montage.viewer.viewport.getBounds(true); return [r.x, r.y, r.width, r.height]; }")
    np.testing.assert_allclose(after, before, rtol=1e-3, atol=0.5)
    hover(page, block, 3, frac=(0.25, 0.75))
    page.wait_for_function("() => document.getElementById('readout').innerText.includes('img01.png')")
    ro = readout(page)
    assert ro["data"]["channel"] == "3" and "y, x     " in ro["text"]
    assert page.errors == []
    page.close()
    # side by side: both atlases in one row, the same cell of each under the pointer in turn
    page = open_page(browser, out.as_uri() + "/index.html")
    page.click("#views button.compare")
    page.wait_for_function("() => montage.state.compare && montage.viewer.world.getItemCount() === 2")
    stride = page.evaluate("() => montage.manifest.views[0].world[0] * 1.05 + 64")
    page.evaluate("([s, w, h]) => montage.viewer.viewport.fitBounds(new OpenSeadragon.Rect(0, 0, s + w, h), true)",
                  [stride, m["views"][0]["world"][0], m["views"][0]["world"][1]])
    wait_drawn(page)
    for i, dx in enumerate([0, stride]):
        shifted = dict(block, x=block["x"] + dx)
        hover(page, shifted, 4)
        page.wait_for_function(f"() => document.getElementById('readout').innerText.includes('img0{i}.png')"
                               " && document.getElementById('readout').dataset.channel === '4'")
    page.close()
    # a link to a cell of the second image opens that image, zoomed onto the cell
    link = out.as_uri() + "/index.html#image=" + str(imgs[1]).replace("/", "%2F") + "&layer=conv_b&channel=5"
    again = open_page(browser, link)
    again.wait_for_function("() => montage.state.view === 1 && document.getElementById('readout').dataset.channel === '5'")
    centre = again.evaluate("() => { var c = montage.viewer.viewport.getCenter(true); return [c.x, c.y]; }")
    g = block["grid"]
    r, c = divmod(5, g["cols"])
    px, py = g["cell_w"] * g["scale"] + g["gap"], g["cell_h"] * g["scale"] + g["gap"]
    assert block["x"] + c * px <= centre[0] <= block["x"] + (c + 1) * px
    assert block["y"] + r * py <= centre[1] <= block["y"] + (r + 1) * py
    again.close()


def test_malicious_layer_name_is_shown_as_text(browser, tmp_path):
    import keras

    evil = "<img src=x onerror=alert(1)>"
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name=evil)(inp))
    out = tmp_path / "evil"
    montage.filters(model, [evil], out, quiet=True)
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto((out / "index.html").as_uri())
    page.wait_for_function("window.montage && window.montage.ready")
    assert page.inner_text("#blocks button").startswith(evil)
    block = json.loads((out / "manifest.json").read_text())["views"][0]["blocks"][0]
    zoom_to_block(page, block)
    hover(page, block, 0)
    page.wait_for_function("() => document.getElementById('readout').dataset.filter === '0'")
    assert evil in page.inner_text("#readout")
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    page.wait_for_timeout(300)
    assert dialogs == []
    page.close()


def test_serve_over_http(browser, filters_page):
    import signal
    import subprocess
    import sys

    out, m = filters_page
    proc = subprocess.Popen([sys.executable, "-m", "montage", "serve", str(out), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        page = open_page(browser, url + "index.html")
        block = m["views"][0]["blocks"][1]
        zoom_to_block(page, block)
        assert screenshot_array(page).std() > 10
        hover(page, block, 8)
        page.wait_for_function("() => { var r = document.getElementById('readout'); return r.dataset.filter === '1'"
                               " && r.dataset.channel === '3' && r.querySelectorAll('td').length === 9; }")
        page.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_keyboard_zooms_pans_and_goes_home(browser, filters_page):
    out, m = filters_page
    page = open_page(browser, (out / "index.html").as_uri())
    zoom = "() => montage.viewer.viewport.getZoom(true)"
    centre = "() => { var c = montage.viewer.viewport.getCenter(true); return [c.x, c.y]; }"
    home = page.evaluate(zoom)
    page.click("#viewer")
    page.keyboard.press("+")
    page.wait_for_timeout(800)
    assert page.evaluate(zoom) > home * 1.3
    before = page.evaluate(centre)
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(800)
    assert page.evaluate(centre)[0] > before[0]
    page.keyboard.press("0")
    page.wait_for_timeout(800)
    assert abs(page.evaluate(zoom) - home) < home * 0.05
    page.keyboard.press("f")
    page.wait_for_function("() => montage.viewer.isFullPage()")
    page.close()


def home_bounds(page):
    return page.evaluate("() => { var r = montage.viewer.viewport.getBounds(true); return [r.x, r.y, r.width, r.height]; }")


def test_malformed_hash_opens_at_home(browser, filters_page):
    out, m = filters_page
    url = (out / "index.html").as_uri()
    page = open_page(browser, url)
    home = home_bounds(page)
    page.close()
    page = open_page(browser, url + "#layer=%ZZ")
    np.testing.assert_allclose(home_bounds(page), home, rtol=1e-6, atol=1e-6)
    assert page.errors == [] and readout(page)["data"] == {}
    page.close()
    # only the bad part is dropped: the rest of the link still opens its cell
    page = open_page(browser, url + "#x=%E0%A4%A&layer=conv_b&filter=6&channel=3&%ZZ=1")
    assert readout(page)["data"] == {"layer": "conv_b", "filter": "6", "channel": "3"}
    assert page.errors == []
    page.close()


def test_title_is_never_read_as_a_placeholder(browser, tmp_path):
    import keras

    title = "{{MANIFEST}} {{CDN}} {{TITLE}} <b>"
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="conv")(inp), name=title)
    out = tmp_path / "o"
    montage.filters(model, ["conv"], out, quiet=True)
    text = (out / "index.html").read_text()
    assert text.count('<script id="manifest"') == 1 and "&lt;b&gt;" in text
    page = open_page(browser, (out / "index.html").as_uri())
    assert page.evaluate("() => document.title") == title + " filters"
    assert page.evaluate("() => montage.manifest.model.name") == title
    assert page.errors == []
    page.close()


def test_undecodable_title_is_written_escaped(tmp_path, filters_page):
    from montage import viewer

    out, _ = filters_page
    viewer.build(tmp_path, out / "manifest.json", "model\udcff")   # a file name's stray byte
    assert "<title>model\\udcff</title>" in (tmp_path / "index.html").read_text(encoding="utf-8")


UNSAFE = "\u202e\u200e\u200f\u202a\u2066\u2069\u0007\u0085\n"
RECORD_FILLTEXT = ("window.drawn = []; var f = CanvasRenderingContext2D.prototype.fillText;"
                   "CanvasRenderingContext2D.prototype.fillText = function (t) {"
                   " window.drawn.push(String(t)); return f.apply(this, arguments); };")
SHOWN = """() => ({
    blocks: document.querySelector('#blocks button').textContent,
    option: document.querySelector('#jump option').textContent,
    views: Array.from(document.querySelectorAll('#views button')).map(b => b.textContent),
    readout: document.getElementById('readout').textContent,
    subtitle: document.getElementById('subtitle').textContent,
    title: document.title,
    labels: window.drawn.filter(t => t.startsWith('conv')) })"""


def shown_texts(browser, index, block, view=0):
    """What the page shows as text, the canvas labels included, with the pointer on a cell."""
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.add_init_script(RECORD_FILLTEXT)   # the labels are pixels: record what is drawn
    page.goto(index.as_uri())
    page.wait_for_function("window.montage && window.montage.ready")
    if view:
        page.click(f"#views button[data-view='{view}']")
        page.wait_for_function(f"() => montage.state.view === {view}")
    zoom_to_block(page, block)
    hover(page, block, 0)
    page.wait_for_function("() => document.getElementById('readout').dataset.channel === '0'")
    shown = page.evaluate(SHOWN)
    for where, text in shown.items():   # (the readout's own lines end in "\n")
        for t in (text if isinstance(text, list) else [text]):
            assert not set(t) & set(UNSAFE) - {"\n"}, (where, t)
    return page, shown


def test_bidi_and_control_characters_in_names_are_shown_escaped(browser, tmp_path):
    import keras

    from helpers import random_images

    # a layer name reaches the page only through filters: the forward pass refuses such names
    layer = "conv" + UNSAFE + "gnp.exe"
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name=layer)(inp), name="m\u202eodel")
    m = montage.filters(model, [layer], tmp_path / "w", quiet=True)
    page, shown = shown_texts(browser, tmp_path / "w" / "index.html", m["views"][0]["blocks"][0])
    escaped = "conv\\u202e\\u200e\\u200f\\u202a\\u2066\\u2069\\u0007\\u0085\\u000agnp.exe"
    assert shown["labels"], "no layer label was drawn"
    assert shown["blocks"].startswith(escaped) and shown["option"] == escaped
    assert escaped in shown["readout"] and shown["labels"][0] == escaped
    assert "m\\u202eodel" in shown["subtitle"] and "m\\u202eodel" in shown["title"]
    # the escapes are for show only: the jump form still finds the real layer
    page.fill("#jump input[name=channel]", "2")
    page.click("#jump button")
    page.wait_for_function("() => document.getElementById('readout').dataset.channel === '2'")
    assert page.evaluate("() => document.getElementById('readout').dataset.layer") == layer
    page.close()
    # an image file's name
    img = random_images(tmp_path / "in", 2)
    renamed = img[1].rename(img[1].with_name("img\u202egnp.exe.png"))
    m = montage.features(small_model(side=32), [str(img[0]), str(renamed)], tmp_path / "f", size=32,
                         cell=20, quiet=True)
    page, shown = shown_texts(browser, tmp_path / "f" / "index.html", m["views"][1]["blocks"][0], view=1)
    assert shown["views"][2].endswith("img\\u202egnp.exe.png")
    file_part = "() => document.querySelector(\"#views button[data-view='1'] .file\").textContent"
    assert page.evaluate(file_part) == "img\\u202egnp.exe.png"     # split at the real separator, then escaped
    assert "img\\u202egnp.exe.png" in shown["readout"]
    page.close()


def test_readout_names_depthwise_and_grouped_cells(browser, tmp_path):
    from helpers import kinds_model

    model, _ = kinds_model()
    out = tmp_path / "kinds"
    m = montage.filters(model, ["dw", "grouped"], out, quiet=True)
    blocks = {b["layer"]: b for b in m["views"][0]["blocks"]}
    page = open_page(browser, (out / "index.html").as_uri())
    dw = blocks["dw"]                      # 4 input channels x multiplier 2: output k = input k // 2
    kernel = model.get_layer("dw").get_weights()[0]
    for k in (0, 5, 7):
        zoom_to_cell(page, dw, k)
        hover(page, dw, k)
        page.wait_for_function(f"() => document.getElementById('readout').dataset.channel === '{k}'"
                               " && document.getElementById('readout').querySelectorAll('td').length === 9")
        ro = readout(page)
        assert ro["data"]["input"] == str(k // 2) and ro["data"]["multiplier"] == str(k % 2)
        assert f"input    {k // 2}  (multiplier {k % 2})" in ro["text"]
        got = np.array([float(t) for t in ro["cells"]]).reshape(3, 3)
        np.testing.assert_allclose(got, kernel[:, :, k // 2, k % 2], rtol=2e-3, atol=1e-6)
    gr = blocks["grouped"]                 # 8 filters in 2 groups of 4, each reading 2 of 4 channels
    kernel = model.get_layer("grouped").get_weights()[0]
    for f, j in ((1, 1), (6, 0)):
        k = f * gr["grid"]["cols"] + j
        zoom_to_cell(page, gr, k)
        hover(page, gr, k)
        real = j + (f // 4) * 2
        page.wait_for_function(f"() => document.getElementById('readout').dataset.filter === '{f}'"
                               f" && document.getElementById('readout').dataset.channel === '{real}'"
                               " && document.getElementById('readout').querySelectorAll('td').length === 9")
        got = np.array([float(t) for t in readout(page)["cells"]]).reshape(3, 3)
        np.testing.assert_allclose(got, kernel[:, :, j, f], rtol=2e-3, atol=1e-6)
    assert page.errors == []
    page.close()


def label_boxes(page):
    """The boxes of the labels drawn in the last frame and of OpenSeadragon's controls (screen px)."""
    page.wait_for_timeout(150)
    return page.evaluate("() => { montage.viewer.forceRedraw(); return [montage.labelBoxes, montage.controlBoxes]; }")


def assert_apart(boxes, controls):
    def meet(a, b):
        return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not meet(a, b), (a, b)
        for c in controls:
            assert not meet(a, c), (a, c)


def test_labels_name_the_axes_and_never_overlap(browser, filters_page, tmp_path):
    from helpers import kinds_model

    out, m = filters_page
    page = open_page(browser, (out / "index.html").as_uri())
    boxes, controls = label_boxes(page)
    assert len(controls) == 2                                     # zoom buttons and navigator
    texts = [b["text"] for b in boxes if b["kind"] != "index"]
    for layer in ("conv_a", "conv_b"):                            # at home, without hovering
        assert layer in texts
    assert texts.count("input channels \u2192") == 2 and texts.count("filters \u2192") == 2
    assert_apart(boxes, controls)
    block = m["views"][0]["blocks"][1]
    for zoom in (lambda: zoom_to_block(page, block, margin=0), lambda: zoom_to_cell(page, block, 12)):
        zoom()
        boxes, controls = label_boxes(page)
        assert {"conv_b", "input channels \u2192", "filters \u2192"} <= {b["text"] for b in boxes}
        assert any(b["kind"] == "index" for b in boxes)
        assert_apart(boxes, controls)
    page.close()
    # many blocks of every kind on one page, and a features atlas: still apart, every block named
    model, _ = kinds_model()
    kinds = montage.filters(model, "all", tmp_path / "k", quiet=True)
    page = open_page(browser, (tmp_path / "k" / "index.html").as_uri())
    boxes, controls = label_boxes(page)
    assert_apart(boxes, controls)
    names = {b["text"] for b in boxes if b["kind"] == "name"}
    assert len(names) >= len(kinds["views"][0]["blocks"]) - 2, names
    page.close()


def test_layer_buttons_and_the_jump_select_agree(browser, filters_page):
    out, m = filters_page
    page = open_page(browser, (out / "index.html").as_uri())
    active = "() => Array.from(document.querySelectorAll('#blocks button.active')).map(b => b.dataset.layer)"
    assert page.evaluate(active) == ["conv_a"] and page.input_value("#jump select") == "conv_a"
    page.click("#blocks button[data-layer='conv_b']")
    assert page.input_value("#jump select") == "conv_b" and page.evaluate(active) == ["conv_b"]
    page.select_option("#jump select", "conv_a")
    page.wait_for_timeout(1200)   # the animation
    assert page.evaluate(active) == ["conv_a"]
    b = m["views"][0]["blocks"][0]
    c = page.evaluate("() => { var c = montage.viewer.viewport.getCenter(true); return [c.x, c.y]; }")
    g = b["grid"]
    w, h = g["cols"] * (g["cell_w"] * g["scale"] + g["gap"]), g["rows"] * (g["cell_h"] * g["scale"] + g["gap"])
    assert abs(c[0] - (b["x"] + w / 2)) < w * 0.1 and abs(c[1] - (b["y"] + h / 2)) < h * 0.1
    page.close()


COLORBAR = "() => { var c = document.getElementById('colorbar'); return {mode: c.dataset.mode, " \
           "caption: c.querySelector('.caption').textContent, " \
           "ends: Array.from(c.querySelectorAll('.range span')).map(s => s.textContent)}; }"


def test_features_readout_gives_the_activation_and_the_colour_bar_its_meaning(browser, tmp_path, monkeypatch):
    import keras

    import montage.manifest
    from helpers import random_images

    model = small_model(side=32)
    folder = tmp_path / "in"
    img = random_images(folder, 1, seed=5)[0]
    (folder / "anim.gif").write_bytes(b"GIF89a\x01\x00\x01\x00")
    monkeypatch.setattr(montage.manifest, "VALUES_PART", 1200)   # many parts: they must join up exactly
    out = tmp_path / "f"
    m = montage.features(model, str(folder), out, layers=["conv_a", "conv_b", "pool"], size=32, cell=20,
                         quiet=True)
    assert len(list((out / "images").glob("*.00.values.*.js"))) >= 3    # zeros as bits: fewer than 32*32*5*4 // 1200
    page = open_page(browser, (out / "index.html").as_uri())
    assert page.inner_text("#skipped").startswith("1 input file skipped")
    assert "anim.gif" in page.inner_text("#skipped")
    cb = page.evaluate(COLORBAR)
    assert cb["mode"] == "channel" and cb["caption"] == "each map: its own min .. max"
    assert cb["ends"] == ["min", "viridis", "max"]
    x = read_rgb(img)
    blocks = {b["layer"]: b for b in m["views"][0]["blocks"]}
    for layer, (c, y, xx) in (("conv_a", (0, 0, 0)), ("conv_b", (6, 17, 30)), ("pool", (3, 15, 2))):
        want = np.asarray(keras.Model(model.inputs, model.get_layer(layer).output)(x))[0, y, xx, c]
        b = blocks[layer]
        g = b["grid"]
        zoom_to_cell(page, b, c, margin_cells=0.2)
        hover(page, b, c, frac=((y + 0.5) / g["cell_h"], (xx + 0.5) / g["cell_w"]))
        page.wait_for_function(f"() => {{ var r = document.getElementById('readout').dataset;"
                               f" return r.layer === '{layer}' && r.channel === '{c}' && r.value !== undefined; }}")
        ro = readout(page)
        assert (ro["data"]["y"], ro["data"]["x"]) == (str(y), str(xx))
        shown = ro["data"]["value"]
        assert f"value    {shown}" in ro["text"]
        np.testing.assert_allclose(np.float32(shown), want, rtol=1e-6, atol=1e-6)   # 4 digits would fail
        cb = page.evaluate(COLORBAR)
        k = c   # each map: its own range, the hovered one's at the ends
        lo, hi = b["normalize"]["lo"][k], b["normalize"]["hi"][k]
        assert f"this map: channel {c} of {layer}" in cb["caption"]
        assert np.float32(cb["ends"][0]) == np.float32(lo) and np.float32(cb["ends"][2]) == np.float32(hi)
    assert page.errors == []
    page.close()
    # one range per layer: the bar says so and gives it
    montage.features(model, [str(img)], tmp_path / "l", layers=["conv_a", "conv_b"], size=32, normalize="layer",
                     quiet=True)
    page = open_page(browser, (tmp_path / "l" / "index.html").as_uri())
    cb = page.evaluate(COLORBAR)
    man = json.loads((tmp_path / "l" / "manifest.json").read_text())["views"][0]["blocks"][0]
    assert cb["mode"] == "layer" and cb["caption"].startswith("each layer: one range over all its maps")
    assert "conv_a" in cb["caption"]
    assert [np.float32(cb["ends"][0]), np.float32(cb["ends"][2])] == [np.float32(man["normalize"]["lo"][0]),
                                                                      np.float32(man["normalize"]["hi"][0])]
    page.close()


def read_rgb(path):
    from montage.images import read_rgb as read

    return read(path, 32).astype(np.float32)[None]


DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_vgg16_pages_at_home_view_read_without_hovering(browser, tmp_path):
    """block1_conv2 with the trained weights and a features atlas of the sample photograph, as a
    first-time viewer sees them: every block named, axes titled, no bright mesh of gaps. These
    screenshots are the README's pictures (MONTAGE_UPDATE_DOCS=1 writes them into docs/)."""
    import os

    from PIL import Image

    shots = DOCS if os.environ.get("MONTAGE_UPDATE_DOCS") else tmp_path
    montage.filters("vgg16", "block1_conv2", tmp_path / "f", quiet=True)
    montage.features("vgg16", None, tmp_path / "a", quiet=True)
    page = open_page(browser, (tmp_path / "f" / "index.html").as_uri(), size=(1280, 800))
    boxes, controls = label_boxes(page)
    assert_apart(boxes, controls)
    assert {"block1_conv2", "input channels \u2192", "filters \u2192"} <= {b["text"] for b in boxes}
    page.screenshot(path=str(shots / "block1_conv2_home.png"))
    m = json.loads((tmp_path / "f" / "manifest.json").read_text())
    block = m["views"][0]["blocks"][0]
    x0, y0 = cell_point(page, block, 0, (0, 0))
    x1, y1 = cell_point(page, block, block["grid"]["n"] - 1, (1, 1))
    grid = screenshot_array(page)[int(y0) + 2:int(y1) - 2, int(x0) + 2:int(x1) - 2]
    # white gaps made 1 pixel in 4 white at this zoom; now only the clipped top 1% of weights is
    assert np.mean(grid.min(axis=-1) >= 250) < 0.03
    zoom_to_cell(page, block, 12 * 64 + 37, margin_cells=2.5)
    hover(page, block, 12 * 64 + 37, frac=(0.5, 0.5))
    page.wait_for_function("() => document.querySelectorAll('#readout td').length === 9")
    page.screenshot(path=str(shots / "viewer_readout.png"))
    page.close()
    page = open_page(browser, (tmp_path / "a" / "index.html").as_uri(), size=(1280, 800))
    boxes, controls = label_boxes(page)
    assert_apart(boxes, controls)
    texts = {b["text"] for b in boxes}
    assert {"block1_conv1", "block5_conv3", "channels 0 .. 63, row by row \u2192"} <= texts
    page.screenshot(path=str(shots / "features_home.png"))
    page.close()
    assert Image.open(shots / "features_home.png").size == (1280, 800)


def test_rgb_kernels_are_three_aligned_tables_and_values_load_before_the_pointer_reaches_a_cell(browser, tmp_path):
    model = small_model()
    out = tmp_path / "rgb"
    m = montage.filters(model, "conv_a", out, rgb=True, normalize="global", quiet=True)
    block = m["views"][0]["blocks"][0]
    assert block["kind"] == "rgb"
    page = open_page(browser, (out / "index.html").as_uri())
    zoom_to_cell(page, block, 3)
    loaded = f"() => montage.state.values['{block['values']}'] !== undefined"
    assert not page.evaluate(loaded)
    g = block["grid"]
    hover(page, block, 3, frac=(0.5, 1 + 0.5 / (g["cell_w"] * g["scale"])))   # the gap beside cell 3
    page.wait_for_function(loaded)                                           # prefetched from the gap
    assert "point at a cell" in readout(page)["text"]
    hover(page, block, 3)
    page.wait_for_function("() => document.querySelectorAll('#readout td').length === 27")
    tables = page.evaluate("""() => Array.from(document.querySelectorAll('#readout table')).map(t => ({
        caption: t.caption && t.caption.textContent,
        heights: Array.from(t.querySelectorAll('td')).map(td => td.getBoundingClientRect().height),
        cells: Array.from(t.querySelectorAll('td')).map(td => td.textContent)}))""")
    assert [t["caption"] for t in tables] == ["R", "G", "B"]
    kernel = model.get_layer("conv_a").get_weights()[0]
    for c, t in enumerate(tables):
        assert max(t["heights"]) < 1.5 * min(t["heights"])     # one line each: no number wraps
        got = np.array([np.float32(x) for x in t["cells"]]).reshape(3, 3)
        np.testing.assert_array_equal(got, kernel[:, :, c, 3])   # exact: the shortest float32 round-trip
    assert page.errors == []
    page.close()


def test_features_page_scales_with_many_images(browser, tmp_path):
    """A few hundred images: the page grows only by the image index; switching to the last image
    shows its tiles and its readout values; search finds an image; side by side is a grid."""
    from helpers import random_images

    sizes = {}
    for n in (20, 240):
        random_images(tmp_path / f"in{n}", n, side=32)
        m = montage.features(small_model(side=32), [str(tmp_path / f"in{n}")], tmp_path / f"o{n}", layers=["conv_a"],
                             values=-1, tile_format="jpeg", quiet=True)
        sizes[n] = (tmp_path / f"o{n}" / "index.html").stat().st_size
    index_growth = sum(len(json.dumps(v["name"])) + 14 for v in m["views"][20:])   # names and file bases
    assert sizes[240] - sizes[20] < 1.5 * index_growth                 # nothing per image but its name
    page = open_page(browser, (tmp_path / "o240" / "index.html").as_uri(), size=(1100, 700))
    assert page.evaluate("document.querySelectorAll('#views .vrows button').length") < 30   # a virtual list
    last = len(m["views"]) - 1
    target = m["views"][last]["name"]
    page.fill("#views .search", target.split("/")[-1])
    assert page.evaluate("document.querySelector('#views .count').textContent").startswith("1 of 240")
    page.click("#views .vrows button")
    page.wait_for_function(f"montage.state.view === {last}", timeout=5000)
    wait_drawn(page)
    b = m["views"][last]["blocks"][0]
    zoom_to_block(page, b)
    acts = None
    for _ in range(40):                  # the image's data and values arrive as scripts
        hover(page, b, 2, (0.4, 0.6))
        data = readout(page)["data"]
        if "value" in data:
            acts = data
            break
        page.wait_for_timeout(100)
    assert acts and acts["layer"] == "conv_a" and acts["channel"] == "2"
    view = json.loads((tmp_path / "o240" / "manifest.json").read_text())["views"][last]
    assert view["name"] == target and view["blocks"][0]["values"]
    page.fill("#views .search", "")
    page.click("#views button.compare")
    page.wait_for_function("montage.compare && montage.viewer.world.getItemCount() === montage.compare.length",
                           timeout=10000)
    wait_drawn(page)
    shown = page.evaluate("montage.compare")
    assert last in shown and len(shown) == 16
    ys = page.evaluate("() => { var w = montage.viewer.world, out = [];"
                       "for (var i = 0; i < w.getItemCount(); i++) out.push(w.getItemAt(i).getBounds().y);"
                       "return out; }")
    assert len(set(round(y) for y in ys)) >= 3                          # rows of atlases: a grid
    assert not page.errors
    page.close()


def test_readout_says_a_flat_filter_is_drawn_as_one_colour(browser, tmp_path):
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")])
    w, b = model.get_layer("c").get_weights()
    w[..., 1] *= 1e-35                                      # a dead filter
    model.get_layer("c").set_weights([w, b])
    out = tmp_path / "flat"
    m = montage.filters(model, ["c"], out, normalize="filter", quiet=True)
    block = m["views"][0]["blocks"][0]
    assert block["normalize"]["flat"] == [1]
    page = open_page(browser, (out / "index.html").as_uri())
    for f, flat in ((1, True), (2, False)):
        k = f * block["grid"]["cols"] + 1
        zoom_to_cell(page, block, k)
        hover(page, block, k)
        page.wait_for_function(f"() => document.getElementById('readout').dataset.filter === '{f}'")
        ro = readout(page)
        assert (ro["data"].get("flat") == "1") is flat and ("drawn as one colour" in ro["text"]) is flat, ro
    assert page.errors == []
    page.close()
