"""Repeated timings with a warm-up, and whole processes with their peak memory."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def measure_into(fn, out, repeat=3):
    """Median and spread of ``fn(out)`` wall time, ``out`` deleted after each call, untimed:
    deleting the last run's output is not the next run's work, and big outputs would fill the disk."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(out)
        times.append(time.perf_counter() - t)
        shutil.rmtree(out)
    return summary(times)


def summary(times):
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs": len(times)}


def process(args, repeat=1, env=None, cwd=None):
    """Wall time and peak RSS of a separate process ``python -m MODULE ...``, repeated.

    ``args`` starts with ``-m MODULE``; the peak is the child's own (see benchmarks.peak).
    """
    if args[0] != "-m":
        raise ValueError("process() runs modules: args must start with '-m'")
    times, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = os.path.join(tmp, "peak")
        full_env = dict(os.environ, **(env or {}), MONTAGE_PEAK_FILE=peak_file)
        for _ in range(repeat):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "benchmarks.peak", *map(str, args)], env=full_env,
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            times.append(time.perf_counter() - t)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(map(str, args))} failed ({r.returncode}): "
                                   f"{r.stderr.decode(errors='replace')[-2000:]}")
            with open(peak_file) as f:
                peaks.append(int(f.read()))
    out = summary(times)
    out["peak_bytes"] = max(peaks)
    return out
