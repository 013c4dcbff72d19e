"""Hugging Face Space entry point: the strict span metric's widget, as every evaluate metric Space has."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

# The module beside this file: the Space's own copy on the Hub, this folder when run from a checkout.
module = evaluate.load(str(Path(__file__).resolve().parent))
launch_gradio_widget(module)
