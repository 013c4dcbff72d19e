"""Context windows: exact tiling, context bounds, long and short documents, entity-safe cuts."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import note

from clinx_hub import Document, Span
from clinx_hub.modeling_clinx import scheme_constraints
from clinx_hub.sentences import split_sentences
from clinx_hub.tagging import scheme_labels
from clinx_hub.windows import SpecialTokens, build_windows, centres, tokenize_document

LABELS = scheme_labels(["NOMBRE", "LUGAR"])
LABEL2ID = {label: i for i, label in enumerate(LABELS)}


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    short = Document("short", "Luis, Madrid.", [Span(0, 4, "NOMBRE", "Luis"), Span(6, 12, "LUGAR", "Madrid")])
    return [note("long", 40), short, note("empty", 0), note("mid", 6, 2)]


@pytest.mark.parametrize("mode", ["window", "sentence"])
@pytest.mark.parametrize("max_length,context", [(64, 10), (40, 0), (128, 30)])
def test_centres_tile_every_document_exactly_once_within_bounds(
    documents, tiny_tokenizer, mode: str, max_length: int, context: int
) -> None:
    tokenized = [tokenize_document(d, tiny_tokenizer, LABEL2ID) for d in documents]
    windows = build_windows(
        tokenized, tiny_tokenizer, max_length=max_length, context=context, mode=mode, label2id=LABEL2ID
    )
    covered = Counter()
    for w in windows:
        doc = tokenized[w.doc_index]
        assert len(w.input_ids) <= max_length
        inner = [p for p in w.positions if p >= 0]
        assert inner == list(range(inner[0], inner[-1] + 1)), "a window is one contiguous stretch of one document"
        assert [doc.input_ids[p] for p in inner] == [i for i, p in zip(w.input_ids, w.positions) if p >= 0]
        start, end = w.centre
        # every labelled subword sees `context` subwords each side, or the document's edge
        assert inner[0] == max(0, start - context) and inner[-1] == min(len(doc.input_ids), end + context) - 1
        for position, labelled, label in zip(w.positions, w.label_mask, w.labels):
            if labelled:
                covered[(w.doc_index, position)] += 1
                assert LABELS[label] == doc.tags[position] or doc.tags[position][0] in "IE"
            else:
                assert label == -100
    expected = {(i, p) for i, t in enumerate(tokenized) for p in range(len(t.input_ids)) if t.labelled[p]}
    assert set(covered) == expected and set(covered.values()) <= {1}
    for i, t in enumerate(tokenized):  # the centres themselves tile every subword
        tiles = sorted(w.centre for w in windows if w.doc_index == i)
        assert [p for start, end in tiles for p in range(start, end)] == list(range(len(t.input_ids)))
    # XLM-R-style "▁" subwords repeat the next subword's offsets: they carry no tag of their own
    bare = [(i, p) for i, t in enumerate(tokenized) for p, o in enumerate(t.offsets[:-1]) if o == t.offsets[p + 1]]
    assert bare and not any(tokenized[i].labelled[p] for i, p in bare)


def test_long_documents_need_several_windows_and_short_ones_one(documents, tiny_tokenizer) -> None:
    tokenized = [tokenize_document(d, tiny_tokenizer) for d in documents]
    windows = build_windows(tokenized, tiny_tokenizer, max_length=128, context=30)
    per_doc = Counter(w.doc_index for w in windows)
    assert len(tokenized[0].input_ids) > 5 * 128 and per_doc[0] >= 5
    assert len(tokenized[1].input_ids) < 30 and per_doc[1] == 1  # shorter than the context
    assert per_doc[2] == 0  # an empty note has nothing to label
    special = SpecialTokens(tiny_tokenizer)
    assert windows[0].input_ids[: len(special.prefix)] == special.prefix


def test_window_mode_cuts_at_sentence_starts_and_never_inside_an_entity(documents, tiny_tokenizer) -> None:
    doc = tokenize_document(documents[0], tiny_tokenizer, LABEL2ID)
    cuts = [start for start, _ in centres(doc, room=200, context=20)][1:]
    assert cuts and all(cut in doc.sentence_starts for cut in cuts)
    # Without sentence boundaries the cut still avoids entities.
    no_sentences = tokenize_document(Document("x", documents[0].text, documents[0].spans), tiny_tokenizer, LABEL2ID)
    for start, _ in centres(no_sentences, room=62, context=10)[1:]:
        assert no_sentences.tags[start][0] not in "IE"


def test_an_entity_longer_than_a_window_is_clipped_to_valid_tags(tiny_tokenizer) -> None:
    text = "Hospital " + "Universitario " * 30 + "de Madrid."
    doc = Document("giant", text, [Span(0, len(text) - 1, "LUGAR")], split_sentences(text))
    tokenized = tokenize_document(doc, tiny_tokenizer, LABEL2ID)
    windows = build_windows([tokenized], tiny_tokenizer, max_length=40, context=5, label2id=LABEL2ID)
    assert len(windows) > 2
    allowed, start_ok, end_ok = scheme_constraints(LABELS, "bioes")
    for w in windows:
        path = [label for label, m in zip(w.labels, w.label_mask) if m]
        assert start_ok[path[0]] and end_ok[path[-1]]
        assert all(allowed[a, b] for a, b in zip(path, path[1:]))


def test_sentence_mode_centres_are_sentences(documents, tiny_tokenizer) -> None:
    doc = tokenize_document(documents[3], tiny_tokenizer)
    spans = centres(doc, room=200, context=20, mode="sentence")
    assert len(spans) == 6 and {s for s, _ in spans} == doc.sentence_starts


def test_context_too_large_for_the_window_is_an_error(documents, tiny_tokenizer) -> None:
    doc = tokenize_document(documents[3], tiny_tokenizer)
    with pytest.raises(ValueError, match="no room"):
        centres(doc, room=40, context=20)


def test_word_level_windows_label_first_subwords_only(documents, tiny_tokenizer) -> None:
    doc = tokenize_document(documents[3], tiny_tokenizer, LABEL2ID, first_subword=True)
    [window] = build_windows([doc], tiny_tokenizer, max_length=512, context=0, label2id=LABEL2ID)
    labelled = [p for p, m in zip(window.positions, window.label_mask) if m]
    words = [doc.word_ids[p] for p in labelled]
    assert len(words) == len(set(words)) == len({w for w in doc.word_ids if w is not None})  # one per word
    for p in labelled:  # ...its first subword with characters of its own
        earlier = [q for q in range(p) if doc.word_ids[q] == doc.word_ids[p]]
        assert all(doc.offsets[q] == doc.offsets[q + 1] for q in earlier)
    assert len(labelled) < len(doc.input_ids)
