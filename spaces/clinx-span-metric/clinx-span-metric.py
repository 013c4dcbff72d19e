"""Strict span precision, recall and F1 as the official Spanish clinical shared-task scorers compute them.

An ``evaluate`` module (``evaluate.load("spaces/clinx-span-metric")``) that counts exactly as
``clinx score`` (clinx_hub/evaluation.py): each document's gold and predicted spans become *sets*
of ``(label, start, end)`` (a span repeated in one document counts once); TP = gold ∩ pred,
FP = pred − gold, FN = gold − pred, summed over documents (micro) and per label.

Self-contained on purpose: on the Hub this file runs where clinx_hub is not installed, so it
imports only evaluate, datasets and the standard library, each on its own line (evaluate reads
the import lines to check dependencies, and ``import a, b`` breaks that check). Its file name is
the folder's name because ``evaluate.load(folder)`` looks for ``<folder name>.py``.
"""

from __future__ import annotations

from collections import Counter

import datasets
import evaluate

_DESCRIPTION = """\
Strict (label, start, end) span matching over documents, the metric of MEDDOCAN, PharmaCoNER,
CANTEMIST and MEDDOPROF: per document the spans are sets, so a span repeated in one document
counts once; true positives, false positives and false negatives are summed over documents
(micro) and per label. A label that only the predictions use shows up with its false positives.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: one entry per document, each a list of spans {"label": str, "start": int, "end": int}
        (character offsets, end exclusive).
    references: the gold spans, one entry per document in the same order as the predictions.
Returns:
    precision, recall, f1: strict micro scores in 0-1 (0.0 where undefined);
    tp, fp, fn: the micro counts;
    per_label: {label: {"precision", "recall", "f1", "tp", "fp", "fn", "support"}} for every label
        of either side, sorted by label; support = tp + fn, the distinct gold spans of that label.
Examples:
    >>> metric = evaluate.load("spaces/clinx-span-metric")  # doctest: +SKIP
    >>> gold = [[{"label": "SINTOMA", "start": 0, "end": 6}, {"label": "GRADO", "start": 7, "end": 11}]]
    >>> pred = [[{"label": "SINTOMA", "start": 0, "end": 6}, {"label": "SINTOMA", "start": 0, "end": 11}]]
    >>> result = metric.compute(predictions=pred, references=gold)  # doctest: +SKIP
    >>> result["tp"], result["fp"], result["fn"], result["f1"]  # doctest: +SKIP
    (1, 1, 1, 0.5)
"""

_CITATION = """\
@article{lange2022clinx,
  title   = {{CLIN-X}: pre-trained language models and a study on cross-task transfer for concept extraction in the clinical domain},
  author  = {Lange, Lukas and Adel, Heike and Str{\\"o}tgen, Jannik and Klakow, Dietrich},
  journal = {Bioinformatics},
  year    = {2022},
  note    = {arXiv:2112.08754}
}
"""  # noqa: E501 - the paper's title, verbatim

SPAN = {"label": datasets.Value("string"), "start": datasets.Value("int64"), "end": datasets.Value("int64")}
# A plain list of the span dict: evaluate 0.4.6 encodes it as a list of structs. datasets.Sequence(SPAN)
# would turn into a dict of lists, which evaluate 0.4.6 refuses for a list of span dicts.
DOCUMENT_SPANS = [SPAN]


def _scores(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    # The harmonic mean of P and R, as clinx_hub.evaluation.Scores computes it.
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _span_keys(spans: list[dict], side: str, document: int) -> set[tuple[str, int, int]]:
    """One document's spans as the set of ``(label, start, end)`` the strict scorers compare."""
    keys = set()
    for index, span in enumerate(spans):
        where = f"{side}[{document}][{index}]"
        missing = [field for field in ("label", "start", "end") if span.get(field) is None]
        if missing:
            raise ValueError(f"{where}: the span has no {', '.join(missing)} (each span needs label, start and end)")
        if span["start"] < 0 or span["end"] < span["start"]:
            raise ValueError(f"{where}: start {span['start']} and end {span['end']} are not a span (0 <= start <= end)")
        keys.add((span["label"], span["start"], span["end"]))
    return keys


def strict_span_scores(predictions: list[list[dict]], references: list[list[dict]]) -> dict:
    """Micro and per-label strict scores of ``predictions`` against ``references``, documents paired by position.

    >>> gold = [[{"label": "SINTOMA", "start": 0, "end": 6}], []]
    >>> pred = [[{"label": "SINTOMA", "start": 0, "end": 6}] * 2, [{"label": "FECHA", "start": 3, "end": 5}]]
    >>> result = strict_span_scores(pred, gold)
    >>> result["tp"], result["fp"], result["fn"], sorted(result["per_label"])
    (1, 1, 0, ['FECHA', 'SINTOMA'])
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} documents of predictions but {len(references)} of references")
    counts: dict[str, Counter] = {"tp": Counter(), "fp": Counter(), "fn": Counter()}
    for document, (predicted, gold) in enumerate(zip(predictions, references)):
        pred_keys = _span_keys(predicted or [], "predictions", document)
        gold_keys = _span_keys(gold or [], "references", document)
        for name, keys in (("tp", gold_keys & pred_keys), ("fp", pred_keys - gold_keys), ("fn", gold_keys - pred_keys)):
            counts[name].update(label for label, _, _ in keys)
    labels = sorted(set().union(*counts.values()))
    per_label = {}
    for label in labels:
        scores = _scores(counts["tp"][label], counts["fp"][label], counts["fn"][label])
        per_label[label] = {**scores, "support": scores["tp"] + scores["fn"]}
    return {**_scores(*(sum(counts[name].values()) for name in ("tp", "fp", "fn"))), "per_label": per_label}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClinxSpanMetric(evaluate.Metric):
    """The strict span metric of ``clinx score`` as an ``evaluate`` module."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": DOCUMENT_SPANS, "references": DOCUMENT_SPANS}),
            codebase_urls=["https://github.com/clinx-hub/clinx_hub"],
            reference_urls=["https://arxiv.org/abs/2112.08754"],
        )

    def _compute(self, predictions: list[list[dict]], references: list[list[dict]]) -> dict:
        return strict_span_scores(predictions, references)
