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
source benchmarks/device/setup.sh
# Recorded as each result's command (benchmarks/accuracy.py), since this script is what ran it.
export CLINX_MEMBER_PROCESSES="${CLINX_MEMBER_PROCESSES:-1}"
export CLINX_BENCHMARK_COMMAND="CLINX_DEADLINE=$DEADLINE CLINX_PARALLEL=${CLINX_PARALLEL:-1} CLINX_MEMBER_PROCESSES=$CLINX_MEMBER_PROCESSES bash benchmarks/device/accuracy.sh $*"

pack() {  # one archive each: the device tool brings back at most 8 files
    python3 benchmarks/accuracy.py --table > /dev/null
    tar -C benchmarks/results -czf "$OUT/accuracy-results.tgz" accuracy accuracy.md
    # Training records, fold lists and Trainer logs (no weights), also of a run stopped part-way.
    (cd runs && find accuracy \( -name training_record.json -o -name folds.json -o -name trainer_state.json \) -print0 \
        | tar -czf "$OUT/records.tgz" --null -T -) || true
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
