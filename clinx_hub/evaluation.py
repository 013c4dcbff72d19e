"""Strict span evaluation exactly as the official Spanish shared-task scorers compute it.

For each document the gold and predicted spans become *sets* of ``(label, start, end)``;
TP = gold ∩ pred, FP = pred − gold, FN = gold − pred, summed over documents (micro).
Gold spans a flat tagger cannot represent (nested, crossing) stay in the gold set.
See ``shared/corpora/PROTOCOL.md`` and the "Official evaluation" notes of each corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clinx_hub.documents import Document, Span
from clinx_hub.formats.base import CorpusFormatError, read_text
from clinx_hub.formats.brat import parse_ann, read_brat_folder


@dataclass(frozen=True)
class Scores:
    """True/false positive and false negative counts with micro precision, recall and F1.

    >>> s = Scores(tp=3, fp=1, fn=2)
    >>> s.precision, s.recall, round(s.f1, 4)
    (0.75, 0.6, 0.6667)
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        """The number of distinct gold spans."""
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        # The harmonic mean of P and R, as the i2b2-derived and CANTEMIST scripts compute it.
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Scores) -> Scores:
        return Scores(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "support": self.support,
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
        }


@dataclass(frozen=True)
class WordCuts:
    """Spans with an edge strictly inside a word, the evidence for (or against) snapping edges to words.

    ``gold`` is the same count on the gold spans: if annotators themselves cut words, snapping
    predictions to word boundaries would turn some true positives into errors.
    """

    predicted: int = 0
    predicted_fp: int = 0
    gold: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"predicted": self.predicted, "predicted_fp": self.predicted_fp, "gold": self.gold}


@dataclass(frozen=True)
class EvaluationResult:
    """Strict micro scores, per-label scores, the documents scored and the word-cut counts."""

    micro: Scores
    """Strict ``(label, start, end)`` match: the figure PROTOCOL.md reports."""
    per_label: dict[str, Scores]
    span_only: Scores
    """Label-agnostic ``(start, end)`` match (MEDDOCAN subtrack 2 "strict")."""
    documents: int
    """How many documents were scored."""
    word_cuts: WordCuts
    common_only: bool = False
    unpredicted: list[str] = field(default_factory=list)
    """Gold documents without a prediction: scored as all-FN, or left out with ``common_only``."""
    unknown: list[str] = field(default_factory=list)
    """Predicted documents that are not in the gold standard: always ignored."""
    text_differs: list[str] = field(default_factory=list)
    """Scored documents whose prediction carries a text different from the gold text (offsets may not agree)."""

    def to_dict(self) -> dict:
        """A JSON-ready dictionary of everything in the result."""
        return {
            "metric": "strict micro P/R/F1 over per-document sets of (label, start, end)",
            "common_only": self.common_only,
            "documents": self.documents,
            "micro": self.micro.to_dict(),
            "span_only": self.span_only.to_dict(),
            "per_label": {label: scores.to_dict() for label, scores in self.per_label.items()},
            "word_cuts": self.word_cuts.to_dict(),
            "unpredicted_documents": list(self.unpredicted),
            "unknown_documents": list(self.unknown),
            "text_differs_documents": list(self.text_differs),
        }

    def format_table(self) -> str:
        """A plain-text table: one row per label, then the micro and span-only rows, then notes."""
        width = max([len(label) for label in self.per_label] + [len("span only (start, end)")])
        header = f"{'label':<{width}}  {'support':>7}  {'tp':>6}  {'fp':>6}  {'fn':>6}  {'P':>6}  {'R':>6}  {'F1':>6}"

        def row(name: str, s: Scores) -> str:
            return (
                f"{name:<{width}}  {s.support:>7}  {s.tp:>6}  {s.fp:>6}  {s.fn:>6}  "
                f"{100 * s.precision:>6.2f}  {100 * s.recall:>6.2f}  {100 * s.f1:>6.2f}"
            )

        universe = "documents in both gold and prediction" if self.common_only else "gold documents"
        lines = [f"strict (label, start, end) micro scores over {self.documents} {universe} (P/R/F1 in %)", header]
        lines += [row(label, scores) for label, scores in self.per_label.items()]
        lines += ["-" * len(header), row("micro", self.micro), row("span only (start, end)", self.span_only)]
        cuts = self.word_cuts
        lines.append(
            f"word cuts: {cuts.predicted} predicted spans have an edge inside a word "
            f"({cuts.predicted_fp} of them false positives); gold spans: {cuts.gold}"
        )
        fate = "left out (--common-only)" if self.common_only else "scored as false negatives"
        notes = [
            (self.unpredicted, f"gold document(s) without a prediction, {fate}"),
            (self.unknown, "predicted document(s) not in gold, ignored"),
            (self.text_differs, "document(s) whose predicted text differs from the gold text"),
        ]
        lines += [f"{len(ids)} {what}: {_few(ids)}" for ids, what in notes if ids]
        return "\n".join(lines)


