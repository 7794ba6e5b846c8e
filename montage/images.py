"""Find, check and read input images with libvips; batches of model-ready arrays."""

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .console import note, progress
from .fitting import fit_exactly, fitted, sides
from .errors import MontageError
from .paths import shown
from .preprocess import preprocess
from .vips import vips

EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"}
# Pillow's limit for a decompression bomb: a header may claim any size, and decoding what it
# claims (a 2 KB JPEG saying 65000 x 65000) takes minutes and gigabytes
MAX_PIXELS = 2 * 89_478_485
def sample_image():
    """A real photograph shipped by an installed dependency (matplotlib's Grace Hopper)."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise MontageError(f"matplotlib's sample photograph is missing ({path}): pass --image PATH")
    return path


# Real photographs that installed packages ship (scikit-image's are found without importing it).
DEMO_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
               "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "brick.png", "grass.png", "gravel.png",
               "camera.png", "coins.png", "moon.png")
CROP = "#crop="


def demo_images(n=256, seed=0):
    """A few hundred offline inputs: the photographs installed packages ship (matplotlib's Grace
    Hopper; scikit-image's, where it is installed), whole and as reproducible square crops
    named ``PHOTO#crop=left,top,side``."""
    import importlib.util

    pyvips = vips()

    photos = [sample_image()]
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0]) / "data"
        photos += [folder / name for name in DEMO_PHOTOS if (folder / name).is_file()]
    sizes = [(pyvips.Image.new_from_file(str(p)).width, pyvips.Image.new_from_file(str(p)).height) for p in photos]
    rng = np.random.default_rng(seed)
    out = [str(p) for p in photos]
    while len(out) < n:
        k = int(rng.integers(len(photos)))
        w, h = sizes[k]
        side = int(rng.uniform(0.3, 0.8) * min(w, h))
        left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        out.append(f"{photos[k]}{CROP}{left},{top},{side}")
    return out[:n]


def _cropped(path):
    """(file, (left, top, side)) of a demo crop name, or (path, None)."""
    name = os.fspath(path)
    if CROP in name and not os.path.exists(name):
        base, _, box = name.rpartition(CROP)
        try:
            left, top, side = (int(v) for v in box.split(","))
            return base, (left, top, side)
        except ValueError:
            pass
    return path, None


def find_images(specs, skipped=None):
    """Expand files, folders and globs into a sorted, de-duplicated list of paths.

    A folder contributes its image files (by extension, not recursive).

    Parameters
    ----------
    specs : path, list of paths, folders or globs, or None for the sample photograph
    skipped : list, optional
        Gets ``(path, reason)`` for each file of a folder that is left out for its
        extension (hidden files such as ``.DS_Store`` are left out without a word).
    """
    if not specs:
        return [sample_image()]
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    found = []
    for spec in specs:
        spec = str(spec)
        if not spec:
            raise MontageError("an image path is empty: give files, folders or globs")
        p = Path(spec)
        if p.is_dir():
            entries = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            files = [f for f in entries if f.suffix.lower() in EXTENSIONS]
            if skipped is not None:
                skipped += [(f, f"{f.suffix.lower() or 'no extension'}: not an image type montage reads "
                             f"({', '.join(sorted(EXTENSIONS))})") for f in entries
                            if f.suffix.lower() not in EXTENSIONS]
            if not files:
                raise MontageError(f"folder {shown(spec)} has no images ({', '.join(sorted(EXTENSIONS))})")
            found += files
        elif p.is_file():
            found.append(p)
        elif glob.has_magic(spec):
            files = sorted(Path(f) for f in glob.glob(spec) if Path(f).is_file())
            if not files:
                raise MontageError(f"no files match {shown(spec)}")
            found += files
        elif p.exists():
            raise MontageError(f"image {shown(spec)} is not a regular file or folder")
        else:
            raise MontageError(f"image {shown(spec)} does not exist")
    seen, unique = set(), []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _open(path, fail_on="truncated"):
    pyvips = vips()

    path, crop = _cropped(path)
    if crop is not None:
        left, top, side = crop
        im = pyvips.Image.new_from_file(os.fspath(path), fail_on=fail_on)
        return im.crop(left, top, min(side, im.width - left), min(side, im.height - top))
    name = os.fspath(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:   # libvips takes UTF-8 file names only: hand it the bytes instead
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise pyvips.Error(e.strerror) from None
        return pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on=fail_on)
    # fail_on="truncated": a cut-off JPEG/PNG is an error, not a grey bottom half
    return pyvips.Image.new_from_file(name, access="sequential", fail_on=fail_on)


def _unreadable(path, error):
    """'not a readable image' with libvips' last line of explanation, minus the path it repeats."""
    lines = [x.strip() for x in str(error).strip().splitlines() if x.strip()]
    path = shown(path)
    reason = (lines[-1] if lines else "unknown error").replace(f'"{path}"', "it").replace(path, "it")
    return f"not a readable image (truncated, or not JPEG/PNG/TIFF/WebP): {reason[:160]}"


