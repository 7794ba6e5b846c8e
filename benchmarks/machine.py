"""What machine a result came from."""

import os
import platform
import shutil
import subprocess
from importlib import metadata


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb():
    try:
        with open("/proc/meminfo") as f:
            return round(int(f.readline().split()[1]) / 1e6, 1)
    except OSError:
        return None


def _gpu():
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20).stdout.strip()
            return out or None
        except Exception:
            return None
    return None


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe():
    info = {
        "cpu": _cpu(), "cores": os.cpu_count(), "memory_gb": _memory_gb(), "gpu": _gpu(),
        "python": platform.python_version(), "platform": platform.platform(),
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }
    for pkg in ("montage", "numpy", "numba", "pyvips", "pyvips-binary", "keras", "tensorflow", "jax",
                "matplotlib"):
        info[pkg] = _version(pkg)
    try:
        import pyvips

        info["libvips"] = ".".join(str(pyvips.version(i)) for i in range(3))
    except Exception:
        info["libvips"] = None
    return info
