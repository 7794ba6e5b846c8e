"""Training history (issue 28): montage.Recorder in a Keras fit and a PyTorch loop, resuming, bad
input, a full disk, SIGKILL during a snapshot, and montage.open."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import montage
from helpers import random_images, siblings
from montage.manifest import json_default


def tiny_keras(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c1"),
                          keras.layers.Conv2D(5, 3, name="c2"), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(2)], name="tiny")
    m.compile(keras.optimizers.SGD(0.05), "mse")
    return m


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((32, 8, 8, 3), np.float32), rng.random((32, 2), np.float32)


def filters_canvas(model, layer, tmp_path, **options):
    """What montage.filters draws for ``model``'s weights now (the reference)."""
    out = tmp_path / f"ref-{len(list(tmp_path.iterdir()))}"
    return montage.filters(model, [layer], out, quiet=True, png=False, **options).canvas(layer)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    """A tiny Keras model fit 3 epochs with the recorder; the weights captured independently."""
    import keras

    m, (x, y) = tiny_keras(), data()
    seen = []

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append([w.copy() for w in m.get_weights()])

        def on_epoch_end(self, epoch, logs=None):
            seen.append([w.copy() for w in m.get_weights()])

    out = tmp_path_factory.mktemp("hist") / "run"
    with montage.Recorder(out, m, range="step", quiet=True) as rec:
        m.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[Capture(), rec.keras_callback()])
    return out, seen


def test_keras_fit_steps_equal_filters_of_each_steps_weights(keras_run, tmp_path):
    import keras

    out, seen = keras_run
    h = montage.open(out)
    assert isinstance(h, montage.opened.History) and h.steps == [0, 1, 2, 3]
    assert not np.array_equal(seen[0][0], seen[-1][0])   # the kernels did change
    ref = keras.models.clone_model(tiny_keras())
    for step, weights in enumerate(seen):
        ref.set_weights(weights)
        for layer in ("c1", "c2"):
            np.testing.assert_array_equal(h.canvas(layer, step=step), filters_canvas(ref, layer, tmp_path))
    st = h.stats("c2", step=3)
    norms = np.sqrt((seen[3][2].reshape(-1, 5).astype(np.float64) ** 2).sum(0))
    np.testing.assert_allclose(st["norm"], norms, rtol=1e-6)
    assert st["dead"] == [] and st["mean_norm"] == pytest.approx(norms.mean())
    assert "4 steps 0 .. 3" in repr(h)


