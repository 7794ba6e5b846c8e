"""Hostile files: no code runs, no local file leaks, no lock writes through, nothing montage did not
write is deleted, no bomb is unpacked, no tampered partial result indexes past its own lists.

Each test builds the hostile input itself and checks the exit code, the one line, and the disk
after: the victim files byte for byte, no output written.
"""

import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from helpers import one_line, random_images, run, small_model, snapshot

try:
    import torch
except ImportError:
    torch = None

if torch is not None:
    class _Writer(torch.nn.Module):
        """A TorchScript module whose __setstate__ writes into any file the user can write."""

        def __init__(self, path: str):
            super().__init__()
            self.path = path
            self.buf = torch.zeros(4, dtype=torch.uint8)

        def forward(self, x):
            return x

        @torch.jit.export
        def __getstate__(self) -> Tuple[str, bool]:
            return (self.path, self.training)

        @torch.jit.export
        def __setstate__(self, state: Tuple[str, bool]) -> None:
            self.path = state[0]
            self.training = state[1]
            self.buf = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
            self.buf.fill_(88)


SECRET = np.arange(5 * 3 * 3 * 3, dtype=np.float32) * 1.5 + 7     # what a leak would show


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.keras"
    small_model(side=32).save(path)
    return path


def _rewrite_weights(src, dst, edit):
    """A copy of the .keras archive ``src`` at ``dst`` whose weights file ``edit(h5py.File)`` changed."""
    import h5py

    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        edit(f)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return dst


def _first_kernel(f):
    group = f["layers"]["conv2d"]["vars"]
    shape = group["0"].shape
    del group["0"]
    return group, shape


# ---- security: code execution and file disclosure ----

def test_torchscript_is_refused_without_unsafe_and_runs_no_code(tmp_path):
    if torch is None:
        pytest.skip("torch is not installed")
    victim = tmp_path / "victim.txt"
    with warnings.catch_warnings():   # torch.jit.script is deprecated, yet archives are still about
        warnings.simplefilter("ignore")
        torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), _Writer(str(victim)))).save(
            str(tmp_path / "evil.pt"))
    for cmd in ("layers", "filters", "features"):
        victim.write_bytes(b"safe")
        extra = () if cmd == "layers" else ("--out", str(tmp_path / "o"))
        one_line(run(cmd, "--model", str(tmp_path / "evil.pt"), *extra), "TorchScript archive", "--unsafe")
        assert victim.read_bytes() == b"safe" and not (tmp_path / "o").exists()
    r = run("layers", "--model", str(tmp_path / "evil.pt"), "--unsafe")   # trusted: the code runs (so the
    assert r.returncode == 0 and victim.read_bytes() == b"XXXX", r.stderr  # test above could have failed)


@pytest.mark.parametrize("how", ["external storage", "external link", "virtual dataset", "soft link"])
def test_hdf5_pointing_outside_itself_is_refused_before_reading(model_file, tmp_path, how):
    import h5py

    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET.tobytes())
    with h5py.File(tmp_path / "secret.h5", "w") as s:
        s["data"] = SECRET.reshape(3, 3, 3, 5)

    def edit(f):
        group, shape = _first_kernel(f)
        if how == "external storage":
            group.create_dataset("0", shape, "float32", external=[(str(secret), 0, SECRET.nbytes)])
        elif how == "external link":
            group["0"] = h5py.ExternalLink(str(tmp_path / "secret.h5"), "/data")
        elif how == "virtual dataset":
            layout = h5py.VirtualLayout(shape, "float32")
            layout[...] = h5py.VirtualSource(str(tmp_path / "secret.h5"), "data", shape)
            group.create_virtual_dataset("0", layout)
        else:
            f["elsewhere"] = np.ones(shape, np.float32)
            group["0"] = h5py.SoftLink("/elsewhere")

    evil = _rewrite_weights(model_file, tmp_path / "evil.keras", edit)
    for cmd in ("filters", "features"):
        one_line(run(cmd, "--model", str(evil), "--layer", "conv_a", "--out", str(tmp_path / "o")),
                 "montage refuses to read it", "evil.keras")
        assert not (tmp_path / "o").exists()


