"""Per-split corpus statistics: documents, spans read, spans a flat tagger can represent, and why not.

What ``clinx data stats`` prints and the dataset card summarises. Statistics name documents,
files, lines, labels and offsets, never document text: the annotated and actual text of a
mismatched span are shown only when asked for (``clinx data stats --show-text``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from clinx_hub.corpora import get_task, load_task
from clinx_hub.documents import Document, Finding
from clinx_hub.flat_tags import DISCONTINUOUS_SPAN, flat_spans
from clinx_hub.formats.base import (
    CRLF_NORMALISED,
    CROSSING_SPAN,
    DUPLICATE_SPAN,
    MISALIGNED_SPAN,
    NESTED_SPAN,
    OFFSET_SHIFT,
    REPAIRED_XML,
    TEXT_MISMATCH,
)

# Reasons whose detail names only ids, labels, offsets and tags; any other detail (a text mismatch
# quotes both texts, and a new reason may quote text too) is left out unless text is asked for.
_DETAILS_WITHOUT_TEXT = frozenset({
    CRLF_NORMALISED, CROSSING_SPAN, DISCONTINUOUS_SPAN, DUPLICATE_SPAN, MISALIGNED_SPAN, NESTED_SPAN, OFFSET_SHIFT,
    REPAIRED_XML,
})


def _finding_record(finding: Finding, *, with_text: bool) -> dict[str, object]:
    record: dict[str, object] = {"doc_id": finding.doc_id, "reason": finding.reason, "location": finding.location}
    if finding.span is not None:
        record.update(id=finding.span.id, label=finding.span.label, start=finding.span.start, end=finding.span.end)
    if with_text or finding.reason in _DETAILS_WITHOUT_TEXT:
        record["detail"] = finding.detail
    return record


def split_statistics(documents: list[Document], labels: tuple[str, ...] = (), *, with_text: bool = False) -> dict:
    """Counts for one split; ``not_flat`` lists every span a flat tag sequence cannot hold, with a reason.

    ``repairs`` lists what the readers repaired (shifted offsets, escaped XML, ...); labels outside
    ``labels`` are listed under ``unexpected_labels``. A finding's ``detail`` is left out where it
    would quote document text (a text mismatch), unless ``with_text``.

    >>> from clinx_hub.documents import Span
    >>> stats = split_statistics([Document("d", "ab cd", [Span(0, 2, "X", "ab"), Span(1, 2, "X", "b")])])
    >>> stats["spans"], stats["flat_spans"], stats["not_flat_reasons"]
    (2, 1, {'misaligned': 1})
    """
    label_counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    not_flat, repairs = [], []
    flat = 0
    for document in documents:
        label_counts.update(span.label for span in document.spans)
        result = flat_spans(document)
        flat += len(result.kept)
        for finding in result.set_aside:
            reasons[finding.reason] += 1
            not_flat.append(_finding_record(finding, with_text=with_text))
        # Mismatched spans are already listed under not_flat, with the reader's location.
        repairs += [_finding_record(f, with_text=with_text) for f in document.findings if f.reason != TEXT_MISMATCH]
    return {
        "documents": len(documents),
        "empty_documents": sum(1 for d in documents if not d.spans),
        "sentences": sum(len(d.sentences) for d in documents),
        "spans": sum(label_counts.values()),
        "flat_spans": flat,
        "labels": dict(label_counts.most_common()),
        "unexpected_labels": sorted(set(label_counts) - set(labels)) if labels else [],
        "not_flat_reasons": dict(reasons.most_common()),
        "not_flat": not_flat,
        "repairs": repairs,
    }


def task_statistics(task_name: str, data_dir: Path, *, with_text: bool = False) -> dict:
    """Statistics of every present split of ``task_name`` read from ``data_dir`` (see ``split_statistics``).

    >>> task_statistics("pharmaconer", Path("../shared/corpora"))["splits"]["train"]["spans"]  # doctest: +SKIP
    3822
    """
    task = get_task(task_name)
    splits = load_task(task_name, data_dir)
    return {
        "task": task_name,
        "data_dir": str(data_dir),
        "splits": {
            name: split_statistics(documents, task.labels, with_text=with_text) for name, documents in splits.items()
        },
    }


def format_statistics(stats: dict) -> str:
    """A human-readable table of ``task_statistics`` output, then one line per span set aside."""
    rows = [f"{stats['task']} ({stats['data_dir']})", f"{'split':<12}{'docs':>7}{'spans':>8}{'flat':>8}  set aside"]
    for name, split in stats["splits"].items():
        reasons = ", ".join(f"{reason} {count}" for reason, count in split["not_flat_reasons"].items()) or "-"
        rows.append(f"{name:<12}{split['documents']:>7}{split['spans']:>8}{split['flat_spans']:>8}  {reasons}")
    for name, split in stats["splits"].items():
        for item in split["not_flat"]:
            rows.append(f"  {name}: {item['reason']}: {_where(item)} {item.get('label', '')} "
                        f"{item.get('start', '')}-{item.get('end', '')} {item.get('detail', '')}".rstrip())
        for item in split["repairs"]:
            rows.append(f"  {name}: repaired {item['reason']}: {item['location']} {item.get('detail', '')}".rstrip())
        if split["unexpected_labels"]:
            rows.append(f"  {name}: labels outside the task's label set: {', '.join(split['unexpected_labels'])}")
    return "\n".join(rows)


def _where(item: dict) -> str:
    """A finding's location, then its document and span ids where the location (a file, a line) does not name them."""
    names = [item["location"]]
    if item["doc_id"] and item["doc_id"] not in item["location"]:
        names.append(item["doc_id"])
    if item.get("id") and item["id"] not in item["location"].split():
        names.append(item["id"])
    return " ".join(names)
