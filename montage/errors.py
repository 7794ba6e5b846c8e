"""The one exception type users see."""


class MontageError(ValueError):
    """Bad input or environment, with a message that names the problem and the fix.

    The CLI prints it as one line and exits with code 2; the Python API raises it
    (it is a ``ValueError``, so ``except ValueError`` catches it too).
    """
