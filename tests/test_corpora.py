"""The task registry and the real Spanish corpora: counts, round trips, MEDDOCAN XML = BRAT, flat tags."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from clinx_hub.cli import main
from clinx_hub.corpora import PLAIN_SPLIT, get_task, load_task, locate_splits, task_names
from clinx_hub.documents import Document
from clinx_hub.flat_tags import flat_spans
from clinx_hub.formats.base import CorpusFormatError
from clinx_hub.formats.brat import format_ann, write_brat
from clinx_hub.formats.i2b2 import read_i2b2_2014, read_xml_folder
from clinx_hub.hub_datasets import sentence_rows
from clinx_hub.stats import split_statistics

SPANISH = ("meddocan", "pharmaconer", "cantemist", "meddoprof-ner", "meddoprof-class")
# (documents, T lines) per split, as shared/corpora/README.md tables them.
README_COUNTS = {
    "meddocan": {"train": (500, 11333), "validation": (250, 5801), "test": (250, 5661)},
    "pharmaconer": {"train": (500, 3822), "validation": (250, 1926)},
    # The norm folders are read (they carry the ICD-O codes): the README's "norm ents" column.
    "cantemist": {"train": (501, 6396), "validation": (250, 3341), "test": (300, 3635)},
}


@pytest.fixture(scope="session")
def spanish(corpora_dir: Path) -> dict[str, dict[str, list[Document]]]:
    """Every Spanish task read once for the whole session."""
    return {task: load_task(task, corpora_dir) for task in SPANISH}


def test_registry_holds_the_ten_clinx_tasks():
    assert task_names() == [
        "meddocan", "pharmaconer", "cantemist", "meddoprof-ner", "meddoprof-class",
        "i2b2-2006", "i2b2-2010", "i2b2-2012-c", "i2b2-2012-t", "i2b2-2014", "brat",
    ]
    assert get_task("brat").labels == ()  # a user's own folder: labels come from the data
    for name in task_names()[:-1]:
        task = get_task(name)
        assert task.name == name and task.labels and task.citation.startswith("@")
        assert task.report_split in task.splits and set(task.train_splits) <= set(task.splits)
    with pytest.raises(ValueError, match="unknown task 'conll'"):
        get_task("conll")


@pytest.mark.corpus
@pytest.mark.parametrize("task", sorted(README_COUNTS))
def test_documents_and_spans_per_split_equal_the_readme(spanish, task):
    counts = {split: (len(docs), sum(len(d.spans) for d in docs)) for split, docs in spanish[task].items()}
    assert counts == README_COUNTS[task]


@pytest.mark.corpus
def test_readme_label_counts_and_empty_files(spanish):
    meddocan = split_statistics(spanish["meddocan"]["train"])
    assert (meddocan["labels"]["TERRITORIO"], meddocan["labels"]["FECHAS"], meddocan["labels"]["CENTRO_SALUD"]) == (1875, 1231, 6)
    pharma = {split: split_statistics(docs) for split, docs in spanish["pharmaconer"].items()}
    assert pharma["train"]["labels"] == {"NORMALIZABLES": 2304, "PROTEINAS": 1405, "UNCLEAR": 89, "NO_NORMALIZABLES": 24}
    assert (pharma["train"]["empty_documents"], pharma["validation"]["empty_documents"]) == (89, 27)
    assert split_statistics(spanish["cantemist"]["validation"])["empty_documents"] == 1


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("task", "labels"),
    [
        ("meddoprof-ner", {"PROFESION": 2528, "SITUACION_LABORAL": 1011, "ACTIVIDAD": 119}),
        ("meddoprof-class", {"PACIENTE": 1735, "SANITARIO": 1231, "OTROS": 485, "FAMILIAR": 207}),
    ],
)
def test_meddoprof_holds_out_the_listed_300_documents(spanish, corpora_dir, task, labels):
    splits = spanish[task]
    heldout = set((corpora_dir / "meddoprof" / "heldout-test.txt").read_text(encoding="utf-8").split())
    assert {d.id for d in splits["test"]} == heldout and len(heldout) == 300
    assert len(splits["train"]) == 1200 and not heldout & {d.id for d in splits["train"]}
    every = splits["train"] + splits["test"]
    assert sum(len(d.spans) for d in every) == 3658
    assert Counter(s.label for d in every for s in d.spans) == labels
    assert sum(1 for d in every if not d.spans) == 262


@pytest.mark.corpus
def test_cantemist_norm_spans_are_the_ner_spans_plus_codes(spanish, corpora_dir):
    ner = load_task("cantemist", corpora_dir / "cantemist" / "test-set" / "cantemist-ner")[PLAIN_SPLIT]
    norm = {d.id: d for d in spanish["cantemist"]["test"]}
    assert sum(len(d.spans) for d in ner) == 3633
    for doc in ner:
        assert {s.key for s in doc.spans} == {s.key for s in norm[doc.id].spans}
    assert all(len(s.codes) == 1 for d in norm.values() for s in d.spans)
    duplicated = [f for d in norm.values() for f in flat_spans(d).set_aside if f.reason == "duplicate"]
    # The README names cc_onco838; cc_onco1057 is the second of its "2 duplicate spans".
    assert sorted(f.doc_id for f in duplicated) == ["cc_onco1057", "cc_onco838"]


@pytest.mark.corpus
def test_brat_to_documents_to_brat_reproduces_every_ann(spanish, corpora_dir):
    tasks = ("meddocan", "pharmaconer", "cantemist", "meddoprof-ner", "meddoprof-class")
    checked = 0
    for task in tasks:
        root, _ = locate_splits(get_task(task), corpora_dir)
        for docs in spanish[task].values():
            for doc in docs:
                original = (root / doc.metadata["source"]).read_text(encoding="utf-8").split("\n")
                written = format_ann(doc).split("\n")
                assert _t_lines(written) == _t_lines(original), doc.id
                assert _notes(written) == _notes(original), doc.id
                checked += 1
    assert checked == 1000 + 750 + 1051 + 1500 + 1500


def _t_lines(lines: list[str]) -> list[str]:
    return sorted(line for line in lines if line.startswith("T"))


def _notes(lines: list[str]) -> list[tuple[str, str]]:
    return sorted(tuple(line.split("\t")[1:]) for line in lines if line.startswith("#"))  # type: ignore[misc]


@pytest.mark.corpus
def test_written_folder_reads_back_to_the_same_documents(spanish, tmp_path):
    docs = spanish["pharmaconer"]["validation"][:40]
    write_brat(docs, tmp_path)
    again = load_task("pharmaconer", tmp_path)[PLAIN_SPLIT]
    assert [(d.id, d.text, d.spans) for d in again] == [(d.id, d.text, d.spans) for d in docs]


@pytest.mark.corpus
def test_meddocan_xml_gives_exactly_the_brat_spans(spanish, corpora_dir):
    for split, folder in (("train", "train"), ("validation", "dev"), ("test", "test")):
        xml = {d.id: d for d in read_xml_folder(corpora_dir / "meddocan" / "corpus" / folder / "xml", read_i2b2_2014)}
        brat = spanish["meddocan"][split]
        assert len(xml) == len(brat)
        for doc in brat:
            assert xml[doc.id].text == doc.text
            assert sorted((s.id, s.key, s.text) for s in xml[doc.id].spans) == sorted((s.id, s.key, s.text) for s in doc.spans)
            assert xml[doc.id].findings == []


@pytest.mark.corpus
@pytest.mark.parametrize("task", SPANISH)
def test_sentence_tags_decode_to_exactly_the_flat_spans(spanish, task):
    for docs in spanish[task].values():
        for doc in docs:
            decoded = set()
            for row in sentence_rows([doc]):
                decoded |= _decode(row)
            assert decoded == {s.key for s in flat_spans(doc).kept}, doc.id


def _decode(row: dict) -> set[tuple[str, int, int]]:
    spans, current = set(), None
    for tag, start, end in zip(row["ner_tags"], row["token_starts"], row["token_ends"]):
        if tag.startswith("I-") and current and current[0] == tag[2:]:
            current = (current[0], current[1], end)
            continue
        if current:
            spans.add(current)
        current = (tag[2:], start, end) if tag != "O" else None
    if current:
        spans.add(current)
    return spans


@pytest.mark.corpus
def test_no_sentence_boundary_falls_inside_a_gold_span(spanish):
    for task in ("cantemist", "meddocan"):
        for docs in spanish[task].values():
            for doc in docs:
                for span in doc.spans:
                    inside = [(s, e) for s, e in doc.sentences if s <= span.start and span.end <= e]
                    assert len(inside) == 1, (doc.id, span.id)


@pytest.mark.corpus
def test_stats_command_prints_counts_and_every_set_aside_span(corpora_dir, capsys):
    args = ["data", "stats", "pharmaconer", "--data-dir", str(corpora_dir / "pharmaconer"), "--json"]
    assert main(args) == 0
    stats = json.loads(capsys.readouterr().out)
    train = stats["splits"]["train"]
    assert (train["documents"], train["spans"]) == (500, 3822)
    assert train["flat_spans"] == train["spans"] - len(train["not_flat"])
    mismatched = [i for i in train["not_flat"] if i["reason"] == "text_mismatch"]
    assert [(i["id"], i["location"]) for i in mismatched] == [
        (f"T{n}", f"train/subtrack1/S0211-69952015000200015-1.ann:{line}")
        for n, line in ((5, 1), (7, 2), (9, 4), (10, 5), (11, 6))
    ]
    # Text is opt-in (patient data); the shifted span's annotated and actual text differ by one place.
    assert "detail" not in mismatched[0]
    assert main([*args, "--show-text"]) == 0
    shown = json.loads(capsys.readouterr().out)["splits"]["train"]["not_flat"]
    detail = next(i for i in shown if i["reason"] == "text_mismatch")["detail"]
    annotated, actual = detail.split("', text has '")
    assert annotated.split("'")[-1][1:] == actual.rstrip("'")[:-1]


def test_plain_folder_is_one_split_and_errors_are_clear(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("Fiebre de 39 grados.", encoding="utf-8")
    (tmp_path / "a.ann").write_text("T1\tNORMALIZABLES 0 6\tFiebre\nT2\tPROTEINAS 0 6\tFiebre\n", encoding="utf-8")
    assert main(["data", "stats", "pharmaconer", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "duplicate 1" in out and "a.ann T2" in out
    (tmp_path / "b.ann").write_text("T1\tX 0 6\tFiebre\n", encoding="utf-8")
    assert main(["data", "stats", "pharmaconer", "--data-dir", str(tmp_path)]) == 2
    assert f"clinx: error: {tmp_path / 'b.ann'}: has no matching b.txt" in capsys.readouterr().err
    assert main(["data", "stats", "pharmaconer", "--data-dir", str(tmp_path / "missing")]) == 2


def test_a_distributed_layout_with_a_missing_half_is_an_error(tmp_path):
    (tmp_path / "test_data").mkdir()
    with pytest.raises(CorpusFormatError, match="split 'test' of i2b2-2010 is incomplete"):
        load_task("i2b2-2010", tmp_path)


def test_meddoprof_without_its_heldout_list_says_so(tmp_path):
    folder = tmp_path / "meddoprof" / "meddoprof-training-set" / "task1"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("Es panadero.", encoding="utf-8")
    (folder / "a.ann").write_text("T1\tPROFESION 3 11\tpanadero\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="MEDDOPROF splits need the held-out list heldout-test.txt"):
        load_task("meddoprof-ner", tmp_path)


def _meddocan_layout(root: Path) -> Path:
    """A tiny meddocan/ folder as distributed (invented notes), one document per split."""
    for folder in ("train", "dev", "test"):
        brat = root / "meddocan" / "corpus" / folder / "brat"
        brat.mkdir(parents=True)
        (brat / f"{folder}1.txt").write_text("Edad: 70 años.", encoding="utf-8")
        (brat / f"{folder}1.ann").write_text("T1\tEDAD_SUJETO_ASISTENCIA 6 13\t70 años\n", encoding="utf-8")
    return root / "meddocan"


def test_a_data_dir_off_the_layout_is_refused_with_the_layout_expected(tmp_path, capsys):
    corpus = _meddocan_layout(tmp_path)
    assert {split: len(docs) for split, docs in load_task("meddocan", corpus).items()} == {
        "train": 1, "validation": 1, "test": 1,
    }
    expected = "expected the corpus layout (train: corpus/train/brat; validation: corpus/dev/brat; test: corpus/test/brat)"
    for wrong, found in (
        (corpus / "corpus", "found only sub-folders: dev, test, train"),  # one level too deep
        (corpus / "corpus" / "train", "found only sub-folders: brat"),  # a split folder, not its brat/
    ):
        with pytest.raises(CorpusFormatError) as caught:
            load_task("meddocan", wrong)
        message = str(caught.value)
        assert message.startswith(f"{wrong}: no meddocan documents here") and expected in message and found in message
        assert message.endswith(f"did you mean --data-dir {corpus.resolve()}?")
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-folders" / "a").mkdir(parents=True)
    for argv in (["data", "stats", "meddocan"], ["data", "convert", "meddocan", "--out", str(tmp_path / "o")]):
        for folder, found in (("empty", "found an empty folder"), ("only-folders", "found only sub-folders: a")):
            assert main([*argv, "--data-dir", str(tmp_path / folder)]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"clinx: error: {tmp_path / folder}: no meddocan documents here") and found in err
            assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_split_with_no_documents_is_refused(tmp_path):
    corpus = _meddocan_layout(tmp_path)
    for path in (corpus / "corpus" / "dev" / "brat").iterdir():
        path.unlink()
    with pytest.raises(CorpusFormatError, match=r"split 'validation' of meddocan has no documents \(in corpus/dev/brat\)"):
        load_task("meddocan", corpus)
    assert len(load_task("meddocan", corpus, splits=["test"])["test"]) == 1  # the other splits still read


def test_a_split_asked_for_but_absent_names_the_splits_present(tmp_path):
    corpus = _meddocan_layout(tmp_path)
    with pytest.raises(CorpusFormatError, match=r"no split 'nosuch' of meddocan here \(present: train, validation, test\)"):
        load_task("meddocan", corpus, splits=["nosuch"])
    plain = corpus / "corpus" / "test" / "brat"
    with pytest.raises(CorpusFormatError, match=r"no split 'test' of meddocan here \(present: train\)"):
        load_task("meddocan", plain, splits=["test"])


@pytest.mark.corpus
def test_the_real_meddocan_one_level_off_is_refused(corpora_dir, capsys):
    assert main(["data", "stats", "meddocan", "--data-dir", str(corpora_dir / "meddocan" / "corpus")]) == 2
    err = capsys.readouterr().err
    assert "found only sub-folders: dev, test, train" in err
    assert err.rstrip().endswith(f"did you mean --data-dir {(corpora_dir / 'meddocan').resolve()}?")