def _few(ids: list[str], limit: int = 5) -> str:
    return ", ".join(ids[:limit]) + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def cuts_word(text: str, span: Span) -> bool:
    """Whether ``span`` starts or ends strictly inside a run of alphanumeric characters of ``text``.

    >>> cuts_word("Fiebre alta", Span(1, 6, "X")), cuts_word("Fiebre alta", Span(0, 6, "X"))
    (True, False)
    """

    def inside(offset: int) -> bool:
        return 0 < offset < len(text) and text[offset - 1].isalnum() and text[offset].isalnum()

    return inside(span.start) or inside(span.end)


def _by_id(documents: Iterable[Document], side: str) -> dict[str, Document]:
    found: dict[str, Document] = {}
    for document in documents:
        if document.id in found:
            # Two documents with one id would silently merge or shadow each other's spans.
            raise ValueError(f"document id {document.id!r} occurs twice in the {side} documents")
        found[document.id] = document
    return found


def score_documents(gold: list[Document], pred: list[Document], *, common_only: bool = False) -> EvaluationResult:
    """Strict micro P/R/F1 of ``pred`` against ``gold``, matched by document id.

    By default every gold document counts, as in the CANTEMIST and MEDDOPROF scorers: a gold
    document without a prediction contributes its spans as FN. ``common_only=True`` reproduces
    the MEDDOCAN and PharmaCoNER scripts, which score only documents present in both.
    Predictions for documents not in gold are listed in ``unknown`` and ignored either way.

    >>> gold = [Document("d1", "Fiebre alta", [Span(0, 6, "SINTOMA"), Span(7, 11, "GRADO")])]
    >>> pred = [Document("d1", "Fiebre alta", [Span(0, 6, "SINTOMA"), Span(0, 11, "SINTOMA")])]
    >>> r = score_documents(gold, pred)
    >>> (r.micro.tp, r.micro.fp, r.micro.fn), r.micro.f1
    ((1, 1, 1), 0.5)
    """
    gold_docs, pred_docs = _by_id(gold, "gold"), _by_id(pred, "predicted")
    unpredicted = sorted(gold_docs.keys() - pred_docs.keys())
    unknown = sorted(pred_docs.keys() - gold_docs.keys())
    scored = sorted(gold_docs.keys() & pred_docs.keys()) if common_only else sorted(gold_docs)

    counts: dict[str, Counter[str]] = {"tp": Counter(), "fp": Counter(), "fn": Counter()}
    span_only = Scores()
    cut_pred = cut_fp = cut_gold = 0
    text_differs = []
    for doc_id in scored:
        gold_doc, pred_doc = gold_docs[doc_id], pred_docs.get(doc_id)
        gold_keys = {span.key for span in gold_doc.spans}
        pred_keys = {span.key for span in pred_doc.spans} if pred_doc else set()
        for name, keys in (("tp", gold_keys & pred_keys), ("fp", pred_keys - gold_keys), ("fn", gold_keys - pred_keys)):
            counts[name].update(label for label, _, _ in keys)
        gold_edges = {(start, end) for _, start, end in gold_keys}
        pred_edges = {(start, end) for _, start, end in pred_keys}
        span_only += Scores(len(gold_edges & pred_edges), len(pred_edges - gold_edges), len(gold_edges - pred_edges))

        # Predictions index the gold text; a prediction's own text only stands in where gold has none.
        text = gold_doc.text or (pred_doc.text if pred_doc else "")
        if pred_doc and pred_doc.text and gold_doc.text and pred_doc.text != gold_doc.text:
            text_differs.append(doc_id)
        for label, start, end in pred_keys:
            if cuts_word(text, Span(start, end, label)):
                cut_pred += 1
                cut_fp += (label, start, end) not in gold_keys
        cut_gold += sum(cuts_word(text, Span(start, end, label)) for label, start, end in gold_keys)

    labels = sorted(set().union(*counts.values()))
    per_label = {label: Scores(counts["tp"][label], counts["fp"][label], counts["fn"][label]) for label in labels}
    micro = Scores(*(sum(counts[name].values()) for name in ("tp", "fp", "fn")))
    return EvaluationResult(
        micro=micro,
        per_label=per_label,
        span_only=span_only,
        documents=len(scored),
        word_cuts=WordCuts(cut_pred, cut_fp, cut_gold),
        common_only=common_only,
        unpredicted=unpredicted,
        unknown=unknown,
        text_differs=text_differs,
    )


