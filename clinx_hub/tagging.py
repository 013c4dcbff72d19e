"""Character spans <-> subword BIOES (or BIO) tags, through a fast tokenizer's offsets.

Encoding never loses a span in silence: a span whose edges fall inside a subword is widened to
the subword edges and reported as ``aligned``; a span that cannot be represented in one flat tag
sequence (nested in, crossing or sharing a subword with a longer span, or covering no subword)
is reported with its reason. Decoding groups tags back into spans with the same character
arithmetic, so every span that encodes without a finding decodes to exactly itself.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from .documents import Finding, Span

SCHEMES = ("bioes", "bio")


def scheme_labels(entity_types: Sequence[str], scheme: str = "bioes") -> list[str]:
    """The tag set of a scheme, ``O`` first, then each type's tags together.

    >>> scheme_labels(["FECHAS", "CALLE"], "bioes")
    ['O', 'B-FECHAS', 'I-FECHAS', 'E-FECHAS', 'S-FECHAS', 'B-CALLE', 'I-CALLE', 'E-CALLE', 'S-CALLE']
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; expected one of {SCHEMES}")
    prefixes = "BIES" if scheme == "bioes" else "BI"
    return ["O"] + [f"{p}-{entity}" for entity in entity_types for p in prefixes]


@dataclass
class SpanTags:
    """The result of :func:`spans_to_tags`.

    ``tags[i]`` is the tag of position i, or ``None`` for a position that carries no label
    (special tokens; non-first subwords in word-level tagging). ``represented`` holds each span
    that made it into the tags, as the tags will decode it; ``findings`` everything else.
    """

    tags: list[str | None]
    represented: list[Span] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def unrepresentable(self) -> list[Finding]:
        return [f for f in self.findings if f.reason != "aligned"]


def tag_positions(
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None] | None = None,
    labelled: Sequence[bool] | None = None,
) -> tuple[list[bool], dict[int, int]]:
    """Which positions carry a tag, and (word level) the last position of each tagged word.

    A subword carries a tag when it has characters of its own: not empty, and not the bare
    ``▁`` that XLM-R-style tokenizers emit before some words, whose offsets repeat the next
    subword's first character (tagging both would yield two spans over the same characters).
    At word level only each word's first such subword carries the word's tag.

    >>> tag_positions([(0, 0), (0, 1), (0, 1), (1, 4), (0, 0)])[0]
    [False, False, True, True, False]
    """
    offsets = [tuple(o) for o in offsets]
    if labelled is None:
        labelled = [
            end > start and not (i + 1 < len(offsets) and offsets[i + 1][0] == start and offsets[i + 1][1] >= end)
            for i, (start, end) in enumerate(offsets)
        ]
    labelled = [bool(x) for x in labelled]
    last_of_word: dict[int, int] = {}
    if word_ids is not None:
        last_position: dict[int, int] = {}
        first_tagged: dict[int, int] = {}
        for position, word in enumerate(word_ids):
            if word is None:
                continue
            last_position[word] = position
            if labelled[position]:
                first_tagged.setdefault(word, position)
        last_of_word = {first: last_position[word] for word, first in first_tagged.items()}
        labelled = [position in last_of_word for position in range(len(offsets))]
    return labelled, last_of_word


class _Positions:
    """Which positions carry tags, and the character range a run of them stands for."""

    def __init__(
        self,
        offsets: Sequence[tuple[int, int]],
        labelled: Sequence[bool] | None,
        word_ids: Sequence[int | None] | None,
    ):
        self.offsets = [tuple(o) for o in offsets]
        self.labelled, self.last_of_word = tag_positions(self.offsets, word_ids, labelled)

        self._positions = [p for p, lab in enumerate(self.labelled) if lab]
        self._starts = [self.offsets[p][0] for p in self._positions]
        self._ends = [self.end_char(p) for p in self._positions]
        self._sorted = all(a <= b for a, b in zip(self._starts, self._starts[1:])) and all(
            a <= b for a, b in zip(self._ends, self._ends[1:])
        )

    def end_char(self, position: int) -> int:
        return self.offsets[self.last_of_word.get(position, position)][1]

    def covering(self, start: int, end: int) -> list[int]:
        """Labelled positions whose subword (or word) overlaps ``[start, end)``."""
        if self._sorted:  # offsets of one text ascend: binary search instead of a scan
            return self._positions[bisect_right(self._ends, start) : bisect_left(self._starts, end)]
        return [p for p, s, e in zip(self._positions, self._starts, self._ends) if s < end and e > start]


