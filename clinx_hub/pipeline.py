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
- **Records.** Each span is the one record every clinx_hub output uses
  (:func:`clinx_hub.outputs.span_records`): ``start``, ``end``, ``label``, ``text``, ``score``.

``token-classification``'s call options are understood: ``aggregation_strategy`` ("simple",
"first", "max", "average": the CRF already gives whole spans, so each gives the same spans;
"none" has no per-subword entities to return and is refused), ``ignore_labels``, ``threshold``
(on the span score) and ``batch_size``; ``device`` and ``dtype`` are ``pipeline()``'s own.

All of it is :func:`clinx_hub.extraction.extract_documents`. This file and the extraction files it
imports travel to the Hub beside the model (``config.custom_pipelines``), so it imports only
transformers and files of that set: where clinx_hub is not installed,
``pipeline("clinx-extraction", model=REPO, trust_remote_code=True)`` runs this very code. Where it
is installed, ``pipeline("clinx-extraction", model=...)`` opens what ``load_extractor`` opens (a
model, an ensemble folder, an exported folder: :mod:`clinx_hub.extractor_pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from transformers import Pipeline

from .documents import Document, Span
from .extraction import _as_documents, extract_documents
from .outputs import deidentify as deidentified_text
from .outputs import span_records

# transformers' remote-code loader finds the files to fetch by their `from .x import` lines, and
# extraction.py imports streaming as a module (`from . import streaming`, so tests can patch it).
from .streaming import extract_long  # noqa: E402, F401, I001

TASK = "clinx-extraction"
MODEL_TYPE = "clinx"
DEID_MODES = ("label", "surrogate")
AGGREGATION_STRATEGIES = ("simple", "first", "max", "average")
"""token-classification's strategies that group subwords into entities; the CRF's spans already are whole."""
CALL_OPTIONS = ("aggregation_strategy", "ignore_labels", "threshold", "batch_size")


class ClinXExtractionPipeline(Pipeline):
    """Spans of one text or of many texts, each of any length, the way the model was trained.

    Each span is a dict ``{"start", "end", "label", "text", "score"}``: character offsets, the
    label (never with a ``B-``/``E-``/``S-`` prefix), the exact text ``text[start:end]`` and the
    mean CRF marginal. De-identified text is its own call, :meth:`deidentify`.

    ``batch_size`` (default 16) is the number of encoder windows per forward pass; windows of
    all texts in a call are sorted by length before batching.

    Why ``__call__`` is overridden: the unit of work is a group of documents, not a tensor. All
    windows of a document must be encoded before its one Viterbi pass, and windows of different
    documents are batched together; the base class's per-item DataLoader would either feed one
    text at a time or try to pad-collate documents. ``preprocess``/``_forward``/``postprocess``
    therefore take a group of documents, and ``__call__`` cuts the input into groups.

    >>> import clinx_hub
    >>> from transformers import pipeline
    >>> extract = pipeline("clinx-extraction", model="runs/quickstart/model")  # doctest: +SKIP
    >>> extract("Paciente de 45 años.", threshold=0.5)  # doctest: +SKIP
    [{'start': 12, 'end': 19, 'label': 'EDAD_SUJETO_ASISTENCIA', 'text': '45 años', 'score': 0.98}]
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
            raise ValueError(
                f"{self.model.name_or_path or 'the model'} is not a clinx_hub model (model_type {model_type!r}, "
                f"not {MODEL_TYPE!r}): {TASK} needs a model trained with clinx_hub"
            )
        # An extractor (one model, an ensemble, an exported model) predicts instead of the bare model;
        # clinx_hub's loader hands it over on the model it opened.
        self.extractor = extractor if extractor is not None else getattr(self.model, "clinx_extractor", None)
        if self.extractor is not None:
            self.extractor.to(self.device)

    def _sanitize_parameters(
        self,
        aggregation_strategy=None,
        ignore_labels: Iterable[str] | None = None,
        threshold: float | None = None,
        deidentify=None,
        **unknown,
    ):
        if deidentify is not None:
            raise TypeError(
                f"{TASK} returns spans; de-identified text is its own call: pipe.deidentify(texts, mode={deidentify!r})"
            )
        if unknown:
            raise TypeError(f"{TASK} got unexpected options {sorted(unknown)}; it takes {', '.join(CALL_OPTIONS)}")
        postprocess = {}
        if aggregation_strategy is not None:
            strategy = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
            if strategy == "none":
                raise ValueError(
                    f"aggregation_strategy='none' asks for one entity per subword, which {TASK} does not have: the "
                    f"CRF decodes whole spans (BIOES Viterbi). Leave it out, or use one of {AGGREGATION_STRATEGIES}"
                    " (all give the same whole spans)"
                )
            if strategy not in AGGREGATION_STRATEGIES:
                raise ValueError(f"aggregation_strategy={aggregation_strategy!r}; expected one of {AGGREGATION_STRATEGIES}")
        if ignore_labels is not None:
            if isinstance(ignore_labels, str):
                raise TypeError(f"ignore_labels takes a list of labels, got the string {ignore_labels!r}")
            postprocess["ignore_labels"] = frozenset(ignore_labels)
        if threshold is not None:
            if not 0.0 <= float(threshold) <= 1.0:
                raise ValueError(f"threshold={threshold!r}; a span score is between 0 and 1")
            postprocess["threshold"] = float(threshold)
        return {}, {}, postprocess

    def __call__(self, inputs: str | Document | Iterable[str | Document], batch_size: int | None = None, **kwargs):
        """Spans of a text (a list of dicts), of a list of texts (a list of lists), or lazily of a stream."""
        options = self._call_options(kwargs)
        batch_size = batch_size or self._batch_size or 16
        if isinstance(inputs, (str, Document)):
            return self._run([inputs], batch_size, options)[0]
        if isinstance(inputs, (list, tuple)):
            return self._run(list(inputs), batch_size, options)
        return self._stream(iter(inputs), batch_size, options)

    def deidentify(self, inputs: str | Sequence[str], mode: str = "label", batch_size: int | None = None, **kwargs):
        """The text with every span replaced (``"label"``: ``[NOMBRE]``; ``"surrogate"``: an invented stand-in).

        Takes the call's options too (``threshold``, ``ignore_labels``: what is not masked stays as written).

        >>> pipe.deidentify("Paciente Juan García.")  # doctest: +SKIP
        'Paciente [NOMBRE].'
        """
        if mode not in DEID_MODES:
            raise ValueError(f"mode={mode!r}; expected one of {DEID_MODES}")
        texts = [inputs] if isinstance(inputs, (str, Document)) else list(inputs)
        options = self._call_options(kwargs)
        documents = self.preprocess(texts)
        kept = self._kept(self.forward(documents, batch_size=batch_size or self._batch_size or 16), **options)
        masked = [deidentified_text(d.text, spans, mode=mode) for d, spans in zip(documents, kept)]
        return masked[0] if isinstance(inputs, (str, Document)) else masked

    def _call_options(self, kwargs: dict) -> dict:
        _, _, options = self._sanitize_parameters(**kwargs)
        return {**self._postprocess_params, **options}

    def _run(self, items: Sequence[str | Document], batch_size: int, options: dict) -> list:
        if not items:
            return []
        documents = self.preprocess(items)
        return self.postprocess(self.forward(documents, batch_size=batch_size), **options)

    def _stream(self, items: Iterator[str | Document], batch_size: int, options: dict) -> Iterator:
        while group := list(islice(items, self.DOCUMENTS_PER_GROUP)):
            yield from self._run(group, batch_size, options)

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

    @staticmethod
    def _kept(
        predictions: list[list[Span]], ignore_labels: frozenset[str] = frozenset(), threshold: float | None = None
    ) -> list[list[Span]]:
        return [
            [s for s in spans if s.label not in ignore_labels and (threshold is None or (s.score or 0.0) >= threshold)]
            for spans in predictions
        ]

    def postprocess(self, predictions: list[list[Span]], **options) -> list[list[dict]]:
        return [span_records(spans) for spans in self._kept(predictions, **options)]


__all__ = ["ClinXExtractionPipeline"]
