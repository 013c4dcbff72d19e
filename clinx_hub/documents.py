"""The one document type every reader produces and every later stage consumes.

Offsets are Python ``str`` code-point offsets into ``Document.text`` with ``end`` exclusive,
exactly as BRAT stores them (a byte-order mark at position 0 counts as a character).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Span:
    """One annotated (or predicted) mention: a labelled character range of a document.

    >>> Span(start=0, end=4, label="FECHAS", text="2019", id="T1")
    Span(start=0, end=4, label='FECHAS', text='2019', id='T1', codes=(), score=None)
    """

    start: int
    end: int
    label: str
    text: str = ""
    id: str = ""
    codes: tuple[str, ...] = ()
    """Normalisation codes attached to the span (BRAT ``#`` AnnotatorNotes, ``N`` references)."""
    score: float | None = None
    """A model's confidence in the span; ``None`` for gold annotations."""
    fragments: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    """The ``(start, end)`` pieces of a discontinuous span (BRAT ``0 5;9 12``); empty when contiguous."""

    @property
    def key(self) -> tuple[str, int, int]:
        """What the strict shared-task scorers compare: ``(label, start, end)``."""
        return (self.label, self.start, self.end)

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Finding:
    """Something questionable about an input that was kept (or repaired), never dropped silently.

    ``location`` names the file and line (``"train/S01.ann:7"``) or field the finding refers to.
    """

    doc_id: str
    reason: str
    location: str = ""
    span: Span | None = None
    detail: str = ""


@dataclass
class Document:
    """A clinical note with its gold (or predicted) spans and sentence boundaries.

    >>> doc = Document(id="n1", text="Dolor. Fiebre alta.", spans=[Span(7, 18, "SINTOMA")])
    >>> doc.span_text(doc.spans[0])
    'Fiebre alta'
    """

    id: str
    text: str
    spans: list[Span] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)
    """Sentence boundaries as ``(start, end)`` character offsets, in document order."""
    findings: list[Finding] = field(default_factory=list)
    """What the reader noticed and repaired or kept (shifted offsets, nested spans, ...)."""
    metadata: dict[str, str] = field(default_factory=dict)

    def span_text(self, span: Span) -> str:
        return self.text[span.start : span.end]

    def with_spans(self, spans: list[Span]) -> Document:
        """A copy of this document carrying ``spans`` instead (e.g. predictions)."""
        return replace(self, spans=list(spans), findings=[])