def test_weights_file_with_external_storage_is_refused(tmp_path):
    import h5py

    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET.tobytes())
    with h5py.File(tmp_path / "evil.weights.h5", "w") as f:
        f.create_dataset("layers/conv2d/vars/0", (3, 3, 3, 5), "float32",
                         external=[(str(secret), 0, SECRET.nbytes)])
    one_line(run("filters", "--weights", str(tmp_path / "evil.weights.h5"), "--out", str(tmp_path / "o")),
             "stores dataset", "in another file")
    assert not (tmp_path / "o").exists()


def test_sharded_keras_weights_are_checked_shard_by_shard(model_file, tmp_path):
    """``--weights NAME.weights.json``: Keras reads the shards its index names; each is checked."""
    import h5py
    import keras

    model = keras.models.load_model(model_file)
    folder = tmp_path / "w"
    folder.mkdir()
    model.save_weights(folder / "m.weights.json", max_shard_size=0.0000012)
    shards = sorted(folder.glob("*.weights.h5"))
    assert len(shards) > 1
    r = run("filters", "--model", str(model_file), "--weights", str(folder / "m.weights.json"), "--layer", "conv_a",
            "--out", str(tmp_path / "ok"))
    assert r.returncode == 0, r.stderr           # the real thing loads
    index = json.loads((folder / "m.weights.json").read_text())
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET.tobytes())

    def attempt(needle):
        one_line(run("filters", "--model", str(model_file), "--weights", str(folder / "m.weights.json"),
                     "--out", str(tmp_path / "o")), needle)
        assert not (tmp_path / "o").exists()

    key = next(iter(index["weight_map"]))
    evil = dict(index, weight_map={**index["weight_map"], key: "../elsewhere.weights.h5"})
    (folder / "m.weights.json").write_text(json.dumps(evil))
    attempt("outside its folder")
    (folder / "m.weights.json").write_text(json.dumps(index))
    last = shards[-1]
    last.rename(tmp_path / "moved.h5")
    last.symlink_to(tmp_path / "moved.h5")
    attempt("is a link")
    last.unlink()
    with h5py.File(last, "w") as f:
        f.create_dataset("vars/0", (3, 3, 3, 5), "float32", external=[(str(secret), 0, SECRET.nbytes)])
    attempt("in another file")


# ---- bombs ----

