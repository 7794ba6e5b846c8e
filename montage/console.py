"""What a run tells the user on stderr: one-line notes and progress bars."""

import sys


def note(msg, quiet=False):
    """Print ``montage: msg`` on stderr unless ``quiet``."""
    if not quiet:
        print(f"montage: {msg}", file=sys.stderr)


def progress(total, desc, unit, quiet=False):
    """A tqdm bar on stderr that clears itself when closed (use it as a context manager)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=False)
