"""Run a module as ``__main__`` and report its peak resident memory when it exits.

    python -m benchmarks.peak -m montage filters ...      (MONTAGE_PEAK_FILE=path)

The peak is ``VmHWM`` from /proc, which starts afresh at exec. ``wait4``'s ``ru_maxrss``
does not: it also counts the pages a large parent shared with the child between fork and
exec, so a benchmark process holding gigabytes would inflate every child it starts.
"""

import atexit
import os
import runpy
import sys


def _report():
    path = os.environ.get("MONTAGE_PEAK_FILE")
    if not path:
        return
    try:
        with open("/proc/self/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(path, "w") as f:
        f.write(str(kb * 1024))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        sys.exit("usage: python -m benchmarks.peak -m MODULE [ARGS...]")
    atexit.register(_report)
    module = sys.argv[2]
    sys.argv = [module] + sys.argv[3:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
