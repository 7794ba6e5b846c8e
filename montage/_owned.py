"""What montage writes in an output folder, by name: what ``--overwrite`` may replace and
what the clean-up after a killed run may remove, and nothing else."""

import os
import re
import stat

from .paths import shown

# Every file montage writes in an output folder, by path relative to it: the page, the
# manifest, OpenSeadragon's files, and per layer or image an index, then a slug (see
# graph.slug), with its Deep Zoom pyramid, flat PNG, TIFF and values for the readout (in parts:
# NAME.values.js, NAME.values.1.js, ...; a features image's per layer: NAME.LL.values.js).
_ITEM = r"(layers|images)/\d+_[A-Za-z0-9_.-]+"
OWN_FILES = re.compile("|".join([
    r"index\.html", r"manifest\.json", r"viewer\.js", r"viewer\.css", r"partial\.npz", r"viewer/[a-z]+\.js",
    r"openseadragon/openseadragon\.min\.js", r"openseadragon/images/[A-Za-z0-9_.-]+\.png",
    _ITEM + r"\.(dzi|png|tif|view\.js|values(\.\d+)?\.js)",
    _ITEM + r"_files/(vips-properties\.xml|\d+/\d+_\d+\.(png|webp|jpg|jpeg))",
]))
OWN_DIRS = re.compile(r"openseadragon|openseadragon/images|viewer|layers|images|" + _ITEM + r"_files(/\d+)?")
# json.dump writes the manifest's keys in this order (see montage.manifest.header).
MANIFEST_HEAD = re.compile(rb'\{"montage": "[^"]*", "kind": "[a-z]+"')


def not_montage(folder):
    """Why ``folder`` is not a montage output (None when it is one): it has montage's manifest,
    every file in it is one that montage writes, and nothing is a symbolic link."""
    manifest = folder / "manifest.json"
    try:
        if not stat.S_ISREG(os.lstat(manifest).st_mode):   # a FIFO would block the read, a link lead away
            return "its manifest.json is not a file"
        with open(manifest, "rb") as f:
            head = f.read(200)
    except OSError:
        return "it has no montage manifest.json"
    if not MANIFEST_HEAD.match(head):
        return "its manifest.json is not montage's"
    return stranger(folder)


def stranger(folder):
    """Why ``folder`` holds something montage did not write (None when it holds only montage's
    files and folders, and no symbolic link); a missing manifest is allowed (unfinished output)."""
    for root, dirs, files in os.walk(folder):
        rel = os.path.relpath(root, folder)
        for name in dirs + files:
            path = name if rel == "." else f"{rel}/{name}"
            is_dir = name in dirs and not os.path.islink(os.path.join(root, name))
            if os.path.islink(os.path.join(root, name)):
                return f"{shown(path)!r} is a symbolic link"
            if not (OWN_DIRS if is_dir else OWN_FILES).fullmatch(path):
                return f"it holds {shown(path)!r}"
    return None
