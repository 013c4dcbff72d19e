"""One note of any length in memory that does not grow with it: the long-note path of extraction.

``extraction.extract_documents`` sends notes longer than ``STREAM_CHARS`` here. The data flow
is the same as for a short note, done piece by piece:

1. The text is cut into pieces of about ``PIECE_CHARS`` characters, only before a non-space
   character that follows whitespace (preferably a sentence start). Tokenizers split words at
   whitespace, so the pieces' subwords are the whole text's subwords (tests compare the two).
2. Subwords gather in a buffer. Centres are cut from it exactly as ``windows.centres`` cuts a
   whole document; a centre is kept only once the buffer reaches a full window past its start,
   so the cuts do not depend on where the pieces ended.
3. The windows of a round of centres are encoded; their emissions go, in order, into an
   online Viterbi (exact: :class:`~clinx_hub.streaming_crf.StreamingViterbi`) and an online
   forward-backward (:class:`~clinx_hub.streaming_crf.StreamingMarginals`).
4. Final tags become spans as soon as an ``O`` closes them; buffered subwords no window or span
   needs any more are dropped.

What stays in memory is the text, the spans found, and a few rounds of subwords and emissions.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from typing import Protocol

import torch

from .documents import Document, Span
from .encoding import encode_windows
from .modeling_clinx import ClinXForTokenClassification
from .streaming_crf import StreamingMarginals, StreamingViterbi
from .tagging import tags_to_spans
from .windows import (
    SpecialTokens,
    TokenizedDocument,
    centres,
    make_window,
    tokenize_document,
)

STREAM_CHARS = 50_000
"""Notes longer than this (characters) take the streaming path."""
PIECE_CHARS = 20_000
"""Characters tokenized at a time."""
ROUND_SUBWORDS = 8_192
"""Subwords whose centres are encoded per round (about 27 windows of 512 with context 100)."""
LOOKAHEAD = 512
"""Positions the backward pass of the marginals looks ahead (see ``StreamingMarginals``)."""


class Progress(Protocol):
    """What extraction reports progress to (a ``tqdm`` bar is one): characters finished, as they finish."""

    def update(self, n: int) -> object: ...


def text_pieces(text: str, sentence_starts: list[int], piece_chars: int = PIECE_CHARS) -> Iterator[tuple[int, int]]:
    """Consecutive ``(start, end)`` character ranges that cover ``text``, each at most ``piece_chars`` long.

    A cut goes before a non-space character that follows whitespace: at the last such sentence
    start in the second half of the piece, else at the last such character there. A text with no
    whitespace in half a piece is cut where it must be (the one word there may tokenize
    differently from the whole text's).

    >>> list(text_pieces("aaa bbb. ccc ddd", [0, 9], piece_chars=10))
    [(0, 9), (9, 16)]
    """
    start, n = 0, len(text)
    while n - start > piece_chars:
        cut = _cut(text, sentence_starts, start + piece_chars // 2, start + piece_chars)
        yield start, cut
        start = cut
    yield start, n


def _cut(text: str, sentence_starts: list[int], lo: int, hi: int) -> int:
    """The last good cut in ``(lo, hi]`` (``hi < len(text)``): see ``text_pieces``."""

    def good(c: int) -> bool:
        return text[c - 1].isspace() and not text[c].isspace()

    for i in range(bisect.bisect_right(sentence_starts, hi) - 1, -1, -1):
        if sentence_starts[i] <= lo:
            break
        if good(sentence_starts[i]):
            return sentence_starts[i]
    return next((c for c in range(hi, lo, -1) if good(c)), hi)


class _SubwordBuffer:
    """A stretch of a long note's subwords, ``[base, base + len)``, with global offsets and word ids."""

    def __init__(self, doc_id: str):
        self.doc = TokenizedDocument(doc_id, [], [], [], [], set())
        self.base = 0
        self.next_word = 0

    def __len__(self) -> int:
        return len(self.doc.input_ids)

    @property
    def end(self) -> int:
        return self.base + len(self)

    def append(self, piece: TokenizedDocument, char_start: int) -> None:
        doc, shift = self.doc, len(self.doc.input_ids)
        doc.input_ids += piece.input_ids
        doc.offsets += [(s + char_start, e + char_start) for s, e in piece.offsets]
        doc.word_ids += [None if w is None else w + self.next_word for w in piece.word_ids]
        doc.labelled += piece.labelled
        doc.sentence_starts |= {p + shift for p in piece.sentence_starts}
        self.next_word += max((w for w in piece.word_ids if w is not None), default=-1) + 1

    def drop_before(self, position: int) -> None:
        """Forget the subwords before global ``position``."""
        k = position - self.base
        if k <= 0:
            return
        doc = self.doc
        doc.input_ids, doc.offsets = doc.input_ids[k:], doc.offsets[k:]
        doc.word_ids, doc.labelled = doc.word_ids[k:], doc.labelled[k:]
        doc.sentence_starts = {p - k for p in doc.sentence_starts if p >= k}
        self.base = position


class _TagStream:
    """Emissions of labelled positions in, in order; their final tag ids and scores out, in order."""

    def __init__(self, model: ClinXForTokenClassification, with_scores: bool, lookahead: int):
        crf = model.crf
        self.viterbi = StreamingViterbi(crf) if crf is not None else None
        self.marginals = StreamingMarginals(crf, lookahead) if crf is not None and with_scores else None
        self.with_scores = with_scores
        self.tags: list[torch.Tensor] = []
        self.probabilities: list[torch.Tensor] = []

    def push(self, emissions: torch.Tensor) -> tuple[list[int], list[float] | None]:
        if self.viterbi is None:  # softmax head: every position is final at once
            probabilities = emissions.float().softmax(-1)
            tags = probabilities.argmax(-1)
            scores = probabilities.gather(1, tags.unsqueeze(1)).squeeze(1).tolist() if self.with_scores else None
            return tags.tolist(), scores
        self.tags.append(self.viterbi.push(emissions))
        if self.marginals is not None:
            self.probabilities.append(self.marginals.push(emissions))
        return self._release()

    def finish(self) -> tuple[list[int], list[float] | None]:
        if self.viterbi is None:
            return [], [] if self.with_scores else None
        self.tags.append(self.viterbi.finish())
        if self.marginals is not None:
            self.probabilities.append(self.marginals.finish())
        return self._release()

    def _release(self) -> tuple[list[int], list[float] | None]:
        tags = torch.cat(self.tags)
        if self.marginals is None:
            self.tags = []
            return tags.tolist(), None
        probabilities = torch.cat(self.probabilities)
        k = min(len(tags), len(probabilities))
        self.tags, self.probabilities = [tags[k:]], [probabilities[k:]]
        scores = probabilities[:k].gather(1, tags[:k].unsqueeze(1)).squeeze(1)
        return tags[:k].tolist(), scores.tolist()


@torch.no_grad()
def extract_long(
    model: ClinXForTokenClassification,
    tokenizer,
    document: Document,
    *,
    batch_size: int = 16,
    with_scores: bool = True,
    piece_chars: int = PIECE_CHARS,
    round_subwords: int = ROUND_SUBWORDS,
    lookahead: int = LOOKAHEAD,
    progress: Progress | None = None,
) -> list[Span]:
    """The spans of one note of any length; the same spans as the whole-note path gives.

    ``progress`` gets ``update(characters)`` after each round of windows, ``len(text)`` in all.

    >>> extract_long(model, tokenizer, Document("note", text, sentences=split_sentences(text)))  # doctest: +SKIP
    """
    config = model.config
    first_subword = config.tagging_level == "first_subword"
    special = SpecialTokens(tokenizer)
    room, context = config.max_window_length() - special.count, config.context_size
    text = document.text
    sentences = sorted(document.sentences)
    sentence_starts = [s for s, _ in sentences]
    pieces = text_pieces(text, sentence_starts, piece_chars)
    buffer = _SubwordBuffer(document.id)
    stream = _TagStream(model, with_scores, lookahead)
    id2label = config.id2label
    outside = {i for i, label in id2label.items() if label == "O"}
    waiting: deque[int] = deque()  # labelled positions sent to the stream, not yet returned
    ready: list[tuple[int, int, float]] = []  # (position, tag id, score) not yet grouped into spans
    spans: list[Span] = []
    grouped_to = 0  # spans were made from all positions before this one
    next_start, exhausted = 0, False
    reported = 0  # characters reported to progress

    def group(until: int, entries: list[tuple[int, int, float]]) -> None:
        nonlocal grouped_to
        if until <= grouped_to:
            return
        lo = grouped_to - buffer.base
        width = until - grouped_to
        tags: list[str | None] = [None] * width
        scores = [0.0] * width if with_scores else None
        for position, tag, score in entries:
            tags[position - grouped_to] = id2label[tag]
            if scores is not None:
                scores[position - grouped_to] = score
        spans.extend(
            tags_to_spans(
                tags,
                buffer.doc.offsets[lo : lo + width],
                text,
                scores=scores,
                word_ids=buffer.doc.word_ids[lo : lo + width] if first_subword else None,
            )
        )
        grouped_to = until

    def take(tags: list[int], scores: list[float] | None) -> None:
        for i, tag in enumerate(tags):
            ready.append((waiting.popleft(), tag, scores[i] if scores is not None else 0.0))
        # Spans never run across an O: everything before the last O can be grouped now.
        last_o = next((i for i in range(len(ready) - 1, -1, -1) if ready[i][1] in outside), None)
        if last_o is not None:
            group(ready[last_o][0] + 1, ready[: last_o + 1])
            del ready[: last_o + 1]

    while True:
        while not exhausted and buffer.end < next_start + round_subwords + room + context + 1:
            piece = next(pieces, None)
            if piece is None:
                exhausted = True
                break
            a, b = piece
            first, last = bisect.bisect_left(sentence_starts, a), bisect.bisect_left(sentence_starts, b)
            inside = [(s - a, min(e, b) - a) for s, e in sentences[first:last]]
            buffer.append(
                tokenize_document(Document(document.id, text[a:b], sentences=inside), tokenizer, first_subword=first_subword),
                a,
            )
        cut = centres(buffer.doc, room, context, config.context_mode, start=next_start - buffer.base, sentence_cuts=False)
        if not exhausted:
            # A centre is final once a whole window past its start is known.
            cut = [c for c in cut if c[0] + room < len(buffer)]
            total, kept = 0, []
            for c in cut:
                if kept and total + c[1] - c[0] > round_subwords:
                    break
                kept.append(c)
                total += c[1] - c[0]
            cut = kept
        if not cut:
            break
        lo, hi = cut[0][0], cut[-1][1]
        emissions = torch.zeros(hi - lo, config.num_labels)
        labelled = torch.zeros(hi - lo, dtype=torch.bool)
        windows = [make_window(buffer.doc, 0, c, context, special) for c in cut]
        for _, positions, rows in encode_windows(model, tokenizer, windows, batch_size=batch_size):
            emissions[positions - lo] = rows
            labelled[positions - lo] = True
        positions = (torch.nonzero(labelled).squeeze(1) + lo + buffer.base).tolist()
        waiting.extend(positions)
        take(*stream.push(emissions[labelled]))
        if progress is not None:  # the characters up to the end of the round's last centre are done
            finished = buffer.doc.offsets[hi - 1][1] if hi else reported
            progress.update(max(finished - reported, 0))
            reported = max(reported, finished)
        next_start = buffer.base + hi
        if exhausted and hi == len(buffer):
            break
        # Keep the context of the next centre and every subword not yet grouped into spans.
        buffer.drop_before(min(next_start - context, grouped_to))
    take(*stream.finish())
    group(buffer.end, ready)
    if progress is not None and len(text) > reported:
        progress.update(len(text) - reported)
    return spans


__all__ = ["LOOKAHEAD", "PIECE_CHARS", "ROUND_SUBWORDS", "STREAM_CHARS", "Progress", "extract_long", "text_pieces"]
