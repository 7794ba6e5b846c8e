"""Repeated timings with a warm-up, and whole processes with their peak memory."""

import os
import statistics
import subprocess
import sys
import time


def measure(fn, repeat=3, warmup=1):
    """Median and spread of ``fn()`` wall time after ``warmup`` untimed calls (JIT, tracing)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return summary(times)


def summary(times):
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs": len(times)}


def process(args, repeat=1, env=None, cwd=None):
    """Wall time and peak RSS of a separate process ``[python, *args]``, repeated.

    Peak memory comes from ``wait4``'s rusage of that child alone.
    """
    times, peaks = [], []
    full_env = dict(os.environ, **(env or {}))
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, *args], env=full_env, cwd=cwd,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {err[-2000:]}")
        times.append(wall)
        peaks.append(usage.ru_maxrss * 1024)
    out = summary(times)
    out["peak_bytes"] = max(peaks)
    return out
