"""File names as text a user can read."""

import os
import stat
import tempfile


def shown(path):
    """``path`` as printable text: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def public_path(path):
    """``path`` as the manifest (and so a shared page) records it: as given, relative staying
    relative; a file montage found inside an installed package (the sample photographs, HED's
    weights) from the package on, as ``matplotlib/mpl-data/sample_data/grace_hopper.jpg``: where
    the user's environment lives is nobody else's business."""
    text = os.fspath(path)
    parts = text.replace("\\", "/").split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in ("site-packages", "dist-packages") and os.path.isabs(text):
            return "/".join(parts[i + 1:])
    return text


def private_dir(name):
    """This user's own folder ``montage-NAME-UID`` under the system temp dir, or None.

    For caches where the usual place cannot be written (a read-only install and an
    unwritable HOME: containers run with --user, service accounts). The folder must be
    ours and private: cached code or settings from a folder that others can write would
    run as us.
    """
    path = os.path.join(tempfile.gettempdir(), f"montage-{name}-{os.getuid()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    ok = stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
    return path if ok else None