def spans_to_tags(
    spans: Sequence[Span],
    offsets: Sequence[tuple[int, int]],
    *,
    scheme: str = "bioes",
    labelled: Sequence[bool] | None = None,
    word_ids: Sequence[int | None] | None = None,
    doc_id: str = "",
) -> SpanTags:
    """Tag each position of one tokenized text from its character spans.

    Args:
        offsets: the fast tokenizer's ``offset_mapping`` for the text the spans index.
        labelled: which positions may carry a tag (default: see :func:`tag_positions`; pass
            ``~special_tokens_mask`` or a window's label mask to be explicit).
        word_ids: the encoding's ``word_ids()``, for word-level tagging on first subwords.

    >>> result = spans_to_tags([Span(4, 9, "X")], [(0, 0), (0, 3), (4, 6), (6, 9), (0, 0)])
    >>> result.tags
    [None, 'O', 'B-X', 'E-X', None]
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; expected one of {SCHEMES}")
    grid = _Positions(offsets, labelled, word_ids)
    tags: list[str | None] = ["O" if lab else None for lab in grid.labelled]
    owner: dict[int, Span] = {}
    result = SpanTags(tags=tags)
    # Longer spans claim their positions first: of nested spans the outer one is kept.
    for span in sorted(spans, key=lambda s: (-(s.end - s.start), s.start, s.label)):
        where = f"{doc_id}:{span.id}" if span.id else doc_id
        positions = grid.covering(span.start, span.end)
        if not positions:
            result.findings.append(Finding(doc_id, "no-subword", where, span, "the span covers no labelled subword"))
            continue
        first, last = positions[0], positions[-1]
        run = [p for p in range(first, last + 1) if grid.labelled[p]]
        taken = {owner[p] for p in run if p in owner}
        if taken:
            other = min(taken, key=lambda s: s.start)
            if (other.start, other.end, other.label) == (span.start, span.end, span.label):
                result.findings.append(Finding(doc_id, "duplicate", where, span, f"same span as {other.id or other}"))
            else:
                result.findings.append(Finding(doc_id, _overlap_reason(span, other), where, span, f"with {other.id or other}"))
            continue
        for p in run:
            owner[p] = span
        if len(run) == 1:
            tags[run[0]] = f"{'S' if scheme == 'bioes' else 'B'}-{span.label}"
        else:
            tags[run[0]] = f"B-{span.label}"
            for p in run[1:-1]:
                tags[p] = f"I-{span.label}"
            tags[run[-1]] = f"{'E' if scheme == 'bioes' else 'I'}-{span.label}"
        start, end = grid.offsets[first][0], grid.end_char(last)
        represented = Span(start, end, span.label, id=span.id, codes=span.codes)
        result.represented.append(represented)
        if (start, end) != (span.start, span.end):
            result.findings.append(
                Finding(doc_id, "aligned", where, span, f"edges moved to subword edges: {start}-{end}")
            )
    result.represented.sort(key=lambda s: (s.start, s.end))
    return result


def _overlap_reason(span: Span, other: Span) -> str:
    if not span.overlaps(other):
        return "shares-subword"
    if other.start <= span.start and span.end <= other.end:
        return "nested"
    return "crossing"


def tags_to_spans(
    tags: Sequence[str | None],
    offsets: Sequence[tuple[int, int]],
    text: str | None = None,
    *,
    scores: Sequence[float] | None = None,
    word_ids: Sequence[int | None] | None = None,
) -> list[Span]:
    """Group BIOES or BIO tags into character spans; ``None`` positions are skipped.

    Well-formed sequences (every CRF path) decode exactly. Ill-formed ones (argmax of a softmax
    head) are read leniently: an ``I``/``E`` that continues nothing starts a mention, a type
    change ends one, and a mention left open is closed at its last tag. A span's ``score`` is
    the mean of ``scores`` (the probability of each position's tag) over its positions.

    >>> tags_to_spans([None, "O", "B-X", "E-X", None], [(0, 0), (0, 3), (4, 6), (6, 9), (0, 0)], "abc defgh")
    [Span(start=4, end=9, label='X', text='defgh', id='', codes=(), score=None)]
    """
    grid = _Positions(offsets, [t is not None for t in tags], word_ids)
    spans: list[Span] = []
    current: list[int] = []
    current_label: str | None = None

    def close() -> None:
        nonlocal current, current_label
        if current:
            start, end = grid.offsets[current[0]][0], grid.end_char(current[-1])
            score = None if scores is None else sum(scores[p] for p in current) / len(current)
            spans.append(Span(start, end, current_label, text=text[start:end] if text is not None else "", score=score))
        current, current_label = [], None

    for position, tag in enumerate(tags):
        if tag is None or not grid.labelled[position]:
            continue
        prefix, _, label = tag.partition("-")
        if prefix in ("B", "S") or tag == "O" or label != current_label:
            close()
        if tag == "O":
            continue
        current.append(position)
        current_label = label
        if prefix in ("E", "S"):
            close()
    close()
    return spans


__all__ = ["SCHEMES", "SpanTags", "scheme_labels", "spans_to_tags", "tag_positions", "tags_to_spans"]