def test_zip_member_that_unpacks_to_far_more_is_refused(model_file, tmp_path):
    with zipfile.ZipFile(model_file) as z:
        members = {n: z.read(n) for n in z.namelist()}
    evil = tmp_path / "bomb.keras"
    with zipfile.ZipFile(evil, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in members.items():
            z.writestr(n, data if n != "model.weights.h5" else data + bytes(96 << 20))
    assert evil.stat().st_size < 2 << 20
    one_line(run("filters", "--model", str(evil), "--out", str(tmp_path / "o")), "unpacks", "refuses")
    assert not (tmp_path / "o").exists()


def test_hdf5_dataset_that_declares_far_more_than_it_stores_is_refused(model_file, tmp_path):
    def edit(f):
        f["layers"]["conv2d"]["vars"].create_dataset("big", (16384, 16384), "float32", chunks=(256, 256))

    evil = _rewrite_weights(model_file, tmp_path / "bomb.keras", edit)
    one_line(run("filters", "--model", str(evil), "--out", str(tmp_path / "o")), "declares", "refuses")
    assert not (tmp_path / "o").exists()


def test_deeply_nested_config_is_one_line(model_file, tmp_path):
    with zipfile.ZipFile(model_file) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["config.json"] = b'{"a": ' * 100000 + b"1" + b"}" * 100000
    evil = tmp_path / "deep.keras"
    with zipfile.ZipFile(evil, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    one_line(run("filters", "--model", str(evil), "--out", str(tmp_path / "o")), "could not read model")
    assert not (tmp_path / "o").exists()


# ---- data loss: the lock and its records ----

def test_a_hard_linked_lock_file_is_not_written_through(model_file, tmp_path):
    other = tmp_path / "OTHER.txt"
    other.write_text("the user's notes\n")
    os.link(other, tmp_path / ".out.montage-lock")
    one_line(run("filters", "--model", str(model_file), "--out", str(tmp_path / "out")), "has other links")
    assert other.read_text() == "the user's notes\n" and not (tmp_path / "out").exists()


def test_a_lock_held_before_its_record_is_written_names_no_pid(model_file, tmp_path):
    import fcntl

    with open(tmp_path / ".out.montage-lock", "w") as held:      # a run that has just taken it
        fcntl.flock(held, fcntl.LOCK_EX)
        line = one_line(run("filters", "--model", str(model_file), "--out", str(tmp_path / "out")),
                        "another montage run is writing --out")
    assert "pid" not in line and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", [".out.my-notes", ".out.abcdefgh.partial", ".out.old-0123abcd"])
def test_names_planted_in_a_lock_file_are_never_removed(model_file, tmp_path, name):
    """A planted (or another user's) lock record naming a folder of the user's: reported, kept."""
    notes = tmp_path / name
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    (tmp_path / ".out.montage-lock").write_text(json.dumps({"pid": 1, "partial": [name], "old": [name]}))
    before = snapshot(notes)
    r = run("filters", "--model", str(model_file), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert snapshot(notes) == before
    if name != ".out.my-notes":     # montage's own pattern, but not montage's files: said, not removed
        assert "alone: a stopped run named it, but it holds 'notes.txt'" in r.stderr.decode(), r.stderr


def test_a_real_stale_staging_folder_is_still_removed(model_file, tmp_path):
    stale = tmp_path / ".out.abcdefgh.partial"
    (stale / "layers").mkdir(parents=True)
    (stale / "layers" / "00_conv_a.png").write_bytes(b"half")
    (tmp_path / ".out.montage-lock").write_text(json.dumps({"pid": 1, "partial": [stale.name], "old": []}))
    r = run("filters", "--model", str(model_file), "--out", str(tmp_path / "out"))
    assert r.returncode == 0 and not stale.exists() and "removed" in r.stderr.decode(), r.stderr


# ---- --merge: its images, and tampered partial results ----

@pytest.fixture
def partial(model_file, tmp_path):
    imgs = random_images(tmp_path / "imgs", 3, side=32)
    r = run("examples", "--model", str(model_file), "--image", *map(str, imgs), "--layer", "conv_a",
            "--score", "mean", "--top", "2", "--shard", "0/1", "--out", str(tmp_path / "p0"))
    assert r.returncode == 0, r.stderr
    return tmp_path / "p0", imgs


def _merge(model_file, p, out, *extra):
    return run("examples", "--model", str(model_file), "--merge", str(p), "--out", str(out), "--image",
               str(Path(p).parent), *extra)


def test_merge_never_writes_over_the_images_it_reads(model_file, tmp_path):
    """Images inside a montage output (its PNGs), merged with --overwrite into that output."""
    r = run("filters", "--model", str(model_file), "--layer", "conv_a", "--out", str(tmp_path / "F"))
    assert r.returncode == 0, r.stderr
    img = next((tmp_path / "F" / "layers").glob("*.png"))
    r = run("examples", "--model", str(model_file), "--image", str(img), "--layer", "conv_a", "--score", "mean",
            "--shard", "0/1", "--out", str(tmp_path / "p0"))
    assert r.returncode == 0, r.stderr
    before = snapshot(tmp_path / "F")
    one_line(_merge(model_file, tmp_path / "p0", tmp_path / "F", "--overwrite"), "holds the input")
    assert snapshot(tmp_path / "F") == before


def test_a_fifo_named_in_a_partial_result_does_not_hang(model_file, partial, tmp_path):
    p0, imgs = partial
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    m = json.loads((p0 / "manifest.json").read_text())
    m["identity"]["images"][0] = str(fifo)
    (p0 / "manifest.json").write_text(json.dumps(m))
    one_line(_merge(model_file, p0, tmp_path / "o"), "not a regular file")
    assert not (tmp_path / "o").exists()


def test_a_partial_result_cannot_publish_a_picture_outside_the_merge_roots(model_file, partial, tmp_path):
    """A partial from someone else names a private picture (directly, or by a link inside the
    allowed folder): refused unless the user allows its folder with --image."""
    p0, imgs = partial
    private = tmp_path / "private"
    secret = random_images(private, 1, side=32)[0]
    (tmp_path / "imgs" / "link.png").symlink_to(secret)
    for named in (secret, tmp_path / "imgs" / "link.png"):
        _tamper(p0, lambda m: m["identity"]["images"].__setitem__(0, str(named)))
        r = run("examples", "--model", str(model_file), "--merge", str(p0), "--out", str(tmp_path / "o"),
                "--image", str(tmp_path / "imgs"))
        one_line(r, "is outside what --merge may read")
        assert not (tmp_path / "o").exists()
    r = run("examples", "--merge", str(p0), "--out", str(tmp_path / "o"), "--image", str(tmp_path))
    assert r.returncode == 0, r.stderr      # allowed by the user: the model comes from the partial


def _tamper(p0, manifest=None, arrays=None):
    if manifest:
        m = json.loads((p0 / "manifest.json").read_text())
        manifest(m)
        (p0 / "manifest.json").write_text(json.dumps(m))
    if arrays:
        data = dict(np.load(p0 / "partial.npz"))
        arrays(data)
        np.savez(p0 / "partial.npz", **data)


CASES = {
    "image index past the list": (None, lambda d: d["layer0/images"].__setitem__((0, 0), 99)),
    "negative image index": (None, lambda d: d["layer0/images"].__setitem__((0, 0), -1)),
    "map position past the map": (None, lambda d: d["layer0/where"].__setitem__((0, 0), 10 ** 6)),
    "widened arrays": (None, lambda d: d.__setitem__("layer0/scores", np.zeros((2, 9), np.float32))),
    "non-numeric shard": (lambda m: m.__setitem__("shard", ["a", "b"]), None),
    "three-element shard": (lambda m: m.__setitem__("shard", [0, 1, 2]), None),
    "extra identity key": (lambda m: m["identity"].__setitem__("extra", 1), None),
    "skipped is not a list of paths": (lambda m: m.__setitem__("skipped", [{"path": 1}]), None),
}


@pytest.mark.parametrize("case", CASES)
def test_tampered_partial_results_are_one_line(model_file, partial, tmp_path, case):
    p0, imgs = partial
    _tamper(p0, *CASES[case])
    one_line(_merge(model_file, p0, tmp_path / "o"), "is not a partial result")
    assert not (tmp_path / "o").exists()


def test_partials_of_two_montage_versions_name_the_difference(model_file, partial, tmp_path):
    p0, imgs = partial
    r = run("examples", "--model", str(model_file), "--image", *map(str, imgs), "--layer", "conv_a",
            "--score", "mean", "--top", "2", "--shard", "1/2", "--out", str(tmp_path / "p1"))
    assert r.returncode == 0, r.stderr
    _tamper(p0, lambda m: m["identity"].pop("score"))   # an older montage's partial, say
    one_line(run("examples", "--model", str(model_file), "--merge", str(tmp_path / "p1"), str(p0),
                 "--out", str(tmp_path / "o"), "--image", str(tmp_path)), "is not a partial result")


# ---- crashes that must be one line ----

def test_grid_of_empty_arrays_is_a_montage_error():
    import montage
    from montage.errors import MontageError

    for a, kw in ((np.zeros((0, 4, 4)), {}), (np.zeros((3, 0, 4)), {}), (np.zeros((3, 3, 2, 0)), {"kernel": True})):
        with pytest.raises(MontageError, match="empty array"):
            montage.grid(a, **kw)


@pytest.mark.parametrize("shape", [(0, 3, 3, 3), (4, 0, 3, 3), (4, 3, 0, 0)])
def test_zero_size_onnx_kernels(tmp_path, shape):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros(shape, np.float32), "conv.weight")
    k = numpy_helper.from_array(np.random.default_rng(0).normal(size=(2, 3, 3, 3)).astype(np.float32), "ok.weight")
    nodes = [helper.make_node("Conv", ["x", "ok.weight"], ["y"], name="ok"),
             helper.make_node("Conv", ["x", "conv.weight"], ["z"], name="empty")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", "c", "h", "w"])], [w, k])
    onnx.save(helper.make_model(g), tmp_path / "z.onnx")
    r = run("layers", "--model", str(tmp_path / "z.onnx"))
    assert r.returncode == 0 and "conv" in r.stdout.decode(), r.stderr
    one_line(run("filters", "--model", str(tmp_path / "z.onnx"), "--layer", "conv", "--out", str(tmp_path / "o")),
             "empty kernel")
    r = run("filters", "--model", str(tmp_path / "z.onnx"), "--layer", "all", "--out", str(tmp_path / "o"))
    assert r.returncode == 0 and "skipping 1 layer with an empty kernel" in r.stderr.decode(), r.stderr
    assert [b["layer"] for b in json.loads((tmp_path / "o" / "manifest.json").read_text())["views"][0]["blocks"]] \
        == ["ok"]


def test_zero_size_torch_conv(tmp_path):
    torch = pytest.importorskip("torch")
    import montage
    from montage.errors import MontageError

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Conv2d(2, 0, 3))
    with pytest.raises(MontageError, match="empty kernel"):
        montage.filters(module, ["1"], tmp_path / "o", quiet=True)
    m = montage.filters(module, "all", tmp_path / "o", quiet=True)
    assert [b["layer"] for b in m["views"][0]["blocks"]] == ["0"]
    assert Path(tmp_path / "o" / "index.html").is_file()


# ---- images that lie ----

def _liar_jpeg(path, side=4000):
    """A 64 x 64 JPEG whose header says ``side`` x ``side``: libjpeg warns of a premature end."""
    import struct

    import pyvips

    a = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)
    data = bytearray(pyvips.Image.new_from_array(a, interpretation="srgb").jpegsave_buffer(Q=90))
    i = data.find(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))
    return path


