"""A real run for the README's picture of the history page: a small CNN learns faces from
non-faces (scikit-image's bundled LFW subset: 100 faces, 100 other patches, 25 x 25 grey),
recorded every epoch by montage.Recorder.

    python examples/history_faces.py OUT [--shot PNG]
"""

import argparse

import keras
import numpy as np
import skimage.data

import montage


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--shot", help="also save a screenshot of the page (needs Chromium and Playwright)")
    a = p.parse_args()
    x = skimage.data.lfw_subset().astype("float32")[..., None]
    y = np.r_[np.ones(100), np.zeros(100)].astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((25, 25, 1)),
                              keras.layers.Conv2D(16, 5, activation="relu", name="conv1"),
                              keras.layers.MaxPooling2D(),
                              keras.layers.Conv2D(16, 3, activation="relu", name="conv2"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)], name="faces")
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    with montage.Recorder(a.out, model, cell=48) as rec:
        h = model.fit(x, y, epochs=a.epochs, batch_size=16, shuffle=True, verbose=0,
                      callbacks=[rec.keras_callback(every=1)])
    print(f"accuracy {h.history['accuracy'][-1]:.2f} after {a.epochs} epochs -> {a.out}/index.html")
    if a.shot:
        shot(a.out, a.shot)


def shot(out, png):
    import shutil
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox",
                              "--allow-file-access-from-files"], headless=True)
        page = b.new_page(viewport={"width": 1100, "height": 560})
        page.goto(Path(out, "index.html").resolve().as_uri())
        page.wait_for_function("window.montage && window.montage.ready")
        page.evaluate("montage.history.go(10, 2)")   # step 10, the change since the first step
        page.wait_for_timeout(500)
        page.mouse.click(430, 200)                      # pin a weight: its value and change in the panel
        page.wait_for_timeout(1500)
        page.screenshot(path=png)
        b.close()


if __name__ == "__main__":
    main()
