#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job: `clinx quickstart` on invented notes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/clinx quickstart "$@"
