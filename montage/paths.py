"""File names as text a user can read."""

import os


def shown(path):
    """``path`` as printable text: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")
