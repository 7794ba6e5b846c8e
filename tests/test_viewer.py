"""The page in a real browser: Debian's Chromium, driven headless by Playwright."""

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
    page.wait_for_function(
        "window.montage && window.montage.ready && (function(){var w=montage.viewer.world;"
        "for (var i=0;i<w.getItemCount();i++) if(!w.getItemAt(i).getFullyLoaded()) return false;"
        "return w.getItemCount()>0;})()", timeout=20000)
    page.errors = errors
    return page


def cell_centre(page, block, k):
    """Viewer-element pixel of the centre of cell k of a block (world -> screen, in the page)."""
    g = block["grid"]
    r, c = divmod(k, g["cols"])
    wx = block["x"] + c * (g["cell_w"] * g["scale"] + g["gap"]) + g["cell_w"] * g["scale"] / 2
    wy = block["y"] + r * (g["cell_h"] * g["scale"] + g["gap"]) + g["cell_h"] * g["scale"] / 2
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
    page.wait_for_function("(function(){var w=montage.viewer.world;for(var i=0;i<w.getItemCount();i++)"
                           "if(!w.getItemAt(i).getFullyLoaded()) return false; return true;})()")
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
        x, y = cell_centre(page, block, k)
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