def read_predictions(folder: Path, texts: dict[str, str] | None = None) -> list[Document]:
    """Read the ``T`` lines of every ``.ann`` in ``folder``; the ``.txt`` is optional, as for the official scorers.

    A document's text comes from its ``.txt`` when present, else from ``texts`` (the gold texts),
    else it is empty (such a document is not in gold and will be ignored). Other line types are
    skipped unparsed, so a note pointing at a missing id does not stop scoring; a malformed ``T``
    line raises ``CorpusFormatError`` with its file and line.

    >>> read_predictions(Path("runs/meddocan-test"))  # doctest: +SKIP
    """
    if not folder.is_dir():
        raise CorpusFormatError("not a folder of BRAT prediction files", folder)
    texts = texts or {}
    documents = []
    for ann_path in sorted(folder.glob("*.ann")):
        # Blank out every non-T line but keep the line count, so errors still name the right line.
        lines = read_text(ann_path).removeprefix("\ufeff").split("\n")  # a leading BOM would hide T1
        content = "\n".join(line if line.startswith("T") else "" for line in lines)
        entities = parse_ann(content, ann_path).entities
        txt_path = ann_path.with_suffix(".txt")
        text = read_text(txt_path) if txt_path.is_file() else texts.get(ann_path.stem, "")
        spans = [
            Span(e.fragments[0][0], e.fragments[-1][1], e.label, e.text, e.id,
                 fragments=e.fragments if len(e.fragments) > 1 else ())
            for e in entities
        ]
        documents.append(Document(id=ann_path.stem, text=text, spans=spans, metadata={"source": str(ann_path)}))
    return documents


def score_folders(gold_dir: Path, pred_dir: Path, *, common_only: bool = False) -> EvaluationResult:
    """Score a folder of predicted ``.ann`` files against a gold BRAT folder (``.txt`` + ``.ann``).

    An empty folder on either side is almost always a wrong path, so it raises ``CorpusFormatError``;
    a system that predicts nothing for a document still writes an empty ``.ann``.

    >>> score_folders(Path("corpora/meddocan/corpus/test/brat"), Path("runs/meddocan-test")).micro.f1  # doctest: +SKIP
    0.97
    """
    gold_dir, pred_dir = Path(gold_dir), Path(pred_dir)
    gold = read_brat_folder(gold_dir)
    if not gold:
        raise CorpusFormatError("no .txt/.ann pairs: not a gold BRAT folder", gold_dir)
    pred = read_predictions(pred_dir, {document.id: document.text for document in gold})
    if not pred:
        raise CorpusFormatError("no .ann files: not a folder of BRAT predictions", pred_dir)
    return score_documents(gold, pred, common_only=common_only)


