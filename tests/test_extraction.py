"""Batching of encoder windows (encoding.length_batches) and what prediction feeds the encoder."""

from __future__ import annotations

import random

from transformers import AutoTokenizer

from clinx_hub import ClinXForTokenClassification, Document, Span
from clinx_hub.encoding import length_batches
from clinx_hub.extraction import extract_documents
from clinx_hub.sentences import split_sentences
from clinx_hub.tagging import scheme_labels


def test_batches_cover_every_window_once_sorted_by_length() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(5, 512) for _ in range(300)]
    for tolerance in (None, 0.05):
        batches = length_batches(lengths, 16, tolerance)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(300))
        assert [lengths[i] for i in flat] == sorted(lengths)
        assert all(0 < len(batch) <= 16 for batch in batches)


def test_with_a_tolerance_padding_stays_within_it() -> None:
    rng = random.Random(1)
    lengths = [rng.choice([512] * 5 + list(range(20, 512))) for _ in range(200)]
    tight = length_batches(lengths, 16, tolerance=0.05)
    for batch in tight:
        shortest, longest = min(lengths[i] for i in batch), max(lengths[i] for i in batch)
        assert longest <= shortest * 1.05

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(tight) <= 1.05 * sum(lengths) < padded(length_batches(lengths, 16))
    # Windows of one length (the full ones of long notes) still fill whole batches.
    assert length_batches([512] * 40, 16, tolerance=0.05) == [list(range(16)), list(range(16, 32)), list(range(32, 40))]


def test_prediction_splits_sentences_without_the_gold_spans(tiny_backbone_dir) -> None:
    # Sentence mode: one window per sentence. A reader keeps a gold address in one sentence; the
    # text alone splits it. Prediction must see the text's sentences either way (no gold leaks in).
    model = ClinXForTokenClassification.from_backbone(
        str(tiny_backbone_dir), scheme_labels(["CALLE"]), context_size=4, context_mode="sentence"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_dir)
    text = "Vive en C. Mayor. 5 de Madrid. Fuma."
    address = Span(8, 29, "CALLE", text[8:29])
    gold = Document("d", text, [address], split_sentences(text, [address]))
    assert len(gold.sentences) == 2 and len(split_sentences(text)) == 3
    windows: list[list[int]] = []
    model.encoder.register_forward_pre_hook(
        lambda module, args, kwargs: windows.extend((args[0] if args else kwargs["input_ids"]).tolist()),
        with_kwargs=True,
    )
    from_gold = extract_documents(model, tokenizer, [gold])
    seen_for_gold, windows[:] = list(windows), []
    assert extract_documents(model, tokenizer, [text]) == from_gold
    assert len(seen_for_gold) == 3 and windows == seen_for_gold


class CharacterCount:
    """A progress bar's surface (``update(n)``), counting what it is told."""

    def __init__(self) -> None:
        self.updates: list[int] = []

    def update(self, n: int) -> None:
        self.updates.append(n)


def test_progress_counts_every_character_once_long_notes_piece_by_piece(tiny_backbone_dir, monkeypatch) -> None:
    from conftest import note
    from test_streaming import long_note, tiny_model

    from clinx_hub import streaming
    from clinx_hub.ensemble import ClinXEnsemble, Extractor

    monkeypatch.setattr(streaming, "STREAM_CHARS", 1_000)
    model, tokenizer = tiny_model(tiny_backbone_dir, 0), AutoTokenizer.from_pretrained(tiny_backbone_dir)
    texts = ["Paciente Ana López ingresa en Madrid.", long_note().text, "", note("n", 3).text]
    progress = CharacterCount()
    spans = extract_documents(model, tokenizer, texts, progress=progress)
    assert spans == extract_documents(model, tokenizer, texts)  # silent by default, same result
    assert sum(progress.updates) == sum(map(len, texts))
    document = Document("long", texts[1], sentences=split_sentences(texts[1]))
    pieces = CharacterCount()
    streaming.extract_long(model, tokenizer, document, piece_chars=300, round_subwords=100, progress=pieces)
    assert sum(pieces.updates) == len(texts[1])
    assert len(pieces.updates) > 3 and all(n >= 0 for n in pieces.updates)  # reported round by round
    extractor = Extractor(model, tokenizer)
    ensemble = ClinXEnsemble([extractor, extractor])
    counted = CharacterCount()
    ensemble.predict(texts, progress=counted)
    assert sum(counted.updates) == 2 * sum(map(len, texts))  # each member reports its pass
