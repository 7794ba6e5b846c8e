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
import threading

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
                pid = (re.search(rb'"pid": (\d+)', held) or [None, b"?"])[1].decode()
                raise MontageError(f"another montage run (pid {pid}) is writing --out {shown(self.out)}: "
                                   "wait for it to finish, or choose another --out") from None
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:   # not a file that its last holder unlinked while we opened it
                break
            os.close(fd)
        self.fd = fd
        return self

    def stale(self):
        """Siblings a dead run recorded in this lock file before it died."""
        try:
            text = os.pread(self.fd, 1 << 20, 0).decode("utf-8", "replace")
            rec = json.loads(text) if text.strip() else {}
        except ValueError:
            rec = {}
        ok = lambda n: isinstance(n, str) and n.startswith(self.prefix) and "/" not in n  # noqa: E731
        return ([n for n in rec.get("partial", []) if ok(n)], [n for n in rec.get("old", []) if ok(n)])

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


def sweep(lock, note):
    """Clean up after a run that died while writing the same ``--out``."""
    partials, olds = lock.stale()
    for name in olds:
        old = lock.parent / name
        if not old.is_dir() or old.is_symlink():
            continue
        if not lock.out.exists():
            os.rename(old, lock.out)
            note(f"put back the previous output at {shown(lock.out)} (a run was stopped while "
                 "replacing it)")
        else:
            shutil.rmtree(old, ignore_errors=True)
            note(f"removed {shown(old)}, left by a run that was stopped")
    for name in partials:
        p = lock.parent / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            note(f"removed {shown(p)}, the unfinished output of a run that was stopped")
    pattern = re.compile(re.escape(lock.prefix) + r"([a-z0-9_]{8}\.partial|old-[0-9a-f]{8})")
    for p in lock.parent.iterdir():
        if pattern.fullmatch(p.name) and p.name not in partials + olds:
            note(f"found {shown(p)}, probably left by a stopped montage run; remove it if no "
                 "montage is running")
