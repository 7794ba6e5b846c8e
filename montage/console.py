"""What a run tells the user on stderr: one-line notes and progress bars."""

import importlib.util
import sys


def note(msg, quiet=False):
    """Print ``montage: msg`` on stderr unless ``quiet``."""
    if not quiet:
        print(f"montage: {msg}", file=sys.stderr)


def progress(total, desc, unit, quiet=False):
    """A tqdm bar on stderr that clears itself when closed (use it as a context manager).

    A widget in Jupyter where ipywidgets is installed; text elsewhere (tqdm.auto without
    ipywidgets warns "IProgress not found").
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=False)
