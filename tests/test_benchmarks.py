"""The benchmark suite runs (quick sizes, no timing assertions) and its baselines are faithful."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.baselines import numpy_tile
from montage.colormap import colormap_lut, extended_lut
from montage.layout import Grid
from montage.kernel_cells import filter_cells
from montage.canvas import allocate, paint

ROOT = Path(__file__).resolve().parents[1]


def test_numpy_baseline_draws_the_same_canvas():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 6, 5)).astype(np.float32)
    colors = colormap_lut("magma")
    want = numpy_tile(kernel, colors, 3, 2)
    grid = Grid(5, 6, 30, 3, 3, 3, 2)
    got = paint(filter_cells(kernel, "filters", "rgb"), grid, kernel.min(), kernel.max(),
               extended_lut(colors, "magenta", "white", "white"), allocate(grid.height, grid.width, 3))
    np.testing.assert_array_equal(got[..., :3], want)


def test_quick_benchmarks_run_and_write_results(tmp_path):
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| benchmark | montage |" in r.stdout
    [path] = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert result["quick"] is True and result["machine"]["cores"] >= 1
    names = {row["name"] for row in result["rows"]}
    for needle in ("block1_conv2", "tiling kernel", "feature maps", "DZI write", "optimize", "ResNet-18"):
        assert any(needle in n for n in names), needle
    for row in result["rows"]:
        assert row["value"] is not None and row["value"] > 0, row


def _gpu_dry_runs(tmp_path, runs):
    """``bash benchmarks/gpu.sh dry-run ARGS`` for each (backend, args), side by side (mostly
    single-threaded compilation: two at once take little longer than one)."""
    import os

    procs = {}
    for backend, args in runs:
        out = tmp_path / backend
        out.mkdir()
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHON=sys.executable, OUT=str(out))
        procs[backend] = subprocess.Popen(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "dry-run", *args], cwd=ROOT,
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = {}
    for backend, p in procs.items():
        log, _ = p.communicate(timeout=900)
        assert p.returncode == 0, log[-3000:]
        [path] = (tmp_path / backend).glob("gpu-dry-*.json")
        assert f"-{backend}-" in path.name
        results[backend] = json.loads(path.read_text())
    return results


def _check_gpu_result(result, backend, batches):
    from benchmarks.gpu import PRODUCTS

    assert result["dry_run"] is True and result["card"] and result["device"].startswith(backend)
    assert result["machine"]["cores"] >= 1 and not result["skipped"]
    assert [f["batch"] for f in result["forward"]] == batches
    rows = {(r["product"], r["batch"]) for r in result["rows"]}
    assert rows == {(p.name, b) for p in PRODUCTS for b in batches}
    assert {p.name.split(",")[0].split(" ")[0] for p in PRODUCTS} >= {"features", "examples"}
    for r in result["rows"]:
        assert r["img_s"] > 0 and r["forward_img_s"] > 0 and r["ratio"] > 0 and r["cold_s"] > 0, r
    opt = [r for r in result["rows"] if r["product"].startswith("optimize")]
    assert len(opt) == len(batches)       # feature visualisation: a batch of channels beside one at a time
    for r in opt:
        assert r["channels_s"] > 0 and r["one_channel_s"] > 0 and r["projected_all_vgg16_256_steps_min"] > 0, r


def test_gpu_script_dry_run_with_jax_and_with_torch(tmp_path):
    """benchmarks/gpu.sh as the device runs it, at tiny sizes on this CPU, without TensorFlow:
    Keras on JAX (both batches) and on PyTorch (one)."""
    got = _gpu_dry_runs(tmp_path, [("jax", []), ("torch", ["--batches", "3"])])
    _check_gpu_result(got["jax"], "jax", [2, 4])
    _check_gpu_result(got["torch"], "torch", [3])


def test_gpu_script_is_one_prepared_script():
    """The device run installs the carried wheels (those the device lacks) and names the card."""
    text = (ROOT / "benchmarks" / "gpu.sh").read_text()
    for wheel in ("keras", "pyvips-binary", "isal", "cffi"):
        assert wheel in text.split("fetch)")[1].split(";;")[0], wheel
    assert "nvidia-smi" in text and "--target /tmp/site" in text
    from benchmarks.gpu import FULL, card

    assert FULL["batches"] == [128, 512] and FULL["deadline_s"] < 600
    assert card({"gpu": "NVIDIA H200, 143771 MiB"}, "jax on cuda:0") == "NVIDIA H200"
    assert card({"gpu": None}, "jax on cpu:0") == "none (jax on cpu:0)"
