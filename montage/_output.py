"""Write a whole output folder beside ``--out``, then rename it into place.

Nothing already on disk is lost or half-overwritten: a failed or interrupted run
leaves the old folder as it was, readers never see a half-written one, and
``--overwrite`` replaces only a folder that montage itself wrote. One run at a
time writes a folder (see :mod:`montage._lock`).
"""

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from ._lock import Lock, check_stop, deferred_signals, sweep
from ._owned import not_montage
from .errors import Interrupted, MontageError
from .paths import shown


def _check_inputs(out, inputs, given):
    """Refuse an ``out`` that is, holds or lies inside one of ``inputs``."""
    real_out = Path(os.path.realpath(out))
    for p in inputs:
        real = Path(os.path.realpath(p))
        if real == real_out or real_out in real.parents:
            raise MontageError(f"--out {shown(given)} holds the input {shown(p)}: choose an --out "
                               "folder that does not contain the model, weights or images")
        if real in real_out.parents and real.is_dir():
            raise MontageError(f"--out {shown(given)} is inside the input folder {shown(p)}: "
                               "choose an --out folder outside it")


def input_paths(model, weights, images=()):
    """The files and folders a run reads (those that exist), which ``--out`` must keep clear of."""
    given = [x for x in (model, weights) if isinstance(x, (str, os.PathLike)) and os.path.exists(x)]
    return given + [p for p in images if os.path.exists(p)]


def check_out(out, overwrite=False, inputs=()):
    """Refuse early (before any work) an ``--out`` that cannot or must not be written.

    Parameters
    ----------
    out : path
    overwrite : bool
        Allow replacing a non-empty folder, but only one that montage wrote.
    inputs : iterable of paths
        Files and folders the run reads; ``out`` must neither hold nor lie inside them.

    Returns
    -------
    Path
        ``out`` as an absolute path (``.`` and ``..`` resolved, symbolic links not).
    """
    given = out
    try:
        os.fsdecode(out).encode("utf-8")
    except UnicodeEncodeError:
        raise MontageError(f"--out {shown(given)} is not valid UTF-8, which libvips cannot write: "
                           "choose a plain name") from None
    out = Path(os.path.abspath(out))
    try:
        _check_target(out, given, overwrite)
        _check_inputs(out, inputs, given)
        probe = out.parent
        while not probe.exists():
            probe = probe.parent
    except OSError as e:
        raise MontageError(f"--out {shown(given)} cannot be checked ({e.strerror}): choose another "
                           "folder") from None
    if not probe.is_dir():
        raise MontageError(f"--out {shown(given)} cannot be written ({shown(probe)} is not a folder): "
                           "choose another path")
    try:  # a real attempt: permission bits say nothing to root or on read-only mounts
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=probe))
    except OSError as e:
        raise MontageError(f"--out {shown(given)} cannot be written ({e.strerror} in {shown(probe)}): "
                           "choose another folder") from None
    return out


def _check_target(out, given, overwrite):
    """Refuse an ``out`` that cannot be renamed into, or that holds what montage did not write."""
    if out.is_symlink():
        raise MontageError(f"--out {shown(given)} is a symbolic link (to {shown(os.readlink(out))}): "
                           "give the real folder's path")
    if out.parent == out or os.path.ismount(out):
        raise MontageError(f"--out {shown(given)} is a mount point: montage writes beside the folder "
                           f"and renames it into place, so give a folder inside it, such as "
                           f"{shown(out / 'montage-out')}")
    if out.exists() and not out.is_dir():
        raise MontageError(f"--out {shown(given)} exists and is not a folder: choose another path")
    cwd = Path(os.path.realpath(os.getcwd()))
    if out.is_dir() and (cwd == Path(os.path.realpath(out)) or Path(os.path.realpath(out)) in cwd.parents):
        raise MontageError(f"--out {shown(given)} is the folder you are in, which montage cannot replace "
                           "(it writes beside the folder and renames it into place): give a new folder, "
                           "such as montage-out")
    try:
        full = out.is_dir() and any(out.iterdir())
        why = full and overwrite and not_montage(out)
    except FileNotFoundError:   # another run moved it away just now: the lock sorts that out
        full = why = False
    if full and not overwrite:
        raise MontageError(f"--out {shown(given)} exists and is not empty: choose another folder "
                           "or pass --overwrite")
    if why:
        raise MontageError(f"--out {shown(given)} was not written by montage ({why}): "
                           "--overwrite only replaces montage's own output; choose another folder")


def _du(folder):
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def _mb(n):
    return f"{n / 1e6:,.1f} MB"


