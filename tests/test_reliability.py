"""Nothing lost, no traceback: the unhappy paths, through the command line in real processes.

Each test asserts the exit code, the one line on stderr and the exact state of the
disk afterwards: the user's files intact byte for byte, no hidden siblings left.
"""

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import montage
from helpers import one_line, random_images, read_manifest, run, siblings, small_model, snapshot
from montage.images import read_rgb

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def tmpfs(path, size, why="(needs root)"):
    """A small tmpfs mounted at ``path`` for the block; the test is skipped where that is impossible."""
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here {why}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.keras"
    small_model(side=32).save(path)
    return path


# --- --overwrite and --out: never delete what montage did not write -----------------------------

def test_overwrite_refuses_folders_montage_did_not_write(model_file, tmp_path):
    photos = tmp_path / "p"
    random_images(photos, 2)
    (photos / "notes.txt").write_text("mine")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("keep")
    before = snapshot(tmp_path)
    one_line(run("features", "--model", str(model_file), "--image", str(photos), "--out", str(photos),
                 "--overwrite"), "not written by montage", "--overwrite only replaces")
    one_line(run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(model_file.parent),
                 "--overwrite"), "not written by montage")
    one_line(run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(home),   # --out ~
                 "--overwrite"), "not written by montage")
    # A montage output with a file of the user's added, at the top or among the layers.
    out = tmp_path / "o"
    assert run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out),
               "--quiet").returncode == 0
    (out / "notes.txt").write_text("added")
    one_line(run("filters", "--model", str(model_file), "--layer", "conv_b", "--out", str(out), "--overwrite"),
             "holds 'notes.txt'")
    (out / "notes.txt").unlink()
    (out / "layers" / "my photo.jpg").write_bytes(b"jpeg")
    one_line(run("filters", "--model", str(model_file), "--layer", "conv_b", "--out", str(out), "--overwrite"),
             "holds 'layers/my photo.jpg'")
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("o/")} == before
    assert siblings(tmp_path) == []


def test_out_never_holds_or_lies_inside_an_input(model_file, tmp_path):
    out = tmp_path / "o"
    assert run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out),
               "--quiet").returncode == 0
    png = out / "layers" / "00_conv_a.png"
    before = snapshot(out)
    one_line(run("features", "--model", str(model_file), "--image", str(png), "--out", str(out),
                 "--overwrite"), "holds the input")
    photos = tmp_path / "photos"
    random_images(photos, 1)
    one_line(run("features", "--model", str(model_file), "--image", str(photos), "--out",
                 str(photos / "maps")), "inside the input folder")
    assert snapshot(out) == before and not (photos / "maps").exists()


def test_cwd_symlink_and_mount_point_are_refused_before_any_work(model_file, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    one_line(run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", ".", cwd=here),
             "the folder you are in")
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    one_line(run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(link)),
             "symbolic link")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        one_line(run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(mnt)),
                 "mount point", "montage-out")
        assert list(mnt.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "here", "mnt"]


def test_rename_failure_says_where_the_finished_output_is(model_file, tmp_path):
    code = (
        "import os, sys\n"
        "import montage._output as o\n"
        "real = os.rename\n"
        "def rename(a, b):\n"
        "    if str(a).endswith('.partial') and not str(b).endswith('-montage'):\n"
        "        raise OSError(16, 'Device or resource busy')\n"
        "    return real(a, b)\n"
        "o.os.rename = rename\n"
        "from montage.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-c", code, "filters", "--model", str(model_file), "--layer",
                        "conv_a", "--out", str(out)], capture_output=True)
    line = one_line(r, "could not move the finished output", "Device or resource busy")
    assert str(tmp_path / "o-montage") in line
    assert read_manifest(tmp_path / "o-montage")["kind"] == "filters"
    assert not out.exists() and siblings(tmp_path) == []


# --- signals, killed runs, concurrent runs ------------------------------------------------------

def _start_slow_run(model_file, tmp_path, n=300):
    photos = tmp_path / "in"
    random_images(photos, n, side=48)
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "montage", "features", "--model", str(model_file), "--image",
                          str(photos), "--out", str(out), "--batch-size", "4", "--cell", "64", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:    # until the run is writing atlases into its partial folder
        parts = list(tmp_path.glob(".o.*.partial/images/*.dzi"))
        if parts or p.poll() is not None:
            break
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()[1].decode()[-2000:]
    return p, photos, out


