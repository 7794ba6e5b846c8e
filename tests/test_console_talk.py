"""What a run says, and when (issue 27): counts in the singular where they are one, no progress
bars in a log (unless asked), a terminal told at once what is loading, the prompt back as soon as
the result is written; ``dir(montage)`` lists the lazy API."""

import os
import pty
import select
import subprocess
import sys
import time

import pytest

import montage
from helpers import random_images, small_model


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    root = tmp_path_factory.mktemp("talk")
    small_model(side=32).save(root / "small.keras")
    img = random_images(root / "in", 1, side=32)[0]
    return root, str(root / "small.keras"), str(img)


def _timed(cmd, stderr_fd=None, env=None):
    """Run ``cmd``; the chunks of what it writes to stderr (a pipe, or the pty ``stderr_fd``'s
    master), each with its arrival time, and the exit time, from the start."""
    e = dict(os.environ, **(env or {}))
    t0 = time.monotonic()
    if stderr_fd is None:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e)
        fd = p.stderr.fileno()
    else:
        master, slave = stderr_fd
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, env=e)
        os.close(slave)
        fd = master
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        assert ready, "no output for 2 minutes"
        try:
            data = os.read(fd, 65536)
        except OSError:    # the pty's other end closed
            data = b""
        if not data:
            break
        chunks.append((time.monotonic() - t0, data.decode("utf-8", "replace")))
    p.wait(60)
    return chunks, time.monotonic() - t0, p.returncode


def _features(one, out, *extra):
    root, model, img = one
    return [sys.executable, "-m", "montage", "features", "--model", model, "--image", img, "--layer", "conv_a",
            "--size", "32", "--out", str(root / out), *extra]


def test_a_log_gets_counts_in_the_singular_no_bars_and_the_prompt_at_once(one):
    chunks, end, rc = _timed(_features(one, "log"))
    err = "".join(c for _, c in chunks)
    assert rc == 0, err
    assert "1 image x 5 feature maps of 1 layer;" in err and "montage: 1 image -> " in err, err
    assert "%|" not in err and "\r" not in err and "loading" not in err, err   # a log: lines only
    last = max(t for t, c in chunks if "1 image -> " in c)
    assert end - last < 1.0, (end, last)     # no framework teardown after the last line


def test_bars_in_a_log_when_asked(one):
    chunks, _, rc = _timed(_features(one, "asked"), env={"MONTAGE_PROGRESS": "1"})
    err = "".join(c for _, c in chunks)
    assert rc == 0 and "images: 100%|" in err, err


def test_a_terminal_is_told_at_once_what_is_loading(one):
    import fcntl
    import struct
    import termios

    root, model, _ = one
    fds = pty.openpty()
    fcntl.ioctl(fds[1], termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))   # a terminal 100 wide
    chunks, end, rc = _timed(_features(one, "tty"), stderr_fd=fds)
    err = "".join(c for _, c in chunks)
    assert rc == 0, err
    first_t, first = chunks[0]
    assert first.startswith(f"montage: loading {model} (and its framework"), first
    said = min(t for t, c in chunks if "feature maps of 1 layer" in c)
    assert first_t < said / 2, (first_t, said)             # long before the model is ready
    assert "\r\x1b[K" in err and "%|" in err               # the status erased; bars on a terminal


def test_repr_and_table_count_in_the_singular(one, tmp_path):
    root, model, img = one
    m = montage.features(model, [img], tmp_path / "f", layers=["conv_a"], size=32, quiet=True)
    assert "1 image x 5 maps" in repr(m)
    k = montage.filters(model, ["conv_a"], tmp_path / "k", quiet=True)
    assert "15 kernels of 1 layer ->" in repr(k)
    import keras

    lone = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 1)])
    assert str(montage.layers(lone)).endswith("\n1 conv layer, 1 kernel, 2 parameters")


def test_dir_lists_the_lazy_api():
    names = dir(montage)
    for name in ("filters", "features", "examples", "activations", "layers", "grid", "load_model", "MontageError"):
        assert name in names, names


def test_filters_cell_is_pixels_per_kernel_side_and_says_when_rounded(one, tmp_path, capsys):
    from montage.cli import build_parser

    root, model, _ = one
    for cell, scale, said in ((6, 2, None), (8, 2, "3x3 kernels 6 px (2 per weight)"),
                              (2, 1, "3x3 kernels 3 px (1 per weight: the least)"), (9, 3, None)):
        m = montage.filters(model, ["conv_a"], tmp_path / f"c{cell}", cell=cell)
        g = m["views"][0]["blocks"][0]["grid"]
        assert (g["cell_h"] * g["scale"], g["scale"]) == (3 * scale, scale)
        err = capsys.readouterr().err
        assert (f"--cell {cell} is not a whole number of pixels per weight: {said}" in err) if said \
            else "--cell" not in err, err
    helps = build_parser()._subparsers._group_actions[0].choices
    text = " ".join(helps["filters"].format_help().split())
    assert "each kernel at most N pixels across, a whole number of pixels per weight" in text
    assert "pixels across a cell's longer side" in text
