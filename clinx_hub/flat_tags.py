"""Which gold spans a flat (one label per token) tagger can represent, and word-level BIO tags.

Decided at character level, before any subword tokenizer: a span is set aside when its stored
text does not match its offsets, when an edge falls inside a word or on whitespace, when it is
discontinuous, or when it overlaps a span that was kept (the earlier, then longer, span wins).
Set-aside spans stay in the gold set; they are only missing from the flat tag sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clinx_hub.documents import Document, Finding, Span
from clinx_hub.formats.base import (
    CROSSING_SPAN,
    DUPLICATE_SPAN,
    MISALIGNED_SPAN,
    NESTED_SPAN,
    TEXT_MISMATCH,
    span_matches,
)

DISCONTINUOUS_SPAN = "discontinuous"


@dataclass
class FlatSpans:
    """The spans of one document split into those a flat tagger represents and those it cannot."""

    kept: list[Span] = field(default_factory=list)
    set_aside: list[Finding] = field(default_factory=list)


def flat_spans(document: Document) -> FlatSpans:
    """Choose the spans of ``document`` that fit one flat tag sequence; report every other one.

    >>> doc = Document("d", "cáncer de mama", [Span(0, 14, "M", "cáncer de mama", "T1"), Span(0, 6, "M", "cáncer", "T2")])
    >>> result = flat_spans(doc)
    >>> [s.id for s in result.kept], [(f.reason, f.span.id) for f in result.set_aside]
    (['T1'], [('nested', 'T2')])
    """
    text = document.text
    source = document.metadata.get("source", document.id)
    reported = {f.span: f.location for f in document.findings if f.reason == TEXT_MISMATCH and f.span is not None}
    result = FlatSpans()
    candidates = []
    for span in document.spans:
        location = f"{source} {span.id}".strip()
        if not span_matches(text, span):
            detail = f"annotated {span.text!r}, text has {text[span.start:span.end]!r}"
            result.set_aside.append(Finding(document.id, TEXT_MISMATCH, reported.get(span, location), span, detail))
        elif span.fragments:
            result.set_aside.append(Finding(document.id, DISCONTINUOUS_SPAN, location, span, f"fragments {span.fragments}"))
        elif problem := _misalignment(text, span):
            result.set_aside.append(Finding(document.id, MISALIGNED_SPAN, location, span, problem))
        else:
            candidates.append(span)
    for span in sorted(candidates, key=lambda s: (s.start, -(s.end - s.start))):
        # Kept spans are disjoint and sorted, so only the last one can reach this later-starting span.
        clash = result.kept[-1] if result.kept and result.kept[-1].overlaps(span) else None
        if clash is None:
            result.kept.append(span)
            continue
        if (clash.start, clash.end) == (span.start, span.end):
            reason = DUPLICATE_SPAN
        elif clash.start <= span.start and span.end <= clash.end:
            reason = NESTED_SPAN
        else:
            reason = CROSSING_SPAN
        detail = f"{reason} with {clash.id or clash.label} {clash.label} {clash.start}-{clash.end}"
        result.set_aside.append(Finding(document.id, reason, f"{source} {span.id}".strip(), span, detail))
    return result


def _is_word(character: str) -> bool:
    """The word characters of ``sentences.word_tokens`` (regex ``\\w``), so kept spans align with its tokens."""
    return character.isalnum() or character == "_"


def _misalignment(text: str, span: Span) -> str:
    """Why an edge of ``span`` cannot fall on a word boundary, or ``""`` when both edges do."""
    if span.start >= span.end:
        return "empty span"
    if text[span.start].isspace() or text[span.end - 1].isspace():
        return "span starts or ends with whitespace"
    if span.start > 0 and _is_word(text[span.start - 1]) and _is_word(text[span.start]):
        return f"starts inside the word around offset {span.start}"
    if span.end < len(text) and _is_word(text[span.end - 1]) and _is_word(text[span.end]):
        return f"ends inside the word around offset {span.end}"
    return ""


def bio_tags(tokens: list[tuple[int, int]], spans: list[Span]) -> list[str]:
    """IOB2 tags for word ``tokens`` (document offsets) from non-overlapping, word-aligned ``spans``.

    >>> bio_tags([(0, 6), (7, 9), (10, 14)], [Span(0, 14, "M")])
    ['B-M', 'I-M', 'I-M']
    """
    tags = ["O"] * len(tokens)
    ordered = sorted(spans, key=lambda s: s.start)
    j = 0
    for i, (start, end) in enumerate(tokens):
        while j < len(ordered) and ordered[j].end <= start:
            j += 1
        if j < len(ordered) and ordered[j].start < end:
            span = ordered[j]
            tags[i] = ("B-" if start <= span.start else "I-") + span.label
    return tags