def test_sigterm_stops_cleanly(model_file, tmp_path):
    p, photos, out = _start_slow_run(model_file, tmp_path)
    before = snapshot(photos)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    r = subprocess.CompletedProcess(p.args, p.returncode, b"", err)
    one_line(r, "interrupted; nothing was written to --out", code=128 + signal.SIGTERM)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in"]
    assert snapshot(photos) == before


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(model_file, tmp_path):
    p, photos, out = _start_slow_run(model_file, tmp_path)
    p.kill()
    p.communicate()
    left = siblings(tmp_path)
    assert any(n.endswith(".partial") for n in left) and ".o.montage-lock" in left
    r = run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert b"the unfinished output of a run that was stopped" in r.stderr
    assert siblings(tmp_path) == [] and read_manifest(out)["kind"] == "filters"


def test_a_run_killed_while_replacing_gets_the_old_output_back(model_file, tmp_path):
    out = tmp_path / "o"
    assert run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out),
               "--quiet").returncode == 0
    old = snapshot(out)
    # The state a SIGKILL leaves between moving the old output aside and moving the new one in.
    os.rename(out, tmp_path / ".o.old-0123abcd")
    partial = tmp_path / ".o.x1y2z3w4.partial"   # mkdtemp: 8 characters
    partial.mkdir()
    (partial / "manifest.json").write_text("{}")
    (tmp_path / ".o.montage-lock").write_text(json.dumps(
        {"pid": 999999, "host": "h", "partial": [partial.name], "old": [".o.old-0123abcd"]}))
    (tmp_path / ".o.unrelated").write_text("not montage's")
    r = run("layers", "--model", str(model_file))     # reads only: leaves them alone
    assert r.returncode == 0 and (tmp_path / ".o.old-0123abcd").exists()
    r = run("filters", "--model", str(model_file), "--layer", "conv_b", "--out", str(out))
    err = r.stderr.decode().splitlines()
    assert r.returncode == 2 and len(err) == 3, err
    assert "put back the previous output" in err[0] and "unfinished output of a run" in err[1]
    assert "not empty" in err[2]   # the old output is back in place, so this run needs --overwrite
    assert snapshot(out) == old
    assert siblings(tmp_path) == [".o.unrelated"]


def test_interrupt_while_the_old_output_is_removed_tells_the_truth(model_file, tmp_path):
    out = tmp_path / "o"
    assert run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out),
               "--quiet").returncode == 0
    code = (
        "import os, signal, sys\n"
        "import montage._output as o\n"
        "real = o.shutil.rmtree\n"
        "def rmtree(path, **kw):\n"
        "    if '.old-' in str(path):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)   # arrives while the old output is removed\n"
        "    return real(path, **kw)\n"
        "o.shutil.rmtree = rmtree\n"
        "from montage.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-c", code, "filters", "--model", str(model_file), "--layer",
                        "conv_b", "--out", str(out), "--overwrite", "--quiet"], capture_output=True)
    one_line(r, "interrupted; the new output was already complete in", code=128 + signal.SIGTERM)
    assert b"conv_b" in (out / "manifest.json").read_bytes()
    assert siblings(tmp_path) == []


