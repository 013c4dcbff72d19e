"""Hugging Face Space entry point: the clinx_hub demo, as `clinx demo` runs it locally.

The models come from the Space variable CLINX_DEMO_MODELS (comma-separated Hub ids), else the
model named below. All the app's logic lives in clinx_hub.demo.
"""

import os

from clinx_hub.demo import build_demo, run_until_stopped

SPACE_MODELS = "clinx-hub/clinx-minilm-meddocan"  # a model this project releases (model_cards/)

demo = build_demo(os.environ.get("CLINX_DEMO_MODELS") or SPACE_MODELS)

if __name__ == "__main__":  # stops on SIGTERM (a Space restarting) as on Ctrl-C, deleting uploads
    run_until_stopped(demo)
