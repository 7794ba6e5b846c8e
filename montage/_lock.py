"""One writer per output folder, and clean-up after writers that died.

While a run writes ``DIR`` it holds an exclusive lock on ``.DIR.montage-lock``
beside it, in which it records the temporary siblings it creates. The kernel
drops the lock when a process dies however it dies (SIGKILL, power loss), so the
next run that gets the lock knows that those siblings are stale and removes them
(or puts back a previous output that a killed run had moved aside).
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import stat
import threading

from ._owned import not_montage, stranger
from .errors import Interrupted, MontageError
from .paths import shown

# Signals the CLI's handler saw (see montage.cli): a handler that raises inside a C callback
# (libvips' log or progress callbacks) has its exception dropped, so runs also check this list.
stop_requested = []


def check_stop():
    """Raise :class:`montage.errors.Interrupted` if a stop signal arrived (see ``stop_requested``)."""
    if stop_requested:
        raise Interrupted(stop_requested[0])


@contextlib.contextmanager
def deferred_signals():
    """Hold SIGINT and SIGTERM back while a few renames must finish together.

    Yields the list of signals that arrived meanwhile. Off the main thread (where
    handlers cannot be set) nothing is held back.
    """
    held = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    sigs = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s]
    saved = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in sigs}
    try:
        yield held
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


class Lock:
    """``.NAME.montage-lock`` beside ``out``: one writer at a time, and a record of its siblings."""

    def __init__(self, out):
        self.out, self.parent, self.prefix = out, out.parent, f".{out.name}."
        self.path = self.parent / f"{self.prefix}montage-lock"
        self.fd, self.records = None, {"partial": [], "old": []}

    def __enter__(self):
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as e:   # a symlink or a folder in its place, no permission
                raise MontageError(f"cannot lock {shown(self.path)} beside --out ({e.strerror}): remove it "
                                   "if no montage is running, or choose another --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                held = os.read(fd, 4096)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):   # ENOLCK: no locks on this mount
                    raise MontageError(f"cannot lock {shown(self.path)} beside --out ({e.strerror}): choose "
                                       "an --out on a local disk") from None
                pid = re.search(rb'"pid": (\d+)', held)     # none yet: the other run has just started
                who = f"another montage run (pid {pid[1].decode()})" if pid else "another montage run"
                raise MontageError(f"{who} is writing --out {shown(self.out)}: "
                                   "wait for it to finish, or choose another --out") from None
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:   # not a file that its last holder unlinked while we opened it
                break
            os.close(fd)
        st = os.fstat(fd)
        if st.st_nlink > 1 or st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
            os.close(fd)   # a hard link to another file, or another user's: never write through it
            why = "has other links" if st.st_nlink > 1 else "is not a file of yours"
            raise MontageError(f"lock file {shown(self.path)} beside --out {why}: montage will not write "
                               "into it; remove it if no montage is running, or choose another --out")
        self.fd = fd
        return self

    def stale(self):
        """Siblings a dead run recorded in this lock file before it died."""
        try:
            text = os.pread(self.fd, 1 << 20, 0).decode("utf-8", "replace")
            rec = json.loads(text) if text.strip() else {}
        except (ValueError, RecursionError):
            rec = {}
        rec = rec if isinstance(rec, dict) else {}     # a record of another shape names nothing
        ok = lambda n: isinstance(n, str) and n.startswith(self.prefix) and "/" not in n  # noqa: E731
        names = lambda key: rec.get(key) if isinstance(rec.get(key), list) else []  # noqa: E731
        return [n for n in names("partial") if ok(n)], [n for n in names("old") if ok(n)]

    def record(self, kind, name, keep=True):
        names = self.records[kind]
        if keep:
            names.append(name)
        elif name in names:
            names.remove(name)
        data = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), **self.records}).encode()
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
        except OSError as e:
            raise MontageError(f"cannot write beside --out {shown(self.out)} ({e.strerror}): free some "
                               "space or choose another folder") from None

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            os.unlink(self.path)     # while still holding it: see the inode check in __enter__
        os.close(self.fd)


def _own_sibling(lock, name, finished):
    """Why the sibling ``name`` named in a lock record is not provably montage's (None when it is):
    montage's name for it, a real folder of this user's, holding only files montage writes (and
    montage's manifest, for a ``finished`` output moved aside)."""
    path = lock.parent / name
    try:
        st = os.lstat(path)
    except OSError:
        return "gone"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder"
    if st.st_uid != os.geteuid():
        return "it is another user's"
    return (not_montage if finished else stranger)(path)


def sweep(lock, note):
    """Clean up after a run that died while writing the same ``--out``: only what provably is
    montage's own staging (see :func:`_own_sibling`); anything else is reported, never removed."""
    pattern = re.compile(re.escape(lock.prefix) + r"([a-z0-9_]{8}\.partial|old-[0-9a-f]{8})")
    partials, olds = lock.stale()
    partials = [n for n in partials if pattern.fullmatch(n)]
    olds = [n for n in olds if pattern.fullmatch(n)]
    for name in olds:
        old = lock.parent / name
        why = _own_sibling(lock, name, True)
        if why == "gone":
            continue
        if why:
            note(f"left {shown(old)} alone: a stopped run named it, but {why}")
        elif not lock.out.exists():
            os.rename(old, lock.out)
            note(f"put back the previous output at {shown(lock.out)} (a run was stopped while "
                 "replacing it)")
        else:
            shutil.rmtree(old, ignore_errors=True)
            note(f"removed {shown(old)}, left by a run that was stopped")
    for name in partials:
        p = lock.parent / name
        why = _own_sibling(lock, name, False)
        if why == "gone":
            continue
        if why:
            note(f"left {shown(p)} alone: a stopped run named it, but {why}")
        else:
            shutil.rmtree(p, ignore_errors=True)
            note(f"removed {shown(p)}, the unfinished output of a run that was stopped")
    for p in lock.parent.iterdir():
        if pattern.fullmatch(p.name) and p.name not in partials + olds:
            note(f"found {shown(p)}, probably left by a stopped montage run; remove it if no "
                 "montage is running")