def test_concurrent_overwrites_are_safe(tmp_path):
    model = small_model()
    out = tmp_path / "o"
    montage.filters(model, "conv_a", out, quiet=True)
    results = []

    def worker(layer):
        for _ in range(15):
            try:
                montage.filters(model, layer, out, overwrite=True, quiet=True)
                results.append("ok")
            except montage.MontageError as e:
                assert "another montage run" in str(e), e
                results.append("busy")

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("conv_a", "conv_b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 30 and "ok" in results
    assert read_manifest(out)["kind"] == "filters" and siblings(tmp_path) == []


# --- runs that could not start, or crashed --------------------------------------------------------

def _python_for(uid):
    """An interpreter user ``uid`` may run, with this venv's packages, or None."""
    for exe in (sys.executable, "/usr/bin/python3"):
        r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", exe, "-c",
                            "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == str(sys.version_info[:2]):
            return exe
    return None


def test_a_user_without_a_writable_home_can_render(model_file):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as user nobody")
    nobody = 65534
    exe = _python_for(nobody)
    if exe is None:
        pytest.skip("no Python interpreter of this version that user nobody can run")
    work = Path(tempfile.mkdtemp(prefix="montage-nobody-"))
    try:
        os.chmod(work, 0o777)
        shutil.copy(model_file, work / "small.keras")
        os.chmod(work / "small.keras", 0o644)
        site = next(p for p in sys.path if p.endswith("site-packages"))
        code = (f"import site, sys; site.addsitedir({site!r}); sys.path.insert(0, {str(ROOT)!r})\n"
                "from montage.cli import main\nsys.exit(main(sys.argv[1:]))\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        env.update(HOME="/nonexistent", KERAS_HOME=str(work / ".keras"))
        r = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", exe, "-c",
                            code, "filters", "--model", "small.keras", "--layer", "conv_a", "--out", "o",
                            "--quiet"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        assert (work / "o" / "index.html").stat().st_uid == nobody
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    # Random weights at a large --cell: tiles far bigger than the limit.
    out = tmp_path / "o"
    r = run("filters", "--weights", "random", "--layer", "block1_conv2", "--cell", "24", "--no-png",
            "--out", str(out), preexec_fn=_limit_file_size)
    one_line(r, "file size limit (ulimit -f)", str(tmp_path), "nothing was kept")
    assert list(tmp_path.iterdir()) == []
    with tmpfs(tmp_path / "small", "1m", "(needs root) for a really full disk") as mnt:
        r = run("filters", "--weights", "random", "--layer", "block1_conv2", "--cell", "24", "--no-png",
                "--out", str(mnt / "o"))
        one_line(r, "out of disk space in", str(mnt), "free", "nothing was kept")
        assert list(mnt.iterdir()) == []


def test_forward_pass_memory_is_estimated_before_starting(tmp_path):
    r = run("features", "--weights", "random", "--size", "20000", "--layer", "block5_pool", "--out",
            str(tmp_path / "o"))
    one_line(r, "forward pass needs about", "GB per image", "--size")
    assert list(tmp_path.iterdir()) == []


def test_batch_size_shrinks_to_the_memory_budget():
    from montage.models import load_model, prepare

    loaded = load_model(small_model(side=32))
    notes = []
    fwd = prepare(loaded, None, None, 1000, budget=10_000_000, note=notes.append)
    assert 1 <= fwd.batch_size < 1000 and "--batch-size 1000" in notes[0]
    with pytest.raises(montage.MontageError, match="forward pass needs about"):
        prepare(loaded, None, None, None, budget=1000)


def test_bad_numbers_and_names_are_one_line(model_file, tmp_path):
    for seed in ("-1", "99999999999"):
        one_line(run("filters", "--weights", "random", "--seed", seed, "--out", str(tmp_path / "o")),
                 f"--seed {seed} is out of range")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>hi</p>")
    one_line(run("serve", str(site), "--port", "70000"), "70000")
    shutil.rmtree(site)
    bad_out = os.fsencode(tmp_path) + b"/out\xff"
    one_line(run(b"filters", b"--model", os.fsencode(model_file), b"--layer", b"conv_a", b"--out", bad_out),
             "not valid UTF-8")
    assert list(tmp_path.iterdir()) == []


def test_file_names_that_are_not_utf8(model_file, tmp_path):
    photos = tmp_path / "in"
    src = random_images(photos, 1)[0]
    odd = os.fsencode(photos) + b"/caf\xe9.png"
    os.rename(src, odd)
    for spec in (os.fsencode(photos), odd):
        out = tmp_path / ("o1" if spec == odd else "o2")
        r = run(b"features", b"--model", os.fsencode(model_file), b"--image", spec, b"--out",
                os.fsencode(out), b"--quiet")
        assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
        assert read_manifest(out)["views"][0]["name"] == os.fsdecode(odd)


def test_model_named_like_a_template_placeholder(model_file, tmp_path):
    odd = tmp_path / "{{MANIFEST}}.keras"
    shutil.copy(model_file, odd)
    r = run("filters", "--model", str(odd), "--layer", "conv_a", "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    page = (tmp_path / "o" / "index.html").read_text()
    assert page.count('{"montage": ') == 1 and "<title>{{MANIFEST}} filters" in page


def test_weights_and_class_errors_name_the_problem(tmp_path):
    import keras

    inp = keras.Input((16, 16, 3))
    keras.Model(inp, keras.layers.Conv2D(6, 3)(keras.layers.Conv2D(4, 3)(inp))).save_weights(
        tmp_path / "other.weights.h5")
    one_line(run("filters", "--weights", str(tmp_path / "other.weights.h5"), "--out", str(tmp_path / "o")),
             "do not fit this model", "(3, 3, 3, 64)")

    @keras.saving.register_keras_serializable(package="montage_test")
    class MyConv(keras.layers.Conv2D):
        pass

    inp = keras.Input((16, 16, 3))
    keras.Model(inp, MyConv(4, 3, name="mine")(inp)).save(tmp_path / "custom.keras")
    one_line(run("layers", "--model", str(tmp_path / "custom.keras")), "'MyConv'", "custom class")


# --- features on the common model shapes -----------------------------------------------------------

def _save(model, path):
    model.save(path)
    return str(path)


def test_features_on_free_size_grey_and_rgba_models(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(5, 3, padding="valid", name="c 2")(x)
    free = keras.Model(inp, x)
    img = random_images(tmp_path / "in", 1, side=50)[0]
    out = tmp_path / "free"
    r = run("features", "--model", _save(free, tmp_path / "free.keras"), "--image", str(img), "--size", "40",
            "--layer", "c1", "p1", "c 2", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    blocks = {b["layer"]: b for b in read_manifest(out)["views"][0]["blocks"]}
    assert blocks["c 2"]["map_shape"] == [18, 18, 5] and blocks["p1"]["map_shape"] == [20, 20, 4]
    for channels in (1, 4):
        inp = keras.Input((36, 36, channels))
        m = keras.Model(inp, keras.layers.Conv2D(3, 3, name="c")(inp))
        out = tmp_path / f"ch{channels}"
        r = run("features", "--model", _save(m, tmp_path / f"ch{channels}.keras"), "--image", str(img),
                "--size", "64", "--out", str(out), "--normalize", "layer")
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        assert b"the model takes 36 x 36 (width x height) images: --size 64 is not used" in r.stderr
        block = read_manifest(out)["views"][0]["blocks"][0]
        rgb = read_rgb(img, 36).astype(np.float32)
        if channels == 1:   # ITU-R BT.601 luma
            x = np.round(rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        else:               # opaque alpha
            x = np.concatenate([rgb, np.full((36, 36, 1), 255.0, np.float32)], -1)
        want = np.asarray(m(x[None].astype(np.float32)))[0]
        np.testing.assert_allclose([block["normalize"]["lo"][0], block["normalize"]["hi"][0]],
                                   [want.min(), want.max()], rtol=1e-5, atol=1e-4)


def test_unbuilt_sequential_is_one_line(tmp_path):
    import keras

    seq = keras.Sequential([keras.layers.Conv2D(4, 3, name="c1")])
    with pytest.warns(UserWarning, match="not yet been built"):
        seq.save(tmp_path / "unbuilt.keras")
    for cmd in ("features", "filters"):
        one_line(run(cmd, "--model", str(tmp_path / "unbuilt.keras"), "--out", str(tmp_path / "o")),
                 "is not built", "model.build")


# --- more of the same kind, found by an adversarial pass -------------------------------------------

def test_overwrite_looks_at_every_file_of_an_old_output(model_file, tmp_path):
    out = tmp_path / "o"
    assert run("filters", "--model", str(model_file), "--layer", "all", "--out", str(out),
               "--quiet").returncode == 0
    for extra, named, added in (("layers/00_my-notes.txt", "layers/00_my-notes.txt", "layers/00_my-notes.txt"),
                                ("layers/01_conv_b_files/mine/thesis.tex", "layers/01_conv_b_files/mine",
                                 "layers/01_conv_b_files/mine"),
                                ("images/1_holiday.jpg", "images/1_holiday.jpg", "images"),
                                ("openseadragon/images/notes.txt", "openseadragon/images/notes.txt",
                                 "openseadragon/images/notes.txt")):
        f = out / extra
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("precious")
        one_line(run("filters", "--model", str(model_file), "--layer", "all", "--out", str(out), "--overwrite"),
                 "not written by montage", repr(named))
        assert f.read_text() == "precious"
        shutil.rmtree(out / added) if (out / added).is_dir() else f.unlink()
    r = run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out), "--overwrite",
            "--quiet")
    assert r.returncode == 0 and siblings(tmp_path) == []


def _wrapping(module, name, *before):
    """Patch source that runs the lines ``before`` each time ``module.name`` is called."""
    body = "".join(f"    {line}\n" for line in before)
    return (f"import {module} as _m\n_real = _m.{name}\n"
            f"def _wrapped(*a, **k):\n{body}    return _real(*a, **k)\n_m.{name} = _wrapped\n")


def _patched_run(patch, *args):
    """``montage ARGS`` in a process where ``patch`` (Python source) ran first."""
    code = f"import os, signal, sys, shutil\n{patch}\nfrom montage.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, timeout=300)


def test_a_signal_whose_exception_a_callback_dropped_still_stops_the_run(model_file, tmp_path):
    # libvips' callbacks drop a Python exception raised in them: only the record of the signal is left.
    patch = "import montage._lock as lk\n" + _wrapping("montage.write", "write_dzi",
                                                       "lk.stop_requested.append(signal.SIGTERM)")
    r = _patched_run(patch, "filters", "--model", str(model_file), "--layer", "conv_a", "--out",
                     str(tmp_path / "o"))
    one_line(r, "interrupted; nothing was written", code=128 + signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []


def test_the_parent_of_out_vanishing_mid_run_is_one_line(model_file, tmp_path):
    parent = tmp_path / "sub"
    patch = _wrapping("montage.manifest", "write_values", f"shutil.rmtree({str(parent)!r})")
    r = _patched_run(patch, "filters", "--model", str(model_file), "--layer", "conv_a", "--out",
                     str(parent / "o"))
    one_line(r, "was moved or deleted while montage wrote into it")
    assert list(tmp_path.iterdir()) == []


def test_an_old_output_that_cannot_be_removed_is_named_and_found_later(model_file, tmp_path):
    out = tmp_path / "o"
    assert run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out),
               "--quiet").returncode == 0
    patch = ("import montage._output as o\n"
             "def rmtree(path, onerror=None, **kw):\n"
             "    onerror(os.rmdir, path, (PermissionError, PermissionError(13, 'Permission denied'), None))\n"
             "o.shutil.rmtree = rmtree\n")
    r = _patched_run(patch, "filters", "--model", str(model_file), "--layer", "conv_b", "--out", str(out),
                     "--overwrite")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    old = [n for n in siblings(tmp_path) if ".old-" in n]
    assert len(old) == 1 and f"could not remove the previous output, moved aside to {tmp_path / old[0]}" \
        in r.stderr.decode()
    r = run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out), "--overwrite")
    assert r.returncode == 0 and f"found {tmp_path / old[0]}" in r.stderr.decode()


def test_full_disk_beside_out_is_one_line(model_file, tmp_path):
    with tmpfs(tmp_path / "full", "64k") as mnt:
        (mnt / "filler").write_bytes(b"x" * 60_000)
        with pytest.raises(OSError):
            (mnt / "filler2").write_bytes(b"x" * 8192)     # really full now
        (mnt / "filler2").unlink()
        r = run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(mnt / "o"))
        one_line(r, str(mnt))
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"]