def _huge_png(path, side=100_000):
    """A PNG of a few hundred bytes whose header says ``side`` x ``side`` (grey, 8 bits)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = zlib.compress(b"\x00" * (side + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def test_an_image_whose_header_lies_is_bad(model_file, tmp_path):
    liar = _liar_jpeg(tmp_path / "liar.jpg")
    good = random_images(tmp_path / "ok", 1, side=40)[0]
    one_line(run("features", "--model", str(model_file), "--image", str(liar), "--out", str(tmp_path / "o")),
             "liar.jpg", "premature end", "--skip-bad")
    assert not (tmp_path / "o").exists()
    r = run("features", "--model", str(model_file), "--image", str(liar), str(good), "--skip-bad",
            "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert [s["path"] for s in json.loads((tmp_path / "o" / "manifest.json").read_text())["skipped"]] == [str(liar)]


def test_a_header_past_the_pixel_limit_is_refused_at_once(model_file, tmp_path):
    import time

    huge = _huge_png(tmp_path / "huge.png")
    assert huge.stat().st_size < 1000
    t0 = time.monotonic()
    one_line(run("features", "--model", str(model_file), "--image", str(huge), "--out", str(tmp_path / "o")),
             "100,000 x 100,000 pixels is more than montage decodes")
    assert time.monotonic() - t0 < 60 and not (tmp_path / "o").exists()


def test_float_grey_images_are_scaled_not_black(tmp_path):
    """Pillow's 'F' TIFFs (float grey, libvips' b-w): values 0..1 or 0..255, never black."""
    from PIL import Image

    from montage.images import read_rgb

    a = np.random.default_rng(1).uniform(0, 1, (40, 48)).astype(np.float32)
    for scale in (1.0, 255.0):
        Image.fromarray(a * np.float32(scale), mode="F").save(tmp_path / "f.tif")
        got = read_rgb(tmp_path / "f.tif", (40, 48))
        want = (a * np.float32(255)).astype(np.uint8)
        assert (got == got[..., :1]).all() and np.abs(got[..., 0].astype(int) - want).max() <= 1, scale


def test_three_d_onnx_models_show_layers_and_filters(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(2).normal(size=(4, 2, 3, 3, 3)).astype(np.float32)
    g = helper.make_graph([helper.make_node("Conv", ["x", "c3.weight"], ["y"], name="c3")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6, 6])],
                          [numpy_helper.from_array(w, "c3.weight")])
    onnx.save(helper.make_model(g), tmp_path / "v.onnx")
    r = run("layers", "--model", str(tmp_path / "v.onnx"))
    assert r.returncode == 0 and "Conv3D" in r.stdout.decode(), r.stderr
    r = run("filters", "--model", str(tmp_path / "v.onnx"), "--layer", "c3", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    block = json.loads((tmp_path / "o" / "manifest.json").read_text())["views"][0]["blocks"][0]
    assert (block["grid"]["rows"], block["grid"]["cols"]) == (4, 2)
    one_line(run("features", "--model", str(tmp_path / "v.onnx"), "--out", str(tmp_path / "f")),
             "rank 5", "layers and filters can be shown")


# ---- found by review: more ways out of a model file ----

def test_onnx_external_data_needs_unsafe(tmp_path):
    """A graph may keep its weights in any file of its folder: read only with --unsafe."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    secret = tmp_path / "sub" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(SECRET[:2 * 3 * 3 * 3].tobytes())
    w = TensorProto(name="w.weight", data_type=TensorProto.FLOAT, dims=[2, 3, 3, 3],
                    data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "sub/secret.bin"), ("offset", "0"), ("length", str(2 * 3 * 3 * 3 * 4))):
        w.external_data.add(key=k, value=v)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w.weight"], ["y"], name="c")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])], [w])
    onnx.save(helper.make_model(g), tmp_path / "m.onnx")
    one_line(run("filters", "--model", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "o")),
             "sub/secret.bin", "--unsafe")
    assert not (tmp_path / "o").exists()
    r = run("filters", "--model", str(tmp_path / "m.onnx"), "--unsafe", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr     # trusted: read (so the refusal above is the only guard)


def test_hdf5_that_is_also_a_zip_is_checked_as_both(tmp_path):
    import h5py

    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET.tobytes())
    poly = tmp_path / "poly.h5"
    with h5py.File(poly, "w") as f:
        f.create_dataset("layers/conv2d/vars/0", (3, 3, 3, 5), "float32", external=[(str(secret), 0, SECRET.nbytes)])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", "{}")
    poly.write_bytes(poly.read_bytes() + buf.getvalue())
    assert zipfile.is_zipfile(poly)
    one_line(run("filters", "--model", str(poly), "--out", str(tmp_path / "o")), "in another file")


