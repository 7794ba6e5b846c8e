"""Write canvases on a background thread while the next one is computed."""

from concurrent.futures import ThreadPoolExecutor

from ._lock import deferred_signals
from .canvas import allocate, clear
from .errors import Interrupted


class Writer:
    """Write canvases on one background thread while the next one is computed.

    A context manager: leaving it waits for every queued write (and raises the first
    error; after an error, queued writes are cancelled). At most ``depth`` canvases wait,
    so memory stays flat however many there are; libvips, numba and the model release the
    GIL, so the two really overlap. With ``reuse``, written canvases are handed out again
    (feature atlases of one size: no fresh allocation and page faults per image).
    """

    DEPTH = 2

    def __init__(self, depth=DEPTH, reuse=True):
        self.depth, self.reuse, self.pending, self.free = depth, reuse, [], []

    def __enter__(self):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="montage-write")
        return self

    def __exit__(self, *exc):
        try:
            while self.pending and exc[0] is None:
                self._retire(self.pending.pop(0))
        finally:
            # A stop must not cut this wait short: the caller removes the folder being written
            # into, so the thread has to be done first. It is raised right after.
            with deferred_signals() as held:
                self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None or bool(held))
            self.pending, self.free = [], []
            if held and exc[0] is None:
                raise Interrupted(held[0])

    def canvas(self, height, width, bands, fill):
        """A canvas filled with ``fill``: a written one reused, or a new one."""
        for i, c in enumerate(self.free):
            if c.shape[:2] == (height, width) and c.shape[2] == (1 if bands == 1 else 4):
                return clear(self.free.pop(i), fill)
        return allocate(height, width, bands, fill)

    def submit(self, fn, canvas, *args):
        """Queue ``fn(canvas, *args)``; ``canvas`` is reused once it has run."""
        while len(self.pending) >= self.depth:
            self._retire(self.pending.pop(0))
        # ThreadPoolExecutor.submit starts the thread and waits for it: a signal landing in that
        # wait would leave a thread the pool no longer joins. Held back, then raised.
        with deferred_signals() as held:
            self.pending.append((self.pool.submit(fn, canvas, *args), canvas))
        if held:
            raise Interrupted(held[0])

    def _retire(self, item):
        future, canvas = item
        future.result()
        if self.reuse:
            self.free.append(canvas)
