#!/usr/bin/env bash
# The GPU benchmark on a lent H100/H200 (no TensorFlow, no internet there).
#   here, once:   bash benchmarks/gpu.sh fetch      # wheels the GPU image lacks -> .whl/
#   there:        bash benchmarks/gpu.sh run        # install them to /tmp/site, run, results in $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
fetch)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${plat[@]}" -d .whl keras namex optree pyvips-binary cffi pycparser
    python3 -m pip wheel -q --no-deps -w .whl pyvips    # pure Python (ABI mode) with pyvips-binary's libvips
    ls -la .whl ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    python3 -m benchmarks.gpu --out "${OUT:-benchmarks/results}" ;;
*)
    echo "usage: bash benchmarks/gpu.sh fetch|run" >&2; exit 2 ;;
esac
