"""A montage page in the real Chromium (Debian's, headless, through Playwright): how big, how
fast it is ready, its JS heap, and how fast it switches to the last image with its readout."""

import shutil
import time
from pathlib import Path

ARGS = ["--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--enable-precise-memory-info"]


def measure_page(index):
    """{'html_bytes', 'ready_s', 'heap_bytes', 'switch_s'} of a features page."""
    import json

    from playwright.sync_api import sync_playwright

    index = Path(index)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        drawn = ("(function(){var w=montage.viewer.world;if(!w.getItemCount())return false;"
                 "for(var i=0;i<w.getItemCount();i++)if(!w.getItemAt(i).getFullyLoaded())return false;return true;})()")
        t = time.perf_counter()
        page.goto(index.as_uri())
        page.wait_for_function("window.montage && window.montage.ready", timeout=60000)
        page.wait_for_function(drawn, timeout=60000)
        ready = time.perf_counter() - t
        heap = page.evaluate("performance.memory.usedJSHeapSize")
        n = page.evaluate("montage.manifest.layout ? montage.manifest.images.names.length : montage.manifest.views.length")
        layout = page.evaluate("montage.manifest.layout ? montage.manifest.layout.blocks[0] : montage.manifest.views[0].blocks[0]")
        t = time.perf_counter()
        page.evaluate(f"montage.show({n - 1}, {json.dumps(layout['layer'])})")
        page.wait_for_function(drawn, timeout=60000)
        page.wait_for_function("document.getElementById('readout').dataset.value !== undefined", timeout=60000)
        switch = time.perf_counter() - t
        browser.close()
    return {"html_bytes": index.stat().st_size, "ready_s": ready, "heap_bytes": heap, "switch_s": switch}
