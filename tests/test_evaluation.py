"""Strict evaluation: hand-computed cases, folder reading, and ``clinx score`` against an independent count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinx_hub.cli import main
from clinx_hub.documents import Document, Span
from clinx_hub.evaluation import (
    Scores,
    cuts_word,
    document_scores,
    paired_bootstrap,
    score_documents,
    score_folders,
)
from clinx_hub.formats.base import CorpusFormatError

TEXT = "Paciente con fiebre alta y tos seca."  # invented
#       0         1         2         3
#       012345678901234567890123456789012345


def doc(doc_id: str, *spans: tuple[str, int, int], text: str = TEXT) -> Document:
    return Document(id=doc_id, text=text, spans=[Span(start, end, label) for label, start, end in spans])


def counts(scores: Scores) -> tuple[int, int, int]:
    return scores.tp, scores.fp, scores.fn


def test_exact_match_is_perfect():
    gold = [doc("d1", ("SINTOMA", 13, 24), ("SINTOMA", 27, 35))]
    result = score_documents(gold, gold)
    assert counts(result.micro) == (2, 0, 0)
    assert (result.micro.precision, result.micro.recall, result.micro.f1) == (1.0, 1.0, 1.0)


def test_duplicates_collapse_in_gold_and_in_pred():
    gold = [doc("d1", ("SINTOMA", 13, 19), ("SINTOMA", 13, 19), ("SINTOMA", 27, 30))]
    pred = [doc("d1", ("SINTOMA", 13, 19), ("SINTOMA", 13, 19), ("SINTOMA", 13, 19), ("SINTOMA", 31, 35))]
    result = score_documents(gold, pred)
    # gold {fiebre, tos}, pred {fiebre, seca}
    assert counts(result.micro) == (1, 1, 1)
    assert result.micro.support == 2


def test_nested_gold_spans_stay_and_missing_one_is_a_false_negative():
    gold = [doc("d1", ("SINTOMA", 13, 24), ("SINTOMA", 13, 19))]  # "fiebre alta" and "fiebre" inside it
    pred = [doc("d1", ("SINTOMA", 13, 24))]
    result = score_documents(gold, pred)
    assert counts(result.micro) == (1, 0, 1)
    assert result.micro.precision == 1.0 and result.micro.recall == 0.5
    assert result.micro.f1 == pytest.approx(2 / 3)


def test_wrong_label_same_offsets_is_one_fp_and_one_fn_but_matches_span_only():
    gold = [doc("d1", ("SINTOMA", 13, 19))]
    pred = [doc("d1", ("ENFERMEDAD", 13, 19))]
    result = score_documents(gold, pred)
    assert counts(result.micro) == (0, 1, 1)
    assert counts(result.per_label["SINTOMA"]) == (0, 0, 1)
    assert counts(result.per_label["ENFERMEDAD"]) == (0, 1, 0)
    assert result.per_label["ENFERMEDAD"].support == 0
    assert counts(result.span_only) == (1, 0, 0)


@pytest.mark.parametrize("start, end", [(12, 19), (14, 19), (13, 18), (13, 20)])
def test_off_by_one_boundaries_do_not_match(start, end):
    result = score_documents([doc("d1", ("SINTOMA", 13, 19))], [doc("d1", ("SINTOMA", start, end))])
    assert counts(result.micro) == (0, 1, 1)
    assert counts(result.span_only) == (0, 1, 1)


def test_empty_documents_and_zero_division():
    result = score_documents([doc("d1"), doc("d2", text="")], [doc("d1"), doc("d2", text="")])
    assert counts(result.micro) == (0, 0, 0)
    assert (result.micro.precision, result.micro.recall, result.micro.f1) == (0.0, 0.0, 0.0)
    assert result.documents == 2 and result.per_label == {}
    # Precision is 0/0 when nothing is predicted, recall 0/0 when there is no gold.
    nothing_predicted = score_documents([doc("d1", ("SINTOMA", 13, 19))], [doc("d1")])
    assert nothing_predicted.micro.precision == 0.0 and nothing_predicted.micro.f1 == 0.0
    no_gold = score_documents([doc("d1")], [doc("d1", ("SINTOMA", 13, 19))])
    assert no_gold.micro.recall == 0.0 and no_gold.micro.f1 == 0.0
    json.dumps(result.to_dict())
    assert "micro" in result.format_table()


def test_gold_document_without_prediction_in_both_universes():
    gold = [doc("d1", ("SINTOMA", 13, 19)), doc("d2", ("SINTOMA", 13, 19), ("SINTOMA", 27, 30))]
    pred = [doc("d1", ("SINTOMA", 13, 19))]
    every_gold = score_documents(gold, pred)
    assert counts(every_gold.micro) == (1, 0, 2)
    assert every_gold.documents == 2 and every_gold.unpredicted == ["d2"]
    common = score_documents(gold, pred, common_only=True)
    assert counts(common.micro) == (1, 0, 0)
    assert common.documents == 1 and common.unpredicted == ["d2"]
    assert "left out" in common.format_table() and "false negatives" in every_gold.format_table()


def test_prediction_for_an_unknown_document_is_reported_and_ignored():
    gold = [doc("d1", ("SINTOMA", 13, 19))]
    pred = [doc("d1", ("SINTOMA", 13, 19)), doc("zz", ("SINTOMA", 0, 8), ("SINTOMA", 13, 19))]
    for common_only in (False, True):
        result = score_documents(gold, pred, common_only=common_only)
        assert counts(result.micro) == (1, 0, 0)
        assert result.unknown == ["zz"] and result.documents == 1


def test_per_label_numbers_sum_to_micro():
    gold = [
        doc("d1", ("SINTOMA", 13, 24), ("SINTOMA", 27, 35), ("PERSONA", 0, 8)),
        doc("d2", ("SINTOMA", 13, 19)),
    ]
    pred = [
        doc("d1", ("SINTOMA", 13, 24), ("SINTOMA", 27, 30), ("PERSONA", 0, 8), ("PERSONA", 27, 35)),
        doc("d2", ("SINTOMA", 13, 19), ("SINTOMA", 20, 24)),
    ]
    result = score_documents(gold, pred)
    assert list(result.per_label) == ["PERSONA", "SINTOMA"]
    assert counts(result.per_label["PERSONA"]) == (1, 1, 0)
    assert counts(result.per_label["SINTOMA"]) == (2, 2, 1)
    assert result.per_label["SINTOMA"].support == 3
    assert result.per_label["SINTOMA"].precision == 0.5
    assert result.per_label["SINTOMA"].recall == pytest.approx(2 / 3)
    assert counts(result.micro) == (3, 3, 1)
    assert result.micro.f1 == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    # span only: (27, 35) is found (as PERSONA), so one FN fewer and one FP fewer.
    assert counts(result.span_only) == (4, 2, 0)
    table = result.to_dict()["per_label"]
    assert table["SINTOMA"] == {"tp": 2, "fp": 2, "fn": 1, "support": 3, "precision": 0.5,
                                "recall": 2 / 3, "f1": pytest.approx(4 / 7)}


def test_word_cut_counting():
    assert cuts_word(TEXT, Span(14, 19, "X"))  # "iebre": starts inside "fiebre"
    assert cuts_word(TEXT, Span(13, 18, "X"))  # "fiebr": ends inside "fiebre"
    assert not cuts_word(TEXT, Span(12, 19, "X"))  # " fiebre": leading space, no cut
    assert not cuts_word(TEXT, Span(31, 36, "X"))  # "seca.": punctuation is not part of a word
    assert not cuts_word(TEXT, Span(0, 36, "X"))  # whole text, both edges on the text boundary
    assert not cuts_word(TEXT, Span(30, 99, "X"))  # past the end: cannot cut anything
    assert cuts_word("niño", Span(0, 2, "X"))  # accented letters are word characters
    assert not cuts_word("38,5 ºC", Span(0, 2, "X"))  # "38" before the comma

    gold = [doc("d1", ("SINTOMA", 13, 24), ("SINTOMA", 14, 19))]  # gold itself cuts once
    pred = [doc("d1", ("SINTOMA", 14, 19), ("SINTOMA", 13, 18), ("SINTOMA", 27, 30), ("OTRO", 13, 18))]
    cuts = score_documents(gold, pred).word_cuts
    assert (cuts.predicted, cuts.predicted_fp, cuts.gold) == (3, 2, 1)


def test_duplicate_document_ids_are_refused():
    with pytest.raises(ValueError, match="occurs twice"):
        score_documents([doc("d1"), doc("d1")], [])


def test_text_differences_are_reported():
    result = score_documents([doc("d1")], [doc("d1", text="\ufeff" + TEXT)])
    assert result.text_differs == ["d1"]


# --- folders -------------------------------------------------------------------------------------


def write_ann(folder: Path, doc_id: str, lines: str, text: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{doc_id}.ann").write_text(lines, encoding="utf-8")
    if text is not None:
        (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    gold, pred = tmp_path / "gold", tmp_path / "pred"
    write_ann(gold, "d1", "T1\tSINTOMA 13 19\tfiebre\nT2\tSINTOMA 27 30\ttos\n", TEXT)
    write_ann(gold, "d2", "T1\tSINTOMA 13 24\tfiebre alta\n#1\tAnnotatorNotes T1\tR50.9\n", TEXT)
    write_ann(gold, "d3", "", TEXT)
    # d1 without its .txt (the scorers read only .ann); a note pointing nowhere is not scored.
    write_ann(pred, "d1", "T1\tSINTOMA 14 19\tiebre\nT2\tSINTOMA 27 30\ttos\n#1\tAnnotatorNotes T9\tx\n")
    write_ann(pred, "d3", "T1\tSINTOMA 0 8\tPaciente\n", TEXT)
    write_ann(pred, "unknown", "T1\tSINTOMA 0 8\tPaciente\n")
    return gold, pred


def test_score_folders_reads_ann_only_predictions(folders):
    gold, pred = folders
    result = score_folders(gold, pred)
    assert counts(result.micro) == (1, 2, 2)
    assert result.documents == 3 and result.unpredicted == ["d2"] and result.unknown == ["unknown"]
    # The missing d1.txt is replaced by the gold text, so the word cut is still seen.
    assert result.word_cuts.predicted == 1 and result.word_cuts.predicted_fp == 1
    common = score_folders(gold, pred, common_only=True)
    assert counts(common.micro) == (1, 2, 1) and common.documents == 2


def test_a_byte_order_mark_in_an_ann_file_hides_no_span(folders):
    gold, pred = folders
    # An editor on Windows may save the .ann with a BOM and CRLF: its first T line still counts.
    gold_lines, pred_lines = "T1\tSINTOMA 13 19\tfiebre\r\nT2\tSINTOMA 27 30\ttos\r\n", "T1\tSINTOMA 13 19\tfiebre\r\n"
    for folder, lines in ((gold, gold_lines), (pred, pred_lines)):
        (folder / "d1.ann").write_text("\ufeff" + lines, encoding="utf-8")
    result = score_folders(gold, pred)
    assert counts(result.micro) == (1, 1, 2)


def test_cli_score_prints_table_and_json(folders, capsys):
    gold, pred = folders
    assert main(["score", "--gold", str(gold), "--pred", str(pred)]) == 0
    table = capsys.readouterr().out
    assert "micro" in table and "SINTOMA" in table and "d2" in table
    assert main(["score", "--gold", str(gold), "--pred", str(pred), "--json", "--common-only"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["common_only"] is True
    assert (result["micro"]["tp"], result["micro"]["fp"], result["micro"]["fn"]) == (1, 2, 1)


def test_cli_score_errors_exit_2(folders, tmp_path, capsys):
    gold, pred = folders
    (tmp_path / "empty").mkdir()
    for argv in (
        ["--gold", str(gold), "--pred", str(tmp_path / "nowhere")],
        ["--gold", str(gold), "--pred", str(tmp_path / "empty")],
        ["--gold", str(tmp_path / "empty"), "--pred", str(pred)],
    ):
        assert main(["score", *argv]) == 2
        assert capsys.readouterr().err.startswith("clinx: error: ")
    write_ann(pred, "d3", "T1\tSINTOMA 0 x\tPaciente\n")
    assert main(["score", "--gold", str(gold), "--pred", str(pred)]) == 2
    assert "d3.ann:1" in capsys.readouterr().err
    with pytest.raises(CorpusFormatError):
        score_folders(gold, pred)


# --- a real corpus ---------------------------------------------------------------------------------


def read_entities(folder: Path) -> dict[str, set[tuple[str, int, int]]]:
    """Every document's set of (label, start, end) from its T lines: a reader independent of clinx_hub's."""
    entities = {}
    for ann in sorted(folder.glob("*.ann")):
        spans = set()
        for line in ann.read_text(encoding="utf-8").splitlines():
            if line.startswith("T"):
                label, start, end = line.split("\t")[1].split(" ")  # PharmaCoNER has no discontinuous spans
                spans.add((label, int(start), int(end)))
        entities[ann.stem] = spans
    return entities


def perturb(entities: dict[str, set[tuple[str, int, int]]]) -> dict[str, set[tuple[str, int, int]]]:
    """Drop every 7th span, shift every 5th by one character, relabel every 11th, add spurious spans."""
    perturbed = {}
    number = 0
    for position, (doc_id, spans) in enumerate(sorted(entities.items())):
        kept = set()
        for label, start, end in sorted(spans, key=lambda s: (s[1], s[2], s[0])):
            number += 1
            if number % 7 == 0:
                continue
            if number % 5 == 0:
                start, end = start + 1, end + 1
            kept.add(("RELABELLED" if number % 11 == 0 else label, start, end))
        if position % 13 == 0:
            kept.add(("SPURIOUS", 0, 5))
        perturbed[doc_id] = kept
    return perturbed


@pytest.mark.corpus
def test_cli_score_equals_an_independent_count_on_pharmaconer_dev(corpora_dir, tmp_path, capsys):
    # Gold: the corpus files as distributed. Predictions: .ann files only (the official scorers read
    # nothing else), written and counted here without clinx_hub's reader or writer.
    gold_dir = corpora_dir / "pharmaconer" / "dev" / "subtrack1"
    gold = read_entities(gold_dir)
    pred = perturb(gold)
    unpredicted = sorted(gold)[1]
    (tmp_path / "pred").mkdir()
    for doc_id, spans in pred.items():
        if doc_id != unpredicted:
            lines = [f"T{i}\t{label} {start} {end}\tx" for i, (label, start, end) in enumerate(sorted(spans), 1)]
            (tmp_path / "pred" / f"{doc_id}.ann").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (tmp_path / "pred" / "not-in-gold.ann").write_text("T1\tNORMALIZABLES 0 4\tabcd\n", encoding="utf-8")

    def expected(documents: set[str]) -> dict[str, float | int]:
        gold_set = {(d, *s) for d in documents for s in gold[d]}
        pred_set = {(d, *s) for d in documents - {unpredicted} for s in pred[d]}
        tp, fp, fn = len(gold_set & pred_set), len(pred_set - gold_set), len(gold_set - pred_set)
        p, r = tp / (tp + fp), tp / (tp + fn)
        return {"tp": tp, "fp": fp, "fn": fn, "support": tp + fn, "precision": p, "recall": r,
                "f1": 2 * p * r / (p + r)}

    assert len(gold) == 250 and sum(map(len, gold.values())) > 1000
    for extra, documents in (([], set(gold)), (["--common-only"], set(gold) - {unpredicted})):
        argv = ["score", "--gold", str(gold_dir), "--pred", str(tmp_path / "pred"), "--json", *extra]
        assert main(argv) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["micro"] == expected(documents)
        assert result["documents"] == len(documents)
        assert result["unpredicted_documents"] == [unpredicted]
        assert result["unknown_documents"] == ["not-in-gold"]
        assert result["text_differs_documents"] == []
        assert sum(row["tp"] for row in result["per_label"].values()) == result["micro"]["tp"]
    assert result["micro"]["fp"] > 0 and result["micro"]["fn"] > 0
    assert result["per_label"]["RELABELLED"]["support"] == 0


def _notes(n: int) -> list[Document]:
    return [Document(f"n{i}", "Fiebre y tos", [Span(0, 6, "SINTOMA"), Span(9, 12, "SINTOMA")]) for i in range(n)]


def test_document_scores_sum_to_the_micro_counts():
    gold = _notes(4)
    pred = [gold[0], gold[1].with_spans([Span(0, 6, "SINTOMA"), Span(0, 12, "SINTOMA")]), gold[3].with_spans([])]
    per_document = document_scores(gold, pred)
    assert list(per_document) == ["n0", "n1", "n2", "n3"]  # n2 has no prediction: its spans are FN
    assert per_document["n2"] == Scores(0, 0, 2)
    assert sum(per_document.values(), Scores()) == score_documents(gold, pred).micro
    assert list(document_scores(gold, pred, common_only=True)) == ["n0", "n1", "n3"]


def test_paired_bootstrap_separates_a_better_system_and_not_an_equal_one():
    gold = _notes(30)
    # B misses the second span in a third of the notes; A is right everywhere.
    worse = [d.with_spans(d.spans[:1]) if i % 3 == 0 else d for i, d in enumerate(gold)]
    result = paired_bootstrap(gold, gold, worse, samples=500, seed=1)
    assert result.f1_a == 1.0
    assert result.f1_b == pytest.approx(score_documents(gold, worse).micro.f1)
    assert result.difference == pytest.approx(1.0 - result.f1_b)
    assert 0 < result.low <= result.difference <= result.high
    assert result.a_better == 1.0 and result.ties == 0.0
    assert paired_bootstrap(gold, gold, worse, samples=500, seed=1) == result  # seeded: reproducible

    same = paired_bootstrap(gold, worse, worse, samples=200)
    assert (same.difference, same.low, same.high, same.a_better, same.ties) == (0.0, 0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_puts_a_mixed_difference_around_zero():
    gold = _notes(40)
    # Each system drops one span in a different half of the notes: equal in total, opposite per note.
    a = [d.with_spans(d.spans[:1]) if i < 20 else d for i, d in enumerate(gold)]
    b = [d.with_spans(d.spans[:1]) if i >= 20 else d for i, d in enumerate(gold)]
    result = paired_bootstrap(gold, a, b, samples=2000)
    assert result.difference == 0.0
    assert result.low < 0 < result.high
    assert 0.3 < result.a_better < 0.7


def test_paired_bootstrap_refuses_systems_scored_on_different_documents():
    gold = _notes(3)
    with pytest.raises(ValueError, match="different documents.*n2"):
        paired_bootstrap(gold, gold, gold[:2], common_only=True)
    with pytest.raises(ValueError, match="samples"):
        paired_bootstrap(gold, gold, gold, samples=0)
