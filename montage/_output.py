"""Write a whole output folder to a temporary sibling, then rename it into place.

Nothing already on disk is lost or half-overwritten: a failed run leaves the
old folder as it was, and readers never see a half-written one.
"""

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from .errors import MontageError


def check_out(out, overwrite):
    """Refuse early (before any work) an --out that cannot or must not be written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MontageError(f"--out {out} exists and is not a folder: choose another path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MontageError(f"--out {out} exists and is not empty: choose another folder or pass --overwrite")
    probe = out.resolve().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise MontageError(f"--out {out} cannot be written ({probe} is not a folder): choose another path")
    try:  # a real attempt: permission bits say nothing to root or on read-only mounts
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=probe))
    except OSError as e:
        raise MontageError(f"--out {out} cannot be written ({e.strerror} in {probe}): "
                           "choose another folder") from None
    return out


@contextlib.contextmanager
def staged(out, overwrite):
    """Yield a temporary folder; on success it replaces ``out`` in one rename."""
    out = check_out(out, overwrite)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    except OSError as e:
        raise MontageError(f"--out {out} cannot be written ({e.strerror}): choose another folder") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should not be
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(old, out)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)
