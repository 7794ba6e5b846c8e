"""The exceptions users see."""

import signal


class MontageError(ValueError):
    """Bad input or environment, with a message that names the problem and the fix.

    The CLI prints it as one line and exits with code 2; the Python API raises it
    (it is a ``ValueError``, so ``except ValueError`` catches it too).
    """


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (Ctrl-C, SIGTERM, SIGHUP).

    Parameters
    ----------
    signum : int
        The signal; the CLI exits with ``128 + signum``.
    done : str, optional
        What is on disk when the signal came after the output was complete.
    """

    def __init__(self, signum=signal.SIGINT, done=None):
        super().__init__(signum, done)
        self.signum, self.done = int(signum), done
