#!/usr/bin/env bash
# The GPU run, ready to go, on a bare GPU machine whose python3 has torch, transformers, pyarrow,
# click (typer's), rich, fsspec and pillow:
#
#     benchmarks/gpu_check.sh [WHEELS_DIR]
#
# installs this checkout of curate without its dependencies (pip, offline), plus every wheel in
# WHEELS_DIR when given (safetensors, or a curate wheel when setuptools is missing there), then
# runs benchmarks/gpu_check.py: synthetic shards, bare forward vs `curate embed` end to end for
# ResNet-50 + BERT-base and a ViT-B/32-shaped CLIP, their ratio and the GPU utilisation.
# Sizes and device come from the environment (see benchmarks/gpu_check.py); CURATE_GPU_INSTALL=0
# skips the install (curate importable from this checkout), PYTHON picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
wheels="${1:-${CURATE_GPU_WHEELS:-}}"

if [ "${CURATE_GPU_INSTALL:-1}" = "1" ]; then
    if [ -n "$wheels" ]; then
        shopt -s nullglob
        found=("$wheels"/*.whl)
        if [ "${#found[@]}" -gt 0 ]; then
            "$python" -m pip install --no-deps --no-index "${found[@]}"
        fi
    fi
    if ! "$python" -m pip install --no-deps --no-index --no-build-isolation "$here"; then
        echo "gpu_check: pip could not install curate here (no setuptools?); using the checkout on PYTHONPATH" >&2
        export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
    fi
else
    export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
fi

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec "$python" "$here/benchmarks/gpu_check.py"
