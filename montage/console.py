"""What a run tells the user on stderr: one-line notes, a status line while a model loads, and
progress bars (on a terminal or in a notebook only: a log gets the final note, not bar lines)."""

import contextlib
import importlib.util
import os
import sys
from pathlib import Path


def counted(n, word):
    """``n`` and ``word``, plural unless ``n`` is 1: "1 image", "2 images", "1,024 maps"."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def note(msg, quiet=False):
    """Print ``montage: msg`` on stderr unless ``quiet``."""
    if not quiet:
        print(f"montage: {msg}", file=sys.stderr)


class _Silent:
    """The bar of a quiet run: counts, shows nothing, and needs no tqdm import."""

    def __init__(self, total):
        self.total, self.n = total, 0

    def update(self, n=1):
        self.n += n

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def _terminal():
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _notebook():
    return "ipykernel" in sys.modules


def _asked():
    """MONTAGE_PROGRESS=1: text bars wherever stderr goes (a log that wants them)."""
    return os.environ.get("MONTAGE_PROGRESS", "") == "1"


def page_of(out, temporary):
    """Where a run's page is, for its final note: a temporary folder (``out=None``) goes with the
    result, so a saved notebook must not name it."""
    return "a temporary folder (out=None; pass out=FOLDER to keep the page)" if temporary \
        else str(Path(out) / "index.html")


def loading(model):
    """What loading ``model`` means to the user: "vgg16 and its framework", "a Keras model"."""
    if isinstance(model, (str, os.PathLike)):
        return f"{os.fspath(model)} (and its framework: a few seconds)"
    return f"a {type(model).__name__} model"


@contextlib.contextmanager
def status(msg, quiet=False):
    """``montage: msg`` on a terminal while the block runs (loading a framework takes seconds of
    silence otherwise), erased when it ends; nothing in a log, a notebook or a quiet run."""
    shown = not quiet and _terminal() and not _notebook()
    if shown:
        sys.stderr.write(f"montage: {msg}")
        sys.stderr.flush()
    try:
        yield
    finally:
        if shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def progress(total, desc, unit, quiet=False):
    """A tqdm bar on stderr that clears itself when closed, except in a log that asked for it
    (use it as a context manager).

    A widget in Jupyter where ipywidgets is installed, else none there (a text bar is a red
    stderr box); text on a terminal; none when stderr is a file or a pipe (the run's final note
    says what was done) unless MONTAGE_PROGRESS=1. A quiet or barless run gets a silent bar.
    """
    widget = _notebook() and importlib.util.find_spec("ipywidgets") is not None
    if quiet or not (widget or _asked() or (_terminal() and not _notebook())):
        return _Silent(total)
    if widget:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm

    # asked for bars in a log or pipe: the last state stays there (a quick run may never have
    # drawn more than its 0% before closing); on a terminal the bar clears itself
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=_asked() and not widget and not _terminal())