def test_torch_loop_steps_equal_filters_of_each_steps_weights(tmp_path):
    sys.modules.setdefault("triton", None)   # torch's triton crashes beside TensorFlow's LLVM
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 3),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = torch.rand(16, 3, 8, 8), torch.rand(16, 3)
    seen = []
    imgs = random_images(tmp_path / "imgs", 2, side=8)
    with montage.Recorder(tmp_path / "run", net, quiet=True, range="step", cmap="viridis", images=imgs) as rec:
        for step in range(3):
            seen.append({k: v.clone() for k, v in net.state_dict().items()})
            rec.snapshot(step * 10)
            assert net.training   # the probe's forward pass leaves the module training
            loss = ((net(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    h = montage.open(tmp_path / "run")
    assert h.steps == [0, 10, 20]
    assert len(h.stats("2", step=20)["act_max"]) == 3 and h.stats("0", step=0)["act_mean"][0] is not None
    assert not torch.equal(seen[0]["0.weight"], seen[2]["0.weight"])
    for i, state in enumerate(seen):
        net.load_state_dict(state)
        for layer in ("0", "2"):
            np.testing.assert_array_equal(h.canvas(layer, step=i * 10),
                                          filters_canvas(net, layer, tmp_path, cmap="viridis"))


def test_one_range_for_every_step_and_differences_follow_the_change(tmp_path):
    m = tiny_keras()
    k0, b0 = m.get_layer("c1").get_weights()
    delta = np.zeros_like(k0)
    delta[..., 0] = np.abs(k0).max()          # filter 0 grows, filter 1 shrinks, the rest stay
    delta[..., 1] = -0.5 * np.abs(k0).max()
    with montage.Recorder(tmp_path / "run", m, layers="c1", quiet=True, clip=0) as rec:
        rec.snapshot(0)
        m.get_layer("c1").set_weights([k0 * 0.5, b0])
        rec.snapshot(1)
        m.get_layer("c1").set_weights([k0 * 0.5 + delta, b0])
        rec.snapshot(2)
    h = montage.open(tmp_path / "run")
    v0, v1 = h.canvas("c1", step=0).astype(float), h.canvas("c1", step=1).astype(float)
    # one range: half the weights is half the contrast around the middle; step 0 is filters' own
    np.testing.assert_array_equal(v0, filters_canvas(m_with(m, k0, b0), "c1", tmp_path, clip=0))
    # beyond the held range: none at step 0 (clip 0), filters 0 and 1 pushed past it at step 2 (of 4)
    assert h.stats("c1", step=0)["clipped"] == 0 and 0 < h.stats("c1", step=2)["clipped"] <= 0.5
    inside = cells(h["views"][0]["blocks"][0]["grid"])
    assert v1[inside].std() == pytest.approx(v0[inside].std() / 2, rel=0.02)
    d = h.canvas("c1", step=2, mode="previous").astype(int)   # RdBu_r: red up, blue down, white none
    view = h["views"][2 * 3 + 1]
    grid = view["blocks"][0]["grid"]
    pitch = grid["cell_h"] * grid["scale"] + grid["gap"]
    cell = lambda r: d[r * pitch:r * pitch + grid["cell_h"] * grid["scale"], :grid["cell_w"] * grid["scale"]]  # noqa: E731
    lut = np.array(h["history"]["colormaps"]["diff"]["lut"])
    # the largest change (+A, filter 0) is the colormap's end; -A/2 a quarter along; none its centre
    for row, at in ((0, 255), (1, 64), (2, 128), (3, 128)):
        assert (cell(row) == lut[at]).all(), (row, cell(row)[0, 0], lut[at])
    assert lut[255][0] > lut[255][2] and lut[64][2] > lut[64][0]   # up is red, down blue
    first = h.canvas("c1", step=2, mode="first")
    assert not np.array_equal(first, d.astype(np.uint8))   # since first also holds the halving
    nrm = view["blocks"][0]["normalize"]
    assert nrm["mode"] == "symmetric"   # the colour bar's range: -A .. A
    assert -nrm["lo"][0] == nrm["hi"][0] == pytest.approx(float(delta.max()))


def cells(g):
    """Mask of a grid's cell pixels (its gaps left out)."""
    ph, pw = g["cell_h"] * g["scale"] + g["gap"], g["cell_w"] * g["scale"] + g["gap"]
    ys, xs = np.arange(g["rows"] * ph - g["gap"]), np.arange(g["cols"] * pw - g["gap"])
    return ((ys % ph) < g["cell_h"] * g["scale"])[:, None] & ((xs % pw) < g["cell_w"] * g["scale"])[None, :]


def m_with(m, k, b):
    m.get_layer("c1").set_weights([k, b])
    return m


def test_resume_continues_and_refuses_what_it_must(keras_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(keras_run[0], out)
    m = tiny_keras()
    with montage.Recorder(out, m, range="step", quiet=True) as rec:
        assert rec.steps == [0, 1, 2, 3]
        with pytest.raises(montage.MontageError, match="step 3 is already recorded"):
            rec.snapshot(3)
        rec.snapshot(7)
        with pytest.raises(montage.MontageError, match="should be a whole number"):
            rec.snapshot(-1)
    assert montage.open(out).steps == [0, 1, 2, 3, 7]
    before = sorted(p.name for p in (out / "steps").iterdir())
    import keras

    wide = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(6, 3, name="c1")], name="wide")
    with pytest.raises(montage.MontageError, match="history of another model") as e:
        montage.Recorder(out, wide, quiet=True)
    assert "\n" not in str(e.value)
    with pytest.raises(montage.MontageError, match="no layer|not found|layers are|c9"):
        montage.Recorder(tmp_path / "new", m, layers="c9", quiet=True)
    assert sorted(p.name for p in (out / "steps").iterdir()) == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(montage.MontageError, match="not empty|no montage history"):
        montage.Recorder(tmp_path / "mine", m, quiet=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_full_disk_skips_the_step_and_training_goes_on(tmp_path, monkeypatch, capsys):
    from montage import render_history

    m, (x, y) = tiny_keras(), data()
    real = render_history.write_block
    calls = {"n": 0}

    def full(canvas, base, *args):
        calls["n"] += 1
        if "00000002" in str(base):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(base))
        return real(canvas, base, *args)

    monkeypatch.setattr(render_history, "write_block", full)
    with montage.Recorder(tmp_path / "run", m) as rec:
        m.fit(x, y, epochs=3, verbose=0, callbacks=[rec.keras_callback()])
    assert rec.skipped == [2]
    assert "step 2 skipped: the disk is full" in capsys.readouterr().err
    h = montage.open(tmp_path / "run")
    assert h.steps == [0, 1, 3]
    assert sorted(p.name for p in (tmp_path / "run" / "steps").iterdir()) == ["00000000", "00000001", "00000003"]
    with pytest.raises(Exception):   # asked to stop: the error reaches the loop
        with montage.Recorder(tmp_path / "stop", m, on_full_disk="stop", quiet=True) as rec:
            rec.snapshot(2)
            rec.snapshot(5)


KILLED = textwrap.dedent("""
    import sys, time
    import montage
    from montage import render_history
    rec = montage.Recorder(sys.argv[1], sys.argv[2], quiet=True)
    rec.snapshot(0)
    rec.snapshot(1)
    rec._wait()
    real = render_history.write_block
    def slow(canvas, base, *a):
        real(canvas, base, *a)
        print("writing", flush=True)
        time.sleep(60)
    render_history.write_block = slow
    rec.snapshot(2)
    time.sleep(60)
""")


def test_sigkill_during_a_snapshot_keeps_earlier_steps_and_the_page(tmp_path):
    m = tiny_keras()
    m.save(tmp_path / "tiny.keras")
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(montage.__file__).parents[1]))
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(out), str(tmp_path / "tiny.keras")],
                         stdout=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline() == b"writing\n"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    partial = [n.name for n in (out / "steps").iterdir() if n.name.startswith(".")]
    assert len(partial) == 1 and partial[0].startswith(".00000002.partial-")   # killed mid-step
    h = montage.open(out)
    assert h.steps == [0, 1]
    for step in (0, 1):
        assert h.canvas("c1", step=step).shape[:2] == (4 * 7 - 1, 3 * 7 - 1)
    assert (out / "index.html").read_text().count('src="viewer/history.js"') == 1
    with montage.Recorder(out, str(tmp_path / "tiny.keras"), quiet=True) as rec:   # continues
        assert rec.steps == [0, 1]
        rec.snapshot(2)
    h = montage.open(out)
    assert h.steps == [0, 1, 2]
    # the same weights under the range held from step 0 (read back from history.json): the same picture
    np.testing.assert_array_equal(h.canvas("c2", step=2), h.canvas("c2", step=1))
    assert not [n for n in (out / "steps").iterdir() if n.name.startswith(".")]
    assert siblings(tmp_path) == []   # the lock went with the recorder