def document_scores(gold: list[Document], pred: list[Document], *, common_only: bool = False) -> dict[str, Scores]:
    """Each scored document's strict counts, by id; summed, they are ``score_documents``' micro counts.

    >>> gold = [Document("d1", "Fiebre", [Span(0, 6, "SINTOMA")]), Document("d2", "Tos", [Span(0, 3, "SINTOMA")])]
    >>> document_scores(gold, [Document("d1", "Fiebre", [Span(0, 6, "SINTOMA")])])
    {'d1': Scores(tp=1, fp=0, fn=0), 'd2': Scores(tp=0, fp=0, fn=1)}
    """
    gold_docs, pred_docs = _by_id(gold, "gold"), _by_id(pred, "predicted")
    scored = sorted(gold_docs.keys() & pred_docs.keys()) if common_only else sorted(gold_docs)
    return {
        doc_id: score_documents([gold_docs[doc_id]], [pred_docs[doc_id]] if doc_id in pred_docs else []).micro
        for doc_id in scored
    }


@dataclass(frozen=True)
class PairedBootstrap:
    """System A against system B on the same documents, resampled together (Koehn 2004; Berg-Kirkpatrick 2012).

    ``difference`` is A's micro F1 minus B's on the documents as they are; ``low``/``high`` bound
    the central 95% of the resampled differences; ``a_better`` and ``ties`` are the shares of
    resamples in which A's F1 is higher than B's, or equal.
    """

    f1_a: float
    f1_b: float
    documents: int
    samples: int
    low: float
    high: float
    a_better: float
    ties: float

    @property
    def difference(self) -> float:
        return self.f1_a - self.f1_b

    def to_dict(self) -> dict[str, float | int]:
        return {
            "f1_a": self.f1_a, "f1_b": self.f1_b, "difference": self.difference, "documents": self.documents,
            "samples": self.samples, "difference_95_low": self.low, "difference_95_high": self.high,
            "a_better_share": self.a_better, "tie_share": self.ties,
        }


def paired_bootstrap(
    gold: list[Document],
    pred_a: list[Document],
    pred_b: list[Document],
    *,
    samples: int = 10_000,
    seed: int = 0,
    common_only: bool = False,
) -> PairedBootstrap:
    """How often system A's strict micro F1 beats B's when the documents are resampled with replacement.

    Documents, not spans, are the unit drawn: spans of one note are not independent. Each draw
    takes the same documents for both systems, so what varies between A and B is only the systems.

    >>> gold = [Document(str(i), "Fiebre", [Span(0, 6, "SINTOMA")]) for i in range(20)]
    >>> half = [d.with_spans([]) if int(d.id) % 2 else d for d in gold]
    >>> result = paired_bootstrap(gold, gold, half, samples=200)
    >>> round(result.difference, 3), result.a_better
    (0.333, 1.0)
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    by_a = document_scores(gold, pred_a, common_only=common_only)
    by_b = document_scores(gold, pred_b, common_only=common_only)
    if by_a.keys() != by_b.keys():
        only = sorted(by_a.keys() ^ by_b.keys())
        raise ValueError(f"the two systems are scored on different documents ({_few(only)}); predict every document")
    counts = {
        side: np.array([[s.tp, s.fp, s.fn] for s in scores.values()], dtype=np.int64).reshape(-1, 3)
        for side, scores in (("a", by_a), ("b", by_b))
    }
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(by_a), size=(samples, len(by_a))) if by_a else np.zeros((samples, 0), dtype=int)

    def f1(totals):  # 2TP / (2TP + FP + FN): the harmonic mean of P and R, 0 where there is nothing
        tp, fp, fn = totals[..., 0], totals[..., 1], totals[..., 2]
        denominator = 2 * tp + fp + fn
        return np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)

    resampled = {side: f1(c[draws].sum(axis=1)) for side, c in counts.items()}
    differences = resampled["a"] - resampled["b"]
    low, high = np.percentile(differences, [2.5, 97.5])
    return PairedBootstrap(
        f1_a=sum(by_a.values(), Scores()).f1,
        f1_b=sum(by_b.values(), Scores()).f1,
        documents=len(by_a),
        samples=samples,
        low=float(low),
        high=float(high),
        a_better=float(np.mean(differences > 0)),
        ties=float(np.mean(differences == 0)),
    )
