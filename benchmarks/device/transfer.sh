#!/usr/bin/env bash
# Runs the transfer study (benchmarks/transfer.py, issue #19) on a lent GPU machine (see pack.sh):
# trains the source models that are not there yet (benchmarks/device/accuracy.sh, which also runs
# tests/test_gpu.py), then the study's cells CLINX_PARALLEL at a time, two CPU threads each, into
# runs/transfer-gpu/ with the table in benchmarks/results/transfer-gpu.{json,md} and its pictures
# (apart from the CPU table: the two are not mixed). Leaves in $OUT transfer-results.tgz (table,
# pictures), transfer-records.tgz (each cell's result.json and training record, no weights) and the
# accuracy script's archives for the sources it trained.
#   bash benchmarks/device/pack.sh        # here, then on the device with .device carried:
#   CLINX_DEADLINE=570 CLINX_PARALLEL=8 bash benchmarks/device/transfer.sh
# Resumable: the device tool keeps runs/ while the machine stays warm, so a second call (the
# sources take most of a first one) goes on where the first stopped. CLINX_DEADLINE (seconds, 0 =
# none) bounds the whole script; set it below the device call's timeout so the last pack runs.
# Arguments go to benchmarks/transfer.py (--targets meddoprof-ner, for instance).
set -uo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/device/setup.sh
RESULT=benchmarks/results/transfer-gpu.json

pack() {
    tar -C benchmarks/results -czf "$OUT/transfer-results.tgz" --ignore-failed-read \
        "$(basename "$RESULT")" "$(basename "$RESULT" .json).md" \
        "$(basename "$RESULT" .json)-f1-by-n.png" "$(basename "$RESULT" .json)-similarity.png" 2> /dev/null
    [ -d runs/transfer-gpu ] && (cd runs && find transfer-gpu \( -name result.json -o -name training_record.json -o -path '*/similarity/*.json' \) -print0 \
        | tar -czf "$OUT/transfer-records.tgz" --null -T -) || true
}

status=0
missing=$(python3 - <<'PY'
import sys
sys.path.insert(0, "benchmarks")
from transfer import SOURCE_EXPERIMENTS, SOURCES

from clinx_hub.folders import TRAINING_RECORD

print(" ".join(n for n in SOURCE_EXPERIMENTS.values() if not (SOURCES / n / TRAINING_RECORD).is_file()))
PY
) || exit 3
if [ -n "$missing" ]; then
    echo "source models to train: $missing"
    # The accuracy script keeps its own clock: give it what is left of this one.
    limit=0 && [ "$DEADLINE" -gt 0 ] && limit=$(left)
    CLINX_DEADLINE=$limit CLINX_PARALLEL="${CLINX_PARALLEL:-5}" bash benchmarks/device/accuracy.sh $missing || status=$?
else
    echo "source models: all there"
fi

export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
if [ "$status" = 0 ] && [ "$(left)" -ge 60 ]; then
    started=$SECONDS
    timeout -k 10 "$(left)" python3 benchmarks/transfer.py --processes "${CLINX_PARALLEL:-8}" --threads 2 \
        --out "$RESULT" --work runs/transfer-gpu "$@" > "$OUT/transfer.log" 2>&1 || status=$?
    echo "transfer study: $((SECONDS - started)) s, exit $status; $(grep -E 'cells trained now' "$OUT/transfer.log")"
else
    echo "transfer study: not started (sources exit $status, $(left) s left)"
    [ "$status" = 0 ] && status=124
fi
pack
tar -C "$OUT" -czf /tmp/clinx/transfer-logs.tgz transfer.log 2> /dev/null && mv /tmp/clinx/transfer-logs.tgz "$OUT/" \
    && rm -f "$OUT/transfer.log"
exit $status
