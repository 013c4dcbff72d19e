# Sourced by the device scripts (accuracy.sh, transfer.sh) on a lent GPU machine, from the repository
# root: checks that .device/ (benchmarks/device/pack.sh) was carried, unpacks the corpora and the packed
# transformers, restores the MiniLM weights to fp32 (training then matches the CPU runs but for fp16
# rounding of the initial weights), points clinx at them, and defines `left` for CLINX_DEADLINE.
[ -f .device/corpora.tar.xz ] || { echo "no .device/ here: run benchmarks/device/pack.sh and carry .device" >&2; exit 2; }
DEADLINE="${CLINX_DEADLINE:-0}"
OUT="${OUT:-runs/device-out}"
mkdir -p /tmp/clinx/corpora /tmp/clinx/minilm /tmp/clinx/site "$OUT"
OUT="$(cd "$OUT" && pwd)"  # absolute: the scripts pack from other folders
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
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" \
    || { echo "torch or the packed transformers does not import here" >&2; exit 3; }
# Seconds left before the deadline, less 15 for packing; at least 1 (timeout 0 would mean no limit).
left() {
    local n=86400
    [ "$DEADLINE" -gt 0 ] && n=$((DEADLINE - SECONDS - 15))
    echo $((n < 1 ? 1 : n))
}
