"""What a run tells the user on stderr: one-line notes and progress bars."""

import importlib.util
import sys


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


def progress(total, desc, unit, quiet=False):
    """A tqdm bar on stderr that clears itself when closed (use it as a context manager).

    A widget in Jupyter where ipywidgets is installed; text elsewhere (tqdm.auto without
    ipywidgets warns "IProgress not found"). A quiet run gets a silent bar.
    """
    if quiet:
        return _Silent(total)
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=False)
