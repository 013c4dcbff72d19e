#!/usr/bin/env bash
# Create .venv and install clinx_hub with its test dependencies and every optional extra (the suite tests them all).
# On these CPU-only machines constraints/cpu.txt pins the CPU build of torch that lies on disk;
# without it pip would pull a multi-GB CUDA build. Elsewhere, bring your own torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints/cpu.txt -e ".[dev,demo,onnx,ray,plots,evaluate]"
