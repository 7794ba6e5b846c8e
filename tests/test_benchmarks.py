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
    for needle in ("block1_conv2", "tiling kernel", "feature maps", "DZI write", "optimize"):
        assert any(needle in n for n in names), needle
    for row in result["rows"]:
        assert row["value"] is not None and row["value"] > 0, row