def _size_problem(im):
    """Why an image's size (from its header) is refused, or None (any size is fitted to the
    model's input: the floor is the model's, checked on the input size)."""
    if im.width * im.height * (im.bands if im.format in ("float", "double") else 1) > MAX_PIXELS:  # floats: in memory
        return (f"{im.width:,} x {im.height:,} pixels is more than montage decodes ({MAX_PIXELS:,} pixels, "
                "Pillow's bomb limit): scale it down first")
    return None


# libjpeg only warns about missing data (a header that claims more than the file holds): such
# images come out grey, so this warning makes an image bad; other warnings are benign
_CUT_SHORT = ("premature end", "truncated", "unexpected end")


def read_rgb(path, size, resize="stretch"):
    """The image as (height, width, 3) uint8 RGB, fitted to ``size`` (a side or (height, width)).

    ``resize``: 'stretch' (as Keras' ``load_img(target_size=...)``), 'crop' (scaled so the
    tighter side is size / 0.875, then centre-cropped: torchvision's eval transform, 256 then
    224) or 'letterbox' (fitted inside, centred, padded with grey 114: YOLO's). Greyscale
    becomes RGB, alpha is flattened onto white, 16-bit is scaled to 8-bit.
    """
    pyvips = vips()

    h, w = sides(size)
    try:
        im = _open(path)
        if _size_problem(im):
            raise MontageError(f"{shown(path)}: {_size_problem(im)}")
        if im.format in ("float", "double") and im.interpretation != "scrgb":   # a float grey (Pillow's 'F'):
            im = im.copy_memory()     # 0..1 or 0..255, which libvips' colourspace would make black
            im = (im * 255 if im.max() <= 1.0 else im).cast("uchar")
        if im.hasalpha():
            im = im.flatten(background=[255] * (im.bands - 1) if im.format == "uchar"
                            else [65535] * (im.bands - 1))
        im = im.colourspace("srgb")          # grey, CMYK, 16-bit -> 8-bit sRGB
        if im.bands > 3:
            im = im.extract_band(0, n=3)
        im = fitted(im.cast("uchar"), h, w, resize)
        a = im.numpy()
    except pyvips.Error as e:
        raise MontageError(f"{shown(path)}: {_unreadable(path, e)}") from None
    if a.shape != (h, w, 3):   # resize can round a side to size +- 1
        a = fit_exactly(a, h, w)
    return a


def check(paths, bar=None):
    """(good, bad): bad is a list of (path, reason), found by decoding each image once.

    ``bar`` (a tqdm bar), if given, advances by one per image.
    """
    pyvips = vips()

    good, bad = [], []
    for p in paths:
        if bar is not None:
            bar.update(1)
        try:
            im = _open(p)
            if _size_problem(im):
                bad.append((p, _size_problem(im)))
                continue
            _decode_strictly(p)
            good.append(p)
        except pyvips.Error as e:
            bad.append((p, _unreadable(p, e)))
    return good, bad


def good_images(paths, skip_bad=False, quiet=False, shard=False):
    """(good, bad) of ``paths``, each image decoded once; bad ones stop the run unless ``skip_bad``
    (then each is named in one line). A ``shard`` of an examples run may be left with none."""
    if shard and not paths:
        return [], []
    with progress(len(paths), "checking images", "img", quiet or len(paths) < 50) as checking:
        good, bad = check(paths, checking)
    if bad and not skip_bad:
        more = f" ({len(bad)} of {len(paths)} images are bad)" if len(bad) > 1 else ""
        raise MontageError(f"{shown(bad[0][0])}: {bad[0][1]}{more}; nothing was written: fix or remove it, "
                           "or pass --skip-bad to render the others" + (" (to every shard)" if shard else ""))
    if not good and not shard:
        raise MontageError(f"none of the {len(paths)} images can be read: {shown(bad[0][0])}: {bad[0][1]}")
    for p, why in bad:
        note(f"skipping {shown(p)}: {why}", quiet)
    return good, bad


def _decode_strictly(path):
    """Decode every pixel (so truncation shows), failing on libjpeg's 'premature end' warning."""
    pyvips = vips()

    try:
        _open(path, "warning").avg()
    except pyvips.Error as e:
        if any(w in str(e).lower() for w in _CUT_SHORT):
            raise
        _open(path).avg()     # a benign warning: decode as every reader does


@dataclass
class Batch:
    paths: list
    rgb: np.ndarray       # (n, size, size, 3) uint8, for the overlay
    x: np.ndarray         # model input


def batches(paths, size, batch_size, loaded, channels=3):
    """Yield :class:`Batch` es of read and preprocessed images (``size``: side or (height, width)),
    fitted and preprocessed as ``loaded`` (a :class:`montage.net.Loaded`) records."""
    for i in range(0, len(paths), batch_size):
        chunk = paths[i:i + batch_size]
        rgb = np.stack([read_rgb(p, size, loaded.resize) for p in chunk])
        yield Batch(chunk, rgb, preprocess(rgb, loaded.preprocess, channels, loaded.bgr))