def test_open_reads_any_output_back(tmp_path):
    m = tiny_keras()
    r = montage.filters(m, "c1", tmp_path / "f", quiet=True)
    back = montage.open(tmp_path / "f")
    assert type(back) is montage.result.Result
    assert back == json.loads(json.dumps(r, default=json_default))   # the manifest, as written
    np.testing.assert_array_equal(back.canvas("c1"), r.canvas("c1"))
    imgs = random_images(tmp_path / "imgs", 2, side=8)
    f = montage.features(m, imgs, tmp_path / "maps", quiet=True)
    back = montage.open(tmp_path / "maps")
    assert back["kind"] == "features" and len(back["views"]) == 2
    np.testing.assert_array_equal(back.canvas("c2", image=1), f.canvas("c2", image=1))
    with pytest.raises(montage.MontageError, match="no manifest.json"):
        montage.open(tmp_path)


def test_page_slider_shows_the_steps_tiles_and_readout(tmp_path):
    from test_viewer import ARGS, CHROMIUM, cell_point, open_page, wait_drawn, zoom_to_block

    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (the CI script does)")
    from playwright.sync_api import sync_playwright

    m = tiny_keras()
    k0, b0 = m.get_layer("c1").get_weights()
    weights = [k0, k0 * 0.5, k0 * 0.5 + 0.01]
    with montage.Recorder(tmp_path / "run", m, layers="c1", quiet=True) as rec:
        for step, k in zip((0, 5, 9), weights):
            m.get_layer("c1").set_weights([k, b0])
            rec.snapshot(step)
    h = montage.open(tmp_path / "run")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = open_page(browser, (tmp_path / "run" / "index.html").as_uri())
        url = "montage.viewer.world.getItemAt(0).source.tilesUrl"
        page.wait_for_function("document.getElementById('history').dataset.step === '9'")
        assert "steps/00000009/layers/00_c1_files/" in page.evaluate(url)   # opens at the last step
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("document.getElementById('history').dataset.step === '5'")
        wait_drawn(page)
        assert "steps/00000005/layers/00_c1_files/" in page.evaluate(url)
        assert page.evaluate("document.getElementById('step').value") == "1"
        block = h["views"][3]["blocks"][0]
        zoom_to_block(page, block)
        f, c = 2, 1                                   # filter 2, input channel 1: cell 2 * 3 + 1
        x, y = cell_point(page, block, f * 3 + c, (0.1, 0.1))
        page.mouse.click(x, y)                        # pins the cell (its weight at y, x = 0, 0)
        page.wait_for_function("document.getElementById('history-readout').dataset.value !== undefined")
        got = page.evaluate("Object.assign({}, document.getElementById('history-readout').dataset)")
        assert float(got["value"]) == pytest.approx(float(weights[1][0, 0, c, f]), rel=1e-6)
        assert float(got["change"]) == pytest.approx(float(weights[1][0, 0, c, f] - k0[0, 0, c, f]), rel=1e-5)
        page.select_option("#history select", "1")    # change since the previous step: diff tiles
        wait_drawn(page)
        assert "steps/00000005/layers/00_c1.previous_files/" in page.evaluate(url)
        assert page.evaluate("document.getElementById('colorbar').querySelector('.range').textContent"
                             ).count("RdBu_r") == 1
        curve = page.locator("#history .curves canvas").first.bounding_box()
        page.mouse.click(curve["x"] + 1, curve["y"] + curve["height"] / 2)   # the curve's left end: step 0
        page.wait_for_function("document.getElementById('history').dataset.step === '0'")
        page.click("#history button")                 # play: on to the last step, then stops
        page.wait_for_function("document.getElementById('history').dataset.step === '9'", timeout=10000)
        assert page.errors == []
        browser.close()


