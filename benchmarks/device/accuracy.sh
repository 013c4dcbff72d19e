#!/usr/bin/env bash
# Runs benchmarks/accuracy.py on a lent GPU machine (see pack.sh): unpacks the corpora, restores
# the MiniLM weights to fp32 (training then matches the CPU runs but for fp16 rounding of the
# initial weights), trains the named experiments and leaves their JSON results and logs in $OUT.
#   bash benchmarks/device/accuracy.sh pharmaconer-single pharmaconer-no-crf
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f .device/corpora.tar.xz ] || { echo "no .device/ here: run benchmarks/device/pack.sh and carry .device" >&2; exit 2; }
OUT="${OUT:-runs/device-out}"
mkdir -p /tmp/clinx/corpora /tmp/clinx/minilm "$OUT"
tar -C /tmp/clinx/corpora -xJf .device/corpora.tar.xz
python3 - <<'PY'
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

source, target = Path(".device/minilm"), Path("/tmp/clinx/minilm")
for path in source.iterdir():
    if path.suffix != ".safetensors":
        shutil.copy(path, target / path.name)
weights = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(source / "model.fp16.safetensors").items()}
save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
PY
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export CLINX_CORPORA=/tmp/clinx/corpora CLINX_BACKBONE=/tmp/clinx/minilm
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
status=0
for experiment in "$@"; do
    python3 benchmarks/accuracy.py "$experiment" > "$OUT/$experiment.log" 2>&1 || status=$?
    grep -E "^\{'eval|F1" "$OUT/$experiment.log" | tail -n 8
done
# One archive: the device tool brings back at most 8 files.
tar -C benchmarks/results -czf "$OUT/accuracy-results.tgz" accuracy accuracy.md
tar -C "$OUT" -czf "$OUT/logs.tgz" --exclude='*.tgz' . && find "$OUT" -name '*.log' -delete
exit $status