def disk_full(error):
    """'space' or 'limit' for an error that means the disk or the file size limit is full, else None."""
    codes = {errno.ENOSPC: "space", errno.EDQUOT: "space", errno.EFBIG: "limit"}
    if isinstance(error, OSError) and not isinstance(error, shutil.Error):
        return codes.get(error.errno)
    if isinstance(error, shutil.Error) or type(error).__name__ == "Error":   # libvips says it in words
        for code, kind in codes.items():
            if os.strerror(code) in str(error):
                return kind
    return None


def _explain_full_disk(error, folder, written):
    """Raise a one-line MontageError if ``error`` means the disk or the file size limit is full."""
    full = disk_full(error)
    if full == "space":
        free = shutil.disk_usage(folder).free
        raise MontageError(f"out of disk space in {shown(folder)} after writing {_mb(written)} of the "
                           f"output ({_mb(free)} free): free some space or choose another --out; nothing "
                           "was kept") from None
    if full == "limit":
        raise MontageError(f"a file in {shown(folder)} passed this process's file size limit (ulimit -f) "
                           f"after {_mb(written)} of the output: raise the limit or write less (--layer, "
                           "--cell); nothing was kept") from None


def _hand_over(tmp, out, lock, e, given):
    """The final rename failed: keep the finished output under a visible name and say where."""
    dest = tmp
    for i in range(100):
        cand = out.parent / f"{out.name}-montage-{i}" if i else out.parent / f"{out.name}-montage"
        if os.path.lexists(cand):
            continue
        try:
            os.rename(tmp, cand)
        except OSError:
            continue
        dest = cand
        break
    with contextlib.suppress(MontageError):
        lock.record("partial", tmp.name, keep=False)
    why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    raise MontageError(f"could not move the finished output into --out {shown(given)} ({why}); "
                       f"it is complete in {shown(dest)}: move it where you want it") from None


@contextlib.contextmanager
def staged(out, overwrite=False, inputs=(), note=lambda msg: None):
    """Yield a temporary sibling of ``out``; on success it replaces ``out`` in one rename.

    Parameters
    ----------
    out, overwrite, inputs
        As for :func:`check_out`, which runs again here under the lock.
    note : callable
        Takes one-line messages about stale files cleaned up.
    """
    given = out
    out = Path(os.path.abspath(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MontageError(f"--out {shown(given)} cannot be written ({e.strerror}): choose another "
                           "folder") from None
    with Lock(out) as lock:
        sweep(lock, note)
        check_out(given, overwrite, inputs)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=lock.prefix, suffix=".partial", dir=out.parent))
        except OSError as e:
            raise MontageError(f"--out {shown(given)} cannot be written ({e.strerror}): choose another "
                               "folder") from None
        try:
            lock.record("partial", tmp.name)
        except MontageError:
            os.rmdir(tmp)
            raise
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should not be
        try:
            yield tmp
            check_stop()   # a signal whose exception a C callback dropped
        except BaseException as e:
            with deferred_signals():   # a second Ctrl-C must not leave half the folder
                written = _du(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
            _explain_full_disk(e, out.parent, written)
            if not out.parent.is_dir() and not isinstance(e, KeyboardInterrupt):
                raise MontageError(f"the folder holding --out {shown(given)} was moved or deleted while "
                                   "montage wrote into it: nothing was kept") from None
            raise
        _commit(tmp, out, lock, given, overwrite, note)


def _commit(tmp, out, lock, given, overwrite, note):
    """Move the finished ``tmp`` into ``out``'s place, the old ``out`` aside and then away.

    Signals wait until the renames are done; one that came meanwhile is raised after,
    saying that the new output is in place.
    """
    with deferred_signals() as held:
        old = None
        try:   # --out may have changed while we rendered: check it again, right before replacing it
            _check_target(out, given, overwrite)
        except (MontageError, OSError) as e:
            _hand_over(tmp, out, lock, e, given)
        try:
            if out.exists():
                old = out.parent / f"{lock.prefix}old-{uuid.uuid4().hex[:8]}"
                lock.record("old", old.name)
                os.rename(out, old)
            os.rename(tmp, out)
        except (MontageError, OSError) as e:
            if old is not None and old.exists() and not out.exists():
                with contextlib.suppress(OSError):
                    os.rename(old, out)
            _hand_over(tmp, out, lock, e, given)
        if old is not None:
            failed = []
            shutil.rmtree(old, onerror=lambda fn, path, exc: failed.append(exc[1]))
            if failed:
                note(f"could not remove the previous output, moved aside to {shown(old)} "
                     f"({getattr(failed[0], 'strerror', failed[0])}): remove it yourself")
    if held:
        raise Interrupted(held[0], f"the new output was already complete in {shown(given)}")
