"""The ``clinx-extraction`` pipeline over whatever :func:`clinx_hub.ensemble.load_extractor` opens.

With clinx_hub installed, ``pipeline("clinx-extraction", model=NAME)`` opens ``NAME`` the way every
clinx command does: a model folder, an ensemble folder (members vote span by span), an exported
folder, or a Hub id of any of them. transformers' ``pipeline()`` builds a task's model through the
task's model classes' ``from_pretrained``; :class:`ExtractorLoader` is that class for
``clinx-extraction`` (``registration.py`` names it), and hands the pipeline the first member's model
carrying the whole extractor. :func:`extraction_pipeline` does the same without the factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .ensemble import load_extractor

# pipeline.py is imported inside extraction_pipeline only: registration names ExtractorLoader while
# transformers.pipelines loads, which may happen during pipeline.py's own `from transformers import Pipeline`.

LOAD_OPTIONS = ("dtype",)
"""What of ``pipeline()``'s model keyword arguments the extractor's loader takes (``device`` is the
pipeline's own: it moves the model, and the pipeline moves the rest of the extractor after it)."""


def _opened(path: str | Path, options: dict[str, Any]):
    options = {k: v for k, v in options.items() if k in LOAD_OPTIONS and v is not None}
    dtype = options.pop("dtype", None)
    if dtype is not None and dtype != "auto":  # "auto", pipeline()'s default: the checkpoint's own (fp32)
        # pipeline() hands torch dtypes (torch.bfloat16); clinx_hub.devices names them bf16, fp16, fp32.
        options["dtype"] = str(dtype).removeprefix("torch.")
    return load_extractor(path, **options)


class ExtractorLoader:
    """``from_pretrained(NAME)`` = ``load_extractor(NAME)``, returned as its first member's model.

    An ensemble has no model of its own, but transformers' ``Pipeline`` needs one (its config,
    device and tokenizer); the extractor rides on it as ``model.clinx_extractor`` and predicts.

    >>> model = ExtractorLoader.from_pretrained("runs/quickstart/model")  # doctest: +SKIP
    >>> type(model.clinx_extractor).__name__  # doctest: +SKIP
    'ClinXEnsemble'
    """

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any):
        extractor = _opened(path, kwargs)
        model = extractor.members[0].model
        model.clinx_extractor = extractor
        return model


def extraction_pipeline(path: str | Path, *, device: Any = None, dtype: Any = None, **kwargs):
    """The ``clinx-extraction`` pipeline of a model, ensemble or exported folder (or a Hub id of one).

    ``kwargs`` are the pipeline's call defaults (``threshold=0.5``, ``ignore_labels=[...]``, ``batch_size``).

    >>> extract = extraction_pipeline("runs/quickstart/model")  # doctest: +SKIP
    >>> extract(["Paciente de 45 años.", "Alta el 3 de mayo."])  # doctest: +SKIP
    """
    from .pipeline import TASK, ClinXExtractionPipeline

    extractor = _opened(path, {"dtype": dtype})
    first = extractor.members[0]
    return ClinXExtractionPipeline(
        model=first.model, tokenizer=first.tokenizer, extractor=extractor, task=TASK, device=device, **kwargs
    )


__all__ = ["ExtractorLoader", "extraction_pipeline"]
