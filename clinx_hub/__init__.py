"""clinx_hub: CLIN-X clinical concept extraction (encoder + CRF, BIOES, cross-sentence context) for the Hub.

The names below are what a user's work goes through; each is imported when first used (PEP 562,
as transformers' ``_LazyModule``), so ``import clinx_hub`` and the document layer load no torch.
The first use of a model-layer name (``ClinXConfig``, ``load_extractor``, ``ClinXTrainer``, ...)
registers the model with transformers' Auto classes (:func:`clinx_hub.registration.register`);
``pipeline("clinx-extraction", ...)`` works after ``import clinx_hub`` (the task is registered
when ``transformers.pipelines`` loads).

>>> import clinx_hub
>>> clinx_hub.Span(start=0, end=4, label="FECHAS", text="2019")
Span(start=0, end=4, label='FECHAS', text='2019', id='', codes=(), score=None)
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from .registration import register, register_when_pipelines_load

__version__ = "0.1.0"

_MODEL_LAYER = {
    "ClinXConfig": "configuration_clinx",
    "ClinXForTokenClassification": "modeling_clinx",
    "ClinXEnsemble": "ensemble",
    "Extractor": "ensemble",
    "load_extractor": "ensemble",
    "extraction_pipeline": "extractor_pipeline",
    "ClinXTrainer": "trainer",
    "ClinXTrainingArguments": "training_args",
    "train_task": "recipe",
}
"""Names that need the model registered with transformers before they are used: name -> module."""

_TORCH_FREE = {
    "Document": "documents",
    "Span": "documents",
    "Finding": "documents",
    "load_task": "corpora",
    "score_documents": "evaluation",
    "ClinXCardData": "model_card",
    "push_model": "push",
}
"""Names that load neither torch nor transformers' model classes: name -> module."""

__all__ = sorted([*_MODEL_LAYER, *_TORCH_FREE, "register"])

if TYPE_CHECKING:  # what static tools and IDEs see; at run time __getattr__ imports on first use
    from .configuration_clinx import ClinXConfig
    from .corpora import load_task
    from .documents import Document, Finding, Span
    from .ensemble import ClinXEnsemble, Extractor, load_extractor
    from .evaluation import score_documents
    from .extractor_pipeline import extraction_pipeline
    from .model_card import ClinXCardData
    from .modeling_clinx import ClinXForTokenClassification
    from .push import push_model
    from .recipe import train_task
    from .trainer import ClinXTrainer
    from .training_args import ClinXTrainingArguments


def __getattr__(name: str):
    if name in _MODEL_LAYER:
        register()
        module = _MODEL_LAYER[name]
    elif name in _TORCH_FREE:
        module = _TORCH_FREE[name]
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # A submodule used as an attribute (clinx_hub.pipeline.extraction_pipeline), as _LazyModule allows.
        return importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later uses skip __getattr__
    return value


def __dir__() -> list[str]:
    # The public names and the module's own dunders; not the helpers this file imports.
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


# pipeline("clinx-extraction") looks the task up itself, so it cannot wait for a name of ours to be used.
register_when_pipelines_load()