def test_many_small_unwritten_datasets_add_up_to_a_bomb(model_file, tmp_path):
    def edit(f):
        for i in range(40):     # 40 x 36 MiB declared, none stored: each under the floor
            f["layers"]["conv2d"].create_dataset(f"pad{i}", (3, 3, 1024, 1024), "float32", chunks=(3, 3, 64, 64))

    evil = _rewrite_weights(model_file, tmp_path / "bomb.keras", edit)
    one_line(run("filters", "--model", str(evil), "--out", str(tmp_path / "o")), "declare", "together")


def test_corrupt_archives_are_one_line(model_file, tmp_path):
    with zipfile.ZipFile(tmp_path / "deflated.keras", "w", zipfile.ZIP_DEFLATED) as z:
        with zipfile.ZipFile(model_file) as src:
            for n in src.namelist():
                z.writestr(n, src.read(n))
    data = bytearray((tmp_path / "deflated.keras").read_bytes())
    with zipfile.ZipFile(tmp_path / "deflated.keras") as z:
        info = z.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 100:start + 400] = bytes(range(256)) + bytes(44)    # garbage inside the deflate stream
    (tmp_path / "zlib.keras").write_bytes(bytes(data))
    one_line(run("filters", "--model", str(tmp_path / "zlib.keras"), "--out", str(tmp_path / "o")),
             "could not read model")


