"""Documents -> encoder windows with cross-sentence context, never across a document boundary.

Each document is tokenized once, whole (a very long note piece by piece, see ``streaming.py``,
with the same result). Its subwords are cut into *centres* that tile the
document exactly once; a window is a centre plus up to ``context`` subwords of input-only
context on each side, taken from the same document. Only centre positions carry labels.

Two modes, stored in the model config so that training and inference always agree:

- ``window``: centres are as long as the encoder allows (``max_length`` minus the context the
  window actually has), cut at word starts; in training preferably at sentence starts and
  never inside a gold entity. A document shorter than one window is one window.
- ``sentence``: the paper's set-up, one centre per sentence (split further only when a sentence
  alone exceeds the room left by the context), with ``context`` subwords on each side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .documents import Document, Finding
from .tagging import spans_to_tags, tag_positions

IGNORE_INDEX = -100


class UnknownLabelError(ValueError):
    """Gold spans carry a label the model (or the task) does not have."""


@dataclass
class TokenizedDocument:
    """A whole document as subwords, with gold tags when spans were given."""

    doc_id: str
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    labelled: list[bool]
    """Which subwords carry a tag (see ``tagging.tag_positions``; word level: first subwords)."""
    sentence_starts: set[int] = field(default_factory=set)
    """Subword positions that begin a sentence."""
    tags: list[str | None] | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Window:
    """One encoder input: ``[special] left-context centre right-context [special]``.

    ``positions[i]`` is the document subword index of input position i (``-1`` for special
    tokens); ``centre`` is the document subword range ``[start, end)`` this window labels, and
    ``label_mask`` marks the input positions that carry a tag (the centre; in word-level tagging
    only its words' first subwords).
    """

    doc_index: int
    input_ids: list[int]
    positions: list[int]
    centre: tuple[int, int]
    label_mask: list[bool]
    labels: list[int] | None = None


class SpecialTokens:
    """Where a tokenizer puts its special tokens around one sequence (``<s> ... </s>``, ``[CLS] ... [SEP]``)."""

    def __init__(self, tokenizer):
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        full = tokenizer("a", add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                self.prefix, self.suffix = full[:start], full[start + len(plain) :]
                break
        else:  # pragma: no cover - no tokenizer seen does this
            raise ValueError(f"cannot find where {type(tokenizer).__name__} puts its special tokens")

    @property
    def count(self) -> int:
        return len(self.prefix) + len(self.suffix)


def tokenize_document(
    document: Document,
    tokenizer,
    label2id: dict[str, int] | None = None,
    *,
    scheme: str = "bioes",
    first_subword: bool = False,
) -> TokenizedDocument:
    """Tokenize a whole document once (no truncation); with ``label2id``, tag its gold spans.

    >>> tokenized = tokenize_document(doc, tokenizer, {"O": 0, "S-X": 1, ...})  # doctest: +SKIP
    """
    encoding = tokenizer(document.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = [tuple(o) for o in encoding["offset_mapping"]]
    word_ids = encoding.word_ids()
    starts = {s for s, _ in document.sentences}
    sentence_starts = set()
    if starts:
        # the first subword that begins at or after each sentence start
        pending = sorted(starts)
        i = 0
        for position, (start, _end) in enumerate(offsets):
            while i < len(pending) and pending[i] <= start:
                sentence_starts.add(position)
                i += 1
    labelled, _ = tag_positions(offsets, word_ids if first_subword else None)
    tokenized = TokenizedDocument(document.id, list(encoding["input_ids"]), offsets, word_ids, labelled, sentence_starts)
    if label2id is not None:
        result = spans_to_tags(
            document.spans,
            offsets,
            scheme=scheme,
            word_ids=word_ids if first_subword else None,
            labelled=labelled,
            doc_id=document.id,
        )
        unknown = {t.split("-", 1)[1] for t in result.tags if t not in (None, "O") and t not in label2id}
        if unknown:
            raise UnknownLabelError(
                f"{document.id}: labels {sorted(unknown)} are not in the model's label set "
                f"({sorted({t.split('-', 1)[1] for t in label2id if t != 'O'})})"
            )
        tokenized.tags = result.tags
        tokenized.findings = result.findings
    return tokenized


def _is_word_start(doc: TokenizedDocument, position: int) -> bool:
    if position == 0 or position >= len(doc.offsets):
        return True
    word = doc.word_ids[position]
    return word is None or word != doc.word_ids[position - 1]


def _inside_entity(doc: TokenizedDocument, position: int) -> bool:
    """Would a cut before ``position`` split a gold entity?"""
    if doc.tags is None or position <= 0:
        return False
    # The tag that matters is that of the next subword that carries one (indexed: a slice would
    # copy the rest of the document at every candidate cut).
    for index in range(position, len(doc.tags)):
        if doc.tags[index] is not None:
            return doc.tags[index][0] in ("I", "E")
    return False


def _choose_cut(doc: TokenizedDocument, start: int, latest: int, earliest: int, sentence_cuts: bool = True) -> int:
    """The best place in ``(earliest, latest]`` to end a centre that begins at ``start``."""
    if latest >= len(doc.input_ids):
        return len(doc.input_ids)
    preferences = [
        lambda p: _is_word_start(doc, p) and not _inside_entity(doc, p),
        lambda p: not _inside_entity(doc, p),
    ]
    if sentence_cuts:
        preferences.insert(0, lambda p: p in doc.sentence_starts and not _inside_entity(doc, p))
    for good in preferences:
        for cut in range(latest, earliest, -1):
            if good(cut):
                return cut
    return latest


def centres(
    doc: TokenizedDocument,
    room: int,
    context: int,
    mode: str = "window",
    *,
    start: int = 0,
    sentence_cuts: bool = True,
) -> list[tuple[int, int]]:
    """Cut a document's subwords from ``start`` on into centres that tile them exactly once.

    Args:
        room: positions available per window for subwords (the encoder's length minus specials).
        context: subwords of context wanted on each side of every centre.
        start: where the first centre begins (a centre start of an earlier call; used to tile a
            long document piece by piece, see ``streaming.py``).
        sentence_cuts: in window mode, prefer to end centres at sentence starts. Training wants
            it (gold entities are rarely cut there); inference gains nothing from it, since every
            subword has its full context anyway, and cutting at the latest word start instead
            needs fewer windows.
    """
    n = len(doc.input_ids)
    if room <= 2 * context:
        raise ValueError(f"max length leaves {room} subwords: no room for a centre with {context} of context per side")
    if n <= start:
        return []
    if mode == "sentence":
        bounds = sorted({start, n} | {p for p in doc.sentence_starts if start < p < n})
        result = []
        for a, b in zip(bounds, bounds[1:]):
            while b - a > room - 2 * context:
                cut = _choose_cut(doc, a, a + room - 2 * context, a + (room - 2 * context) // 2)
                result.append((a, cut))
                a = cut
            result.append((a, b))
        return result
    if mode != "window":
        raise ValueError(f"unknown context mode {mode!r}")
    result = []
    while start < n:
        left = min(context, start)
        # The centre may grow until the window is full, leaving `context` on the right
        # unless the document ends inside the window.
        if start - left + room >= n:
            end = n
        else:
            latest = start + room - left - context
            end = _choose_cut(doc, start, latest, start + (latest - start) // 2, sentence_cuts)
        result.append((start, end))
        start = end
    return result


def make_window(
    doc: TokenizedDocument, doc_index: int, centre: tuple[int, int], context: int, special: SpecialTokens
) -> Window:
    """The encoder input for one centre: the centre plus up to ``context`` subwords each side."""
    start, end = centre
    left, right = max(0, start - context), min(len(doc.input_ids), end + context)
    positions = [-1] * len(special.prefix) + list(range(left, right)) + [-1] * len(special.suffix)
    mask = [start <= p < end and doc.labelled[p] for p in positions]
    return Window(doc_index, special.prefix + doc.input_ids[left:right] + special.suffix, positions, centre, mask)


def build_windows(
    documents: Sequence[TokenizedDocument],
    tokenizer,
    *,
    max_length: int,
    context: int,
    mode: str = "window",
    label2id: dict[str, int] | None = None,
) -> list[Window]:
    """All windows of all documents, in document order; with ``label2id``, centre labels too.

    Training windows (``label2id`` given) end their centres preferably at sentence starts;
    inference windows at the latest word start that leaves the context (fewer windows).

    A gold entity cut by a centre edge (only when no cut outside an entity exists within half a
    window) is clipped to the centre, so every window's tags stay a valid BIOES/BIO sequence.
    """
    special = SpecialTokens(tokenizer)
    room = max_length - special.count
    bioes = label2id is not None and any(label.startswith(("E-", "S-")) for label in label2id)
    windows = []
    for doc_index, doc in enumerate(documents):
        for centre in centres(doc, room, context, mode, sentence_cuts=label2id is not None):
            window = make_window(doc, doc_index, centre, context, special)
            positions, mask = window.positions, window.label_mask
            if label2id is not None:
                if doc.tags is None:
                    raise ValueError(f"{doc.doc_id}: no gold tags (tokenize with label2id)")
                tags = [doc.tags[p] if m else None for p, m in zip(positions, mask)]
                inside = [i for i, m in enumerate(mask) if m]
                if inside:
                    tags[inside[0]] = _clip(tags[inside[0]], at_start=True, bioes=bioes)
                    tags[inside[-1]] = _clip(tags[inside[-1]], at_start=False, bioes=bioes)
                window.labels = [label2id[t] if t is not None else IGNORE_INDEX for t in tags]
            windows.append(window)
    return windows


def _clip(tag: str | None, *, at_start: bool, bioes: bool) -> str | None:
    """Re-tag an entity cut at a centre edge so that the centre's sequence stays valid."""
    if tag is None or tag == "O":
        return tag
    prefix, label = tag.split("-", 1)
    if at_start and prefix in ("I", "E"):
        prefix = {"I": "B", "E": "S"}[prefix] if bioes else "B"
    elif not at_start and bioes and prefix in ("B", "I"):
        prefix = {"B": "S", "I": "E"}[prefix]
    return f"{prefix}-{label}"
