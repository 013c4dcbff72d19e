"""``pipeline("clinx-extraction")``: CLIN-X spans from raw text through transformers' pipeline API.

How it differs from ``pipeline("token-classification")`` on the same model:

- **Decoding.** Tags are the CRF's Viterbi path (BIOES, constrained), not the argmax of the
  emissions; ``token-classification`` ignores the CRF and reads ``E-x``/``S-x`` as entity types
  of their own (a two-subword ``B-x E-x`` mention comes out as two pieces).
- **Length and context.** A text of any length is cut into the windows the model was trained
  on (``config.context_size`` subwords of input-only context on each side, never across
  documents); the emissions of each subword's one labelled window are stitched back together
  and decoded with one Viterbi pass over the whole text, so a mention is never split where two
  windows meet. ``token-classification`` truncates, or with ``stride`` decodes overlapping chunks
  independently and keeps the longer of two overlapping entities.
- **Scores.** A span's score is the mean CRF marginal of its subwords' tags.

``config.viterbi_logits=True`` makes ``token-classification`` show the CRF path (as BIO) on text
that fits one window and has no bare ``▁`` subword; see :class:`clinx_hub.ClinXConfig`.

All of it is :func:`clinx_hub.extraction.extract_documents`; this module only adapts inputs and
outputs. Single models load with ``pipeline("clinx-extraction", model=...)``; ensemble folders
(``ensemble.json``, no ``config.json`` at the top) through :func:`extraction_pipeline`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from transformers import Pipeline

from .documents import Document, Span
from .ensemble import load_extractor
from .extraction import _as_documents, extract_documents
from .folders import MODEL_TYPE, ModelFolderError
from .outputs import deidentify as deidentified_text

TASK = "clinx-extraction"
DEID_MODES = ("label", "surrogate")


class ClinXExtractionPipeline(Pipeline):
    """Spans of one text or of many texts, each of any length, the way the model was trained.

    Each span is a dict with the keys of ``token-classification``'s grouped output:
    ``entity_group`` (the label, never with a ``B-``/``E-``/``S-`` prefix), ``score``, ``word``
    (the exact text ``text[start:end]``), ``start`` and ``end`` (character offsets).
    With ``deidentify="label"`` or ``"surrogate"`` each text gives
    ``{"entities": [...], "deidentified": masked_text}`` instead (see
    :func:`clinx_hub.outputs.deidentify`).

    ``batch_size`` (default 16) is the number of encoder windows per forward pass; windows of
    all texts in a call are sorted by length before batching.

    Why ``__call__`` is overridden: the unit of work is a group of documents, not a tensor. All
    windows of a document must be encoded before its one Viterbi pass, and windows of different
    documents are batched together; the base class's per-item DataLoader would either feed one
    text at a time or try to pad-collate documents. ``preprocess``/``_forward``/``postprocess``
    therefore take a group of documents, and ``__call__`` cuts the input into groups.

    >>> import clinx_hub
    >>> from transformers import pipeline
    >>> extract = pipeline("clinx-extraction", model="runs/meddocan")  # doctest: +SKIP
    >>> extract("Paciente de 45 años.")  # doctest: +SKIP
    [{'entity_group': 'EDAD_SUJETO_ASISTENCIA', 'score': 0.98, 'word': '45 años', 'start': 12, 'end': 19}]
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    DOCUMENTS_PER_GROUP = 64
    """Documents per extraction call when the input is streamed (a generator or a dataset)."""

    def __init__(self, *args, extractor=None, **kwargs):
        super().__init__(*args, **kwargs)
        model_type = getattr(self.model.config, "model_type", None)
        if model_type != MODEL_TYPE:
            # transformers opens a plain encoder folder with a random head: it would tag noise.
            raise ModelFolderError(
                f"{self.model.name_or_path or 'the model'} is not a clinx_hub model (model_type {model_type!r}, "
                f"not {MODEL_TYPE!r}): {TASK} needs a model trained with clinx_hub"
            )
        # An extractor (one model or an ensemble) predicts instead of the bare model.
        self.extractor = extractor
        if extractor is not None:
            for member in extractor.members:
                member.model.to(self.device)

    def _sanitize_parameters(self, deidentify: str | None = None, **unknown):
        if unknown:
            raise TypeError(f"{TASK} pipeline got unexpected options {sorted(unknown)}; it takes deidentify and batch_size")
        postprocess = {}
        if deidentify is not None:
            if deidentify not in DEID_MODES:
                raise ValueError(f"deidentify={deidentify!r}; expected one of {DEID_MODES}")
            postprocess["deidentify"] = deidentify
        return {}, {}, postprocess

    def __call__(self, inputs: str | Document | Iterable[str | Document], batch_size: int | None = None, **kwargs):
        """Spans of a text (a list of dicts), of a list of texts (a list of lists), or lazily of a stream."""
        _, _, postprocess_params = self._sanitize_parameters(**kwargs)
        postprocess_params = {**self._postprocess_params, **postprocess_params}
        batch_size = batch_size or self._batch_size or 16
        if isinstance(inputs, (str, Document)):
            return self._run([inputs], batch_size, postprocess_params)[0]
        if isinstance(inputs, (list, tuple)):
            return self._run(list(inputs), batch_size, postprocess_params)
        return self._stream(iter(inputs), batch_size, postprocess_params)

    def _run(self, items: Sequence[str | Document], batch_size: int, postprocess_params: dict) -> list:
        if not items:
            return []
        documents = self.preprocess(items)
        predictions = self.forward(documents, batch_size=batch_size)
        return self.postprocess((documents, predictions), **postprocess_params)

    def _stream(self, items: Iterator[str | Document], batch_size: int, postprocess_params: dict) -> Iterator:
        while group := list(islice(items, self.DOCUMENTS_PER_GROUP)):
            yield from self._run(group, batch_size, postprocess_params)

    def preprocess(self, items: Sequence[str | Document]) -> list[Document]:
        """Texts (or clinx_hub Documents) -> Documents with sentence boundaries."""
        for item in items:
            if not isinstance(item, (str, Document)):
                raise TypeError(f"{TASK} takes texts (str) or clinx_hub Documents, got {type(item).__name__}")
        return _as_documents(items)

    def _forward(self, documents: list[Document], batch_size: int = 16) -> list[list[Span]]:
        if self.extractor is not None:
            return self.extractor.predict(documents, batch_size=batch_size)
        return extract_documents(self.model, self.tokenizer, documents, batch_size=batch_size)

    def postprocess(self, outputs: tuple[list[Document], list[list[Span]]], deidentify: str | None = None) -> list:
        documents, predictions = outputs
        results = []
        for document, spans in zip(documents, predictions):
            entities = [
                {"entity_group": s.label, "score": s.score, "word": s.text, "start": s.start, "end": s.end}
                for s in spans
            ]
            if deidentify is None:
                results.append(entities)
            else:
                masked = deidentified_text(document.text, spans, mode=deidentify)
                results.append({"entities": entities, "deidentified": masked})
        return results


def extraction_pipeline(path: str | Path, *, device: Any = None, **kwargs) -> ClinXExtractionPipeline:
    """The ``clinx-extraction`` pipeline of a model folder or of an ensemble folder.

    ``pipeline("clinx-extraction", model=...)`` needs a ``config.json`` at the folder's top,
    which an ensemble folder does not have; this opens either with
    :func:`clinx_hub.ensemble.load_extractor` (members vote span by span).

    >>> extract = extraction_pipeline("runs/meddocan-ensemble")  # doctest: +SKIP
    >>> extract(["Paciente de 45 años.", "Alta el 3 de mayo."])  # doctest: +SKIP
    """
    extractor = load_extractor(path)
    # The base class wants one model and tokenizer: the first member's (an ensemble has no model
    # of its own); the extractor predicts, every member voting.
    first = extractor.members[0]
    return ClinXExtractionPipeline(
        model=first.model, tokenizer=first.tokenizer, extractor=extractor, task=TASK, device=device, **kwargs
    )


__all__ = ["ClinXExtractionPipeline", "extraction_pipeline"]
