"""clinx_hub: CLIN-X clinical concept extraction (encoder + CRF, BIOES, cross-sentence context) for the Hub.

Importing the package registers the model with transformers' Auto classes, and nothing else.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForTokenClassification

from .configuration_clinx import ClinXConfig
from .documents import Document, Finding, Span
from .modeling_clinx import ClinXForTokenClassification, LinearChainCRF, scheme_constraints
from .tagging import SpanTags, scheme_labels, spans_to_tags, tags_to_spans

__version__ = "0.1.0"

AutoConfig.register(ClinXConfig.model_type, ClinXConfig, exist_ok=True)
AutoModelForTokenClassification.register(ClinXConfig, ClinXForTokenClassification, exist_ok=True)
# Saved folders carry `auto_map` and copies of the two model files, so that plain transformers
# loads them with trust_remote_code=True where clinx_hub is not installed.
ClinXConfig.register_for_auto_class()
ClinXForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
# pipeline("clinx-extraction", model=...): windowed CRF extraction behind transformers' pipeline API.
from transformers.pipelines import PIPELINE_REGISTRY  # noqa: E402

from .pipeline import ClinXExtractionPipeline  # noqa: E402

PIPELINE_REGISTRY.register_pipeline(
    "clinx-extraction", pipeline_class=ClinXExtractionPipeline, pt_model=AutoModelForTokenClassification
)

__all__ = [
    "ClinXConfig",
    "ClinXForTokenClassification",
    "Document",
    "Finding",
    "LinearChainCRF",
    "Span",
    "SpanTags",
    "scheme_constraints",
    "scheme_labels",
    "spans_to_tags",
    "tags_to_spans",
]
