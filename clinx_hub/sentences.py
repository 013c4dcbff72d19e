"""Sentence boundaries and word tokens as exact character offsets, tuned for clinical notes.

Clinical text breaks the assumptions of general-purpose splitters: headings and list items end
without punctuation, lines are hard-wrapped in the middle of sentences, and abbreviations
("Dr.", "tto.", "aprox.") and enumerators ("1.") are followed by capitals. The rules here are few
and deterministic so that offsets never move: a sentence is a ``(start, end)`` range of the
original text with surrounding whitespace left out. (sentencex 1.0.32 was tried: it joined a list
item with the following lines and did not split "mmHg. FC"; pysbd is unmaintained since 2021.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .documents import Span

# Lower-cased words that end with a period without ending the sentence (Spanish and English clinical
# usage). Units are deliberately absent: "mide 3 cm." often does end a sentence.
ABBREVIATIONS = frozenset(
    """
    dr dra drs dras sr sra sres sras srta ud uds dña dª d.ª prof lic ing
    aprox approx etc ej p.ej vs tto trat fig figs pág pag núm num nº n.º cap vol ed
    dcha dcho izq izqda izqdo avda av c/ pza sta sto hosp med dpto
    mr mrs ms jr st e.g i.e cf pt pts approx.
    """.split()
)

# Abbreviations only before a number: "No. 5" (English number), but "Alergias: no. Tabaco: sí."
# is two sentences (Spanish "no" ends many).
NUMBER_ABBREVIATIONS = frozenset({"no"})

# Sentence-final punctuation, optionally closed by quotes or brackets, before whitespace and a
# character that can open a sentence (capital, digit, opening quote/bracket, Spanish ¿¡, bullet).
# A match starts only at the first mark of a run ("...."), which the look-behind after the first
# mark checks: a match starting later in the run would also start at its first mark, and without
# the check each mark rescans the rest of the run. (A look-behind in front would cost the regex
# engine its fast scan for the first mark.)
_END = re.compile(r"""[.!?…](?<![.!?…].)[.!?…]*["'»”’)\]]*(?=[ \t\u00a0]+["'«“‘(\[¿¡•*\-–]?[A-ZÁÉÍÓÚÑÜ0-9])""")
_TOKEN = re.compile(r"\w+|[^\w\s\ufeff]")
_SPACE = " \t\r\n\u00a0\ufeff\u2028\u2029\f\v"


def split_sentences(text: str, protect: Iterable[Span] = ()) -> list[tuple[int, int]]:
    """Split ``text`` into sentences; a sentence is never cut inside any span of ``protect``.

    >>> text = "Dr. Pérez: HTA.\\nAntecedentes\\n- DM tipo 2\\nToma AAS 100 mg. Sin\\nalergias."
    >>> [text[s:e] for s, e in split_sentences(text)]
    ['Dr. Pérez: HTA.', 'Antecedentes', '- DM tipo 2', 'Toma AAS 100 mg.', 'Sin\\nalergias.']
    """
    cuts = sorted(set(_line_cuts(text)) | set(_punctuation_cuts(text)))
    sentences: list[tuple[int, int]] = []
    start = 0
    for cut in [*cuts, len(text)]:
        trimmed = _trim(text, start, cut)
        if trimmed:
            sentences.append(trimmed)
        start = cut
    return merge_across_spans(sentences, protect)


def word_tokens(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Word tokens of ``text[start:end]`` as document offsets: runs of word characters, or one symbol.

    >>> text = "TA 120/80 mmHg."
    >>> [text[s:e] for s, e in word_tokens(text)]
    ['TA', '120', '/', '80', 'mmHg', '.']
    """
    stop = len(text) if end is None else end
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text, start, stop)]


def _line_cuts(text: str) -> Iterable[int]:
    """Newlines end sentences, except a single line break inside a sentence that was hard-wrapped."""
    for match in re.finditer(r"\n", text):
        after = match.end()
        last = match.start() - 1
        while last >= 0 and text[last] in " \t\r":
            last -= 1
        previous = text[last] if last >= 0 else ""
        wrapped = text[after : after + 1].islower() and previous not in {".", "!", "?", ":", "\n", ""}
        if not wrapped:
            yield after


def _punctuation_cuts(text: str) -> Iterable[int]:
    # Every look-up stays near the match, and the line start is carried forward from the previous
    # match: searching back to the line start (or slicing to the end of the text) for each match
    # is quadratic on a note without line breaks.
    line_start = scanned = 0
    for match in _END.finditer(text):
        word_start = match.start()
        while word_start > 0 and text[word_start - 1] not in _SPACE:
            word_start -= 1
        token = text[word_start : match.start() + 1].lower()
        stem = token.rstrip(".!?…\"'»”’)]").lstrip("(\"'«“¿¡")
        newline = text.rfind("\n", scanned, match.start())
        if newline >= 0:
            line_start = newline + 1
        scanned = match.start()
        if text[match.start()] == "." and (
            stem in ABBREVIATIONS
            or f"{stem}." in ABBREVIATIONS
            or (stem in NUMBER_ABBREVIATIONS and _next_character(text, match.end()).isdigit())
            or (len(stem) == 1 and stem.isalpha())  # an initial: "J. García"
            or (stem.isdigit() and len(stem) <= 2 and _opens_sentence(text, word_start, line_start))
        ):
            continue  # abbreviation, initial, or an enumerator such as "1." opening a line or sentence
        yield match.end()


def _next_character(text: str, position: int) -> str:
    """The first character at or after ``position`` that is not whitespace (``""`` at the end)."""
    while position < len(text) and text[position] in _SPACE:
        position += 1
    return text[position : position + 1]


def _opens_sentence(text: str, position: int, line_start: int) -> bool:
    """Whether only whitespace, or a sentence end, precedes ``position`` on its line."""
    while position > line_start and text[position - 1] in _SPACE:
        position -= 1
    return position == line_start or text[position - 1] in ".!?:;"


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start] in _SPACE:
        start += 1
    while end > start and text[end - 1] in _SPACE:
        end -= 1
    return (start, end) if start < end else None


def merge_across_spans(sentences: list[tuple[int, int]], protect: Iterable[Span]) -> list[tuple[int, int]]:
    """Join consecutive sentences that an annotated span runs across, so no span is cut in two.

    >>> merge_across_spans([(0, 5), (6, 10), (11, 15)], [Span(3, 8, "X")])
    [(0, 10), (11, 15)]
    """
    spans = sorted((s.start, s.end) for s in protect)
    if not spans:
        return sentences
    merged: list[tuple[int, int]] = []
    reach = 0  # furthest end of any span that starts inside the sentences merged so far
    i = 0
    for start, end in sentences:
        if merged and reach > start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
        while i < len(spans) and spans[i][0] < end:
            reach = max(reach, spans[i][1])
            i += 1
    return merged
