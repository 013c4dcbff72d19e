#!/usr/bin/env bash
# Runs benchmarks/accuracy.py on a lent GPU machine (see pack.sh): unpacks the corpora and the
# packed transformers, restores the MiniLM weights to fp32 (training then matches the CPU runs
# but for fp16 rounding of the initial weights), runs tests/test_gpu.py, trains the named
# experiments (in the order given, CLINX_PARALLEL at a time) and leaves their JSON results and
# logs in $OUT. It exits non-zero when the GPU tests or any experiment failed or were stopped.
#   CLINX_DEADLINE=540 CLINX_PARALLEL=4 bash benchmarks/device/accuracy.sh pharmaconer-ensemble meddocan-single
# CLINX_MEMBER_PROCESSES=5 trains each ensemble experiment's members side by side, one process each
# (benchmarks/accuracy.py --member-processes), which the GPU has room for.
# CLINX_DEADLINE (seconds, 0 = none) bounds the whole script: an experiment is stopped when it
# would overrun, none starts with under a minute left, and the results are packed each time an
# experiment ends. Set it below the device call's timeout so that the last pack runs.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f .device/corpora.tar.xz ] || { echo "no .device/ here: run benchmarks/device/pack.sh and carry .device" >&2; exit 2; }
DEADLINE="${CLINX_DEADLINE:-0}"
OUT="${OUT:-runs/device-out}"
mkdir -p /tmp/clinx/corpora /tmp/clinx/minilm /tmp/clinx/site "$OUT"
tar -C /tmp/clinx/corpora -xJf .device/corpora.tar.xz
[ -f .device/transformers.tar.xz ] && tar -C /tmp/clinx/site -xJf .device/transformers.tar.xz
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
export PYTHONPATH="/tmp/clinx/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export CLINX_CORPORA=/tmp/clinx/corpora CLINX_BACKBONE=/tmp/clinx/minilm
# Recorded as each result's command (benchmarks/accuracy.py), since this script is what ran it.
export CLINX_MEMBER_PROCESSES="${CLINX_MEMBER_PROCESSES:-1}"
export CLINX_BENCHMARK_COMMAND="CLINX_DEADLINE=$DEADLINE CLINX_PARALLEL=${CLINX_PARALLEL:-1} CLINX_MEMBER_PROCESSES=$CLINX_MEMBER_PROCESSES bash benchmarks/device/accuracy.sh $*"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" \
    || { echo "torch or the packed transformers does not import here" >&2; exit 3; }

pack() {  # one archive each: the device tool brings back at most 8 files
    python3 benchmarks/accuracy.py --table > /dev/null
    tar -C benchmarks/results -czf "$OUT/accuracy-results.tgz" accuracy accuracy.md
    # Training records, fold lists and Trainer logs (no weights), also of a run stopped part-way.
    (cd runs && find accuracy \( -name training_record.json -o -name folds.json -o -name trainer_state.json \) -print0 \
        | tar -czf "$OUT/records.tgz" --null -T -) || true
}
# Seconds left before the deadline, less 15 for packing; at least 1 (timeout 0 would mean no limit).
left() {
    local n=86400
    [ "$DEADLINE" -gt 0 ] && n=$((DEADLINE - SECONDS - 15))
    echo $((n < 1 ? 1 : n))
}
RC=/tmp/clinx/rc && mkdir -p "$RC"

status=0
if [ "${CLINX_GPU_TESTS:-1}" = 1 ]; then
    timeout -k 10 "$(left)" python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py > "$OUT/gpu-tests.log" 2>&1 || status=$?
    tail -n 3 "$OUT/gpu-tests.log"
fi

one() {  # one experiment, stopped at the deadline; prints its time, exit status and last held-out F1
    local started=$SECONDS rc=0
    timeout -k 10 "$(left)" python3 benchmarks/accuracy.py "$1" > "$OUT/$1.log" 2>&1 || rc=$?
    echo "$rc" > "$RC/$1"  # read back at the end: `wait -n` alone can miss a job's status
    echo "$1: $((SECONDS - started)) s, exit $rc; $(grep -oE "'eval_f1': '?[0-9.]+" "$OUT/$1.log" | tail -n 1)"
}
# CLINX_PARALLEL experiments at a time share the GPU, two CPU threads each: one MiniLM run with
# a CRF is bound by kernel launches (the CRF steps through positions one at a time), so runs side
# by side cost each other little. Measured on an H200 (2026-11-26): PharmaCoNER alone trained at
# 5.7 steps/s; six experiments side by side at 3.9-6.1 steps/s each (MEDDOCAN's longer windows
# 2.6), all six done in 441 s.
PARALLEL="${CLINX_PARALLEL:-1}"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
for experiment in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n; pack; done
    if [ "$(left)" -lt 60 ]; then echo "$experiment: not started, under a minute left"; status=124; continue; fi
    one "$experiment" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n; pack; done
wait
for file in "$RC"/*; do
    [ -f "$file" ] && [ "$(cat "$file")" != 0 ] && status=$(cat "$file")
done
pack
# Written outside $OUT first: tar would otherwise read the archive it is writing.
tar -C "$OUT" -czf /tmp/clinx/logs.tgz --exclude='*.tgz' . && mv /tmp/clinx/logs.tgz "$OUT/" && find "$OUT" -name '*.log' -delete
exit $status