def test_cli_history_over_checkpoints_and_another_architecture(tmp_path, capsys):
    import keras

    from montage.cli import main

    m = tiny_keras()
    w = m.get_weights()
    for epoch, scale in ((1, 1.0), (3, 0.5), (5, 0.25)):
        m.set_weights([x * scale for x in w])
        m.save(tmp_path / f"epoch_{epoch}.keras")
    keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(6, 3, name="c1")]).save(tmp_path / "other_7.keras")
    args = ["--out", str(tmp_path / "out"), "--layer", "c1", "--range", "step"]
    assert main(["history", str(tmp_path / "epoch_1.keras"), str(tmp_path / "epoch_3.keras"), *args]) == 0
    h = montage.open(tmp_path / "out")
    assert h.steps == [1, 3]   # the epochs in the names
    m.set_weights([x * 0.5 for x in w])
    np.testing.assert_array_equal(h.canvas("c1", step=3), filters_canvas(m, "c1", tmp_path))
    capsys.readouterr()
    assert main(["history", str(tmp_path / "epoch_5.keras"), str(tmp_path / "other_7.keras"), *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "other_7.keras" in err[0] and "another architecture" in err[0], err
    assert montage.open(tmp_path / "out").steps == [1, 3, 5]   # nothing earlier lost, the good one kept


def test_batches_callback_and_a_diverged_step(tmp_path):
    m, (x, y) = tiny_keras(), data()
    with montage.Recorder(tmp_path / "run", m, layers="c1", quiet=True) as rec:
        m.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[rec.keras_callback(every_batches=3)])
        assert rec.steps == [0, 3, 6]    # 4 batches an epoch, counted across epochs
        k, b = m.get_layer("c1").get_weights()
        k[0, 0, 0, 0], k[0, 0, 0, 1] = np.nan, np.inf    # a diverged training goes on being recorded
        m.get_layer("c1").set_weights([k, b])
        rec.snapshot(7)
    h = montage.open(tmp_path / "run")
    assert h.steps == [0, 3, 6, 7]
    st = h.stats("c1", step=7)
    assert st["norm"][0] > 0 and st["norm"][1] is None   # NaN left out of a norm; an inf one is none
    assert tuple(h.canvas("c1", step=7)[0, 0, :3]) == tuple(h["nan_color"])   # drawn as filters draws NaN


def test_probe_images_give_activation_statistics_and_dead_channels(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="c1")])
    imgs = random_images(tmp_path / "imgs", 3, side=8)
    with montage.Recorder(tmp_path / "run", m, images=imgs, quiet=True) as rec:
        rec.snapshot(0)
        k, b = m.get_layer("c1").get_weights()
        b[2] = -1e4                     # channel 2 never fires again
        m.get_layer("c1").set_weights([k, b])
        rec.snapshot(1)
    h = montage.open(tmp_path / "run")
    ref = [acts["c1"] for _, acts in montage.activations(m, imgs, ["c1"])]   # the same pictures, now
    ref = np.concatenate(ref).reshape(-1, 4)
    st = h.stats("c1", step=1)
    np.testing.assert_allclose(st["act_max"], ref.max(0), rtol=1e-6)
    np.testing.assert_allclose(st["act_mean"], ref.mean(0), rtol=1e-5)
    assert st["act_dead"] == [2] and st["act_dead_share"] == 0.25
    assert 2 not in h.stats("c1", step=0)["act_dead"]
    with pytest.raises(montage.MontageError, match="probe option"):
        montage.Recorder(tmp_path / "bad", m, images=imgs, probe={"colour": 1}, quiet=True)