@pytest.mark.parametrize("record", ["[]", '{"partial": 5, "old": "x"}', "[" * 100000])
def test_lock_records_of_another_shape_name_nothing(model_file, tmp_path, record):
    (tmp_path / ".out.montage-lock").write_text(record)
    r = run("filters", "--model", str(model_file), "--out", str(tmp_path / "out"))
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr


def test_partial_arrays_are_checked_before_they_are_read(model_file, partial, tmp_path):
    import struct

    p0, imgs = partial
    with zipfile.ZipFile(p0 / "partial.npz") as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4398046511104,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    members["layer0/total.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    with zipfile.ZipFile(p0 / "partial.npz", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    one_line(_merge(model_file, p0, tmp_path / "o"), "is not a partial result")


@pytest.mark.parametrize("which", ["manifest.json", "partial.npz"])
def test_a_fifo_in_a_partial_folder_does_not_hang(model_file, partial, tmp_path, which):
    p0, imgs = partial
    (p0 / which).unlink()
    os.mkfifo(p0 / which)
    one_line(_merge(model_file, p0, tmp_path / "o"), "is not a partial result")


def test_a_partial_with_a_bad_input_shape_is_one_line(model_file, partial, tmp_path):
    p0, imgs = partial
    _tamper(p0, lambda m: m["identity"].__setitem__("input_shape", []))
    one_line(_merge(model_file, p0, tmp_path / "o"), "is not a partial result")


GLIB_LOG = """
import ctypes, ctypes.util, glob, os, sys
if sys.argv[1] == "routed":
    from montage.vips import vips
    pyvips = vips()
else:
    import pyvips
found = glob.glob(os.path.join(os.path.dirname(pyvips.__file__), "..", "pyvips_binary.libs", "libvips*.so*"))
lib = ctypes.CDLL(found[0] if found else ctypes.util.find_library("glib-2.0"))
lib.g_log(b"GLib-GObject", 8, b"%s", b"g_object_unref: assertion 'G_IS_OBJECT (object)' failed")
"""


def test_glib_criticals_reach_the_logger_not_the_terminal():
    """The GLib-GObject-CRITICAL line a bad TIFF printed: GLib's domains go to pyvips' logger."""
    import subprocess
    import sys

    bare = subprocess.run([sys.executable, "-c", GLIB_LOG, "bare"], capture_output=True, text=True)
    if bare.returncode != 0:
        pytest.skip(f"GLib's g_log is not reachable here: {bare.stderr[-200:]}")
    assert "GLib-GObject-CRITICAL" in bare.stderr          # the line exists without montage's routing
    routed = subprocess.run([sys.executable, "-c", GLIB_LOG, "routed"], capture_output=True, text=True)
    assert routed.returncode == 0 and routed.stderr == "", routed.stderr
