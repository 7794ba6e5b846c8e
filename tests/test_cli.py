"""The command line: every bad input is one line on stderr and exit code 2."""

import subprocess
import sys

import pytest

from helpers import small_model
from montage.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "small.keras"
    small_model().save(path)
    return str(path)


def _fails(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("montage: error:") and "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


def test_unknown_and_non_conv_layers(capsys, model_file, tmp_path):
    _fails(capsys, ["filters", "--model", model_file, "--layer", "nope", "--out", str(tmp_path / "o")],
           "unknown layer 'nope'", "conv_a, conv_b, conv_c")
    _fails(capsys, ["filters", "--model", model_file, "--layer", "pool", "--out", str(tmp_path / "o")],
           "MaxPooling2D", "conv_a")
    assert not (tmp_path / "o").exists()


def test_out_not_empty_and_unwritable(capsys, model_file, tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("keep")
    _fails(capsys, ["filters", "--model", model_file, "--layer", "conv_a", "--out", str(out)],
           "not empty", "--overwrite")
    assert (out / "x").read_text() == "keep"
    _fails(capsys, ["filters", "--layer", "conv_a", "--out", "/proc/montage-out"], "cannot be written")
    _fails(capsys, ["filters", "--layer", "conv_a", "--out", str(out / "x" / "sub")], "not a folder")


def test_bad_options(capsys, tmp_path):
    _fails(capsys, ["filters", "--cmap", "nope", "--out", str(tmp_path / "o")], "unknown colormap", "viridis")
    _fails(capsys, ["filters", "--gap-color", "1,2", "--out", str(tmp_path / "o")], "colour")
    _fails(capsys, ["filters", "--normalize", "bogus", "--out", str(tmp_path / "o")], "invalid choice")
    _fails(capsys, ["filters", "--clip", "60", "--out", str(tmp_path / "o")], "--clip")


def test_examples_help_leaves_out_what_examples_refuse(capsys, tmp_path):
    assert main(["examples", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--top" in text and "--gap-color" in text
    for flag in ("--normalize", "--clip", "--cmap", "--nan-color"):
        assert flag not in text
        _fails(capsys, ["examples", flag, "1" if flag == "--clip" else "cell" if flag == "--normalize" else "red",
                        "--out", str(tmp_path / "o")], flag, "does not apply to examples")
    assert not (tmp_path / "o").exists()


def test_bad_model_files(capsys, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"garbage")
    _fails(capsys, ["filters", "--model", str(bad), "--out", str(tmp_path / "o")], "could not read model")
    _fails(capsys, ["layers", "--model", str(tmp_path / "missing.h5")], "neither a built-in model")
    _fails(capsys, ["filters", "--model", "vgg16", "--weights", str(tmp_path / "no.weights.h5"),
                    "--out", str(tmp_path / "o")], "neither hed, imagenet, random nor an existing file")


def test_canvas_too_big_for_memory(capsys, model_file, tmp_path):
    _fails(capsys, ["filters", "--model", model_file, "--layer", "conv_b", "--cell", "60000",
                    "--out", str(tmp_path / "o")], "memory", "--cell")
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_layers_command(capsys, model_file):
    assert main(["layers", "--model", model_file]) == 0
    out = capsys.readouterr().out
    assert "conv_b" in out and "(3, 3, 5, 7)" in out and "pool" not in out


def test_a_real_process_exits_2_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "montage", "filters", "--cmap", "nope", "--out",
                        str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "unknown colormap 'nope'" in r.stderr


def test_help_does_not_import_tensorflow():
    code = ("import sys, contextlib, io\n"
            "from montage.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['filters', '--help'])\n"
            "    except SystemExit: pass\n"
            "bad = [m for m in ('tensorflow', 'keras', 'numba', 'pyvips') if m in sys.modules]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
