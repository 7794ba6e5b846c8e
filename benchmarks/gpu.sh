#!/usr/bin/env bash
# The GPU benchmark on a lent H100/H200 (no TensorFlow, keras, pyvips or isal there; no internet).
#   here, once:   bash benchmarks/gpu.sh fetch          # wheels the GPU image lacks -> .whl/ (carry it)
#   there:        bash benchmarks/gpu.sh run [BACKEND]  # install them to /tmp/site, run; JSON in $OUT
#   anywhere:     bash benchmarks/gpu.sh dry-run        # tiny sizes on a CPU with this Python (the tests)
# BACKEND: jax (default) or torch; KERAS_BACKEND likewise for dry-run. PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
case "${1:-}" in
fetch)
    ex="$(git rev-parse --git-path info/exclude)"    # a worktree's .git is a file
    grep -qx '/.whl/' "$ex" 2>/dev/null || echo /.whl/ >> "$ex"
    plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${plat[@]}" -d .whl keras namex optree pyvips-binary cffi pycparser isal
    "$PY" -m pip wheel -q --no-deps -w .whl pyvips    # pure Python (ABI mode) with pyvips-binary's libvips
    ls -la .whl ;;
run)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND="${2:-jax}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PY" -m benchmarks.gpu --out "${OUT:-benchmarks/results}" ;;
dry-run)
    export KERAS_BACKEND="${KERAS_BACKEND:-jax}" CUDA_VISIBLE_DEVICES=""
    "$PY" -m benchmarks.gpu --dry-run --out "${OUT:-benchmarks/results}" "${@:2}" ;;
*)
    echo "usage: bash benchmarks/gpu.sh fetch|run [jax|torch]|dry-run" >&2; exit 2 ;;
esac