def test_repeated_layer_options_add_up(model_file, tmp_path):
    r = run("filters", "--model", str(model_file), "--layer", "conv_a", "--layer", "conv_b", "conv_a",
            "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert [b["layer"] for b in read_manifest(tmp_path / "o")["views"][0]["blocks"]] == ["conv_a", "conv_b"]


def test_api_arguments_of_the_wrong_type_are_montage_errors(tmp_path):
    model = small_model()
    for kwargs in ({"layers": 5}, {"layers": []}, {"out": 123}, {"out": ""}, {"cell": "x"}, {"gap": None},
                   {"clip": "a"}, {"png_cell": None}, {"weights": 5}, {"model": None}):
        args = {"model": model, "layers": "conv_a", "out": tmp_path / "o", "quiet": True, **kwargs}
        with pytest.raises(montage.MontageError):
            montage.filters(**args)
    with pytest.raises(montage.MontageError, match="images"):
        montage.features(model, np.zeros((2, 2)), tmp_path / "o", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_out_created_while_rendering_is_not_replaced(model_file, tmp_path):
    out = tmp_path / "o"
    patch = _wrapping("montage.manifest", "write_values", f"os.makedirs({str(out)!r}, exist_ok=True)",
                      f"open(os.path.join({str(out)!r}, 'mine.txt'), 'w').write('precious')")
    r = _patched_run(patch, "filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(out))
    one_line(r, "could not move the finished output", "not empty", str(tmp_path / "o-montage"))
    assert (out / "mine.txt").read_text() == "precious"
    assert read_manifest(tmp_path / "o-montage")["kind"] == "filters" and siblings(tmp_path) == []


def test_a_symlink_where_the_lock_goes_is_one_line(model_file, tmp_path):
    (tmp_path / ".o.montage-lock").symlink_to(tmp_path / "elsewhere")
    r = run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(tmp_path / "o"))
    one_line(r, "cannot lock", ".o.montage-lock")
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "o").exists()


def test_a_stop_raised_inside_a_c_callback_prints_no_traceback(model_file, tmp_path):
    # What SIGTERM does when it lands while libvips runs a Python callback (through cffi).
    patch = ("import cffi\n"
             "ffi = cffi.FFI()\n"
             "def handler(x):\n"
             "    os.kill(os.getpid(), signal.SIGTERM)   # the CLI's handler raises here, inside C\n"
             "    return 0\n"
             "cb = ffi.callback('int(int)', handler)\n") + _wrapping("montage.write", "write_dzi", "cb(1)")
    r = _patched_run(patch, "filters", "--model", str(model_file), "--layer", "conv_a", "--out",
                     str(tmp_path / "o"))
    one_line(r, "interrupted; nothing was written", code=128 + signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []
