"""Converted folders load offline with datasets.load_dataset; the card holds statistics, never text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clinx_hub.cli import main
from clinx_hub.corpora import get_task
from clinx_hub.hub_datasets import convert, tag_names

datasets = pytest.importorskip("datasets")

SPLIT_DOCUMENTS = {
    "meddocan": {"train": 500, "validation": 250, "test": 250},
    "pharmaconer": {"train": 500, "validation": 250},
    "cantemist": {"train": 501, "validation": 250, "test": 300},
    "meddoprof-ner": {"train": 1200, "test": 300},
    "meddoprof-class": {"train": 1200, "test": 300},
}
TOTAL_SPANS = {"meddocan": 22795, "pharmaconer": 5748, "cantemist": 13372, "meddoprof-ner": 3658, "meddoprof-class": 3658}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return tmp_path / "cache"


def card_metadata(folder: Path) -> tuple[dict, str]:
    _, front, body = (folder / "README.md").read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(front), body


@pytest.mark.corpus
@pytest.mark.parametrize("task", list(SPLIT_DOCUMENTS))
def test_converted_spanish_task_loads_offline(corpora_dir, tmp_path, offline, task):
    out = convert(task, corpora_dir, tmp_path / task)
    documents = datasets.load_dataset(str(out), "documents", cache_dir=str(offline))
    sentences = datasets.load_dataset(str(out), "sentences", cache_dir=str(offline))
    assert {split: len(rows) for split, rows in documents.items()} == SPLIT_DOCUMENTS[task]
    assert sum(len(row) for split in documents.values() for row in split["spans"]) == TOTAL_SPANS[task]
    assert set(sentences) == set(documents)
    feature = sentences["train"].features["ner_tags"].feature
    assert feature.names == tag_names(get_task(task).labels)
    row = sentences["train"][0]
    text = documents["train"][0]["text"]
    assert row["document_id"] == documents["train"][0]["id"]
    assert row["tokens"] == [text[s:e] for s, e in zip(row["token_starts"], row["token_ends"])]

    metadata, body = card_metadata(out)
    assert metadata["license"] == "cc-by-4.0"
    assert [c["config_name"] for c in metadata["configs"]] == ["documents", "sentences"]
    assert "@" in body and "| train |" in body
    # Statistics only: no sentence of any document appears in the card.
    card = (out / "README.md").read_text(encoding="utf-8")
    for doc in documents["train"].select(range(30)):
        for sentence in doc["sentences"]:
            piece = doc["text"][sentence["start"] : sentence["end"]]
            assert len(piece) < 25 or piece not in card


@pytest.mark.corpus
def test_documents_config_keeps_codes_and_every_gold_span(corpora_dir, tmp_path, offline):
    out = convert("cantemist", corpora_dir / "cantemist" / "test-set" / "cantemist-norm", tmp_path / "c")
    test = datasets.load_dataset(str(out), "documents", cache_dir=str(offline))["train"]
    spans = [span for row in test["spans"] for span in row]
    assert len(spans) == 3635 and all(len(span["codes"]) == 1 for span in spans)
    assert spans[0]["id"].startswith(test[0]["id"] + "-T")
    entities = [entity for row in test["entities"] for entity in row]
    assert [e["normalized"] for e in entities] == [[{"db_name": "ICD-O-3", "db_id": s["codes"][0]}] for s in spans]
    metadata, _ = card_metadata(out)
    assert metadata["size_categories"] == ["n<1K"]  # 300 test documents


I2B2_2014 = """<?xml version="1.0" encoding="UTF-8" ?>
<deIdi2b2>
<TEXT><![CDATA[
Record date: 2099-05-03

Patient Jane Roe is a 64 yo nurse seen at Springfield General.
]]></TEXT>
<TAGS>
<DATE id="P0" start="14" end="24" text="2099-05-03" TYPE="DATE" comment="" />
<NAME id="P1" start="34" end="42" text="Jane Roe" TYPE="PATIENT" comment="" />
<NAME id="P2" start="42" end="46" text=" is " TYPE="NOVEL" comment="" />
</TAGS>
</deIdi2b2>
"""


def test_cli_converts_a_synthetic_i2b2_folder_and_refuses_to_overwrite(tmp_path, offline, capsys):
    source = tmp_path / "notes"
    source.mkdir()
    (source / "320-03.xml").write_text(I2B2_2014, encoding="utf-8")
    out = tmp_path / "hub"
    assert main(["data", "convert", "i2b2-2014", "--data-dir", str(source), "--out", str(out)]) == 0
    metadata, body = card_metadata(out)
    assert (metadata["license"], metadata["license_name"]) == ("other", "n2c2-data-use-agreement")
    assert "| train | 1 | 2 |" in body  # documents, sentences
    sentences = datasets.load_dataset(str(out), "sentences", cache_dir=str(offline))["train"]
    names = sentences.features["ner_tags"].feature.names
    assert names[-2:] == ["B-NOVEL", "I-NOVEL"]  # a label outside the task's set is kept, not dropped
    tags = [names[t] for row in sentences for t in row["ner_tags"]]
    assert tags.count("B-DATE") == 1 and tags.count("B-PATIENT") == 1 and "B-NOVEL" not in tags  # " is " is misaligned

    assert main(["data", "convert", "i2b2-2014", "--data-dir", str(source), "--out", str(out)]) == 2
    assert "exists and is not empty (use --overwrite" in capsys.readouterr().err
    (out / "mine.txt").write_text("kept", encoding="utf-8")
    assert main(["data", "convert", "i2b2-2014", "--data-dir", str(source), "--out", str(out), "--overwrite"]) == 0
    assert (out / "mine.txt").read_text(encoding="utf-8") == "kept"


def test_a_plain_brat_folder_converts_with_the_labels_found_in_it(tmp_path) -> None:
    """The "brat" task declares no label set: every label in the data becomes a tag."""
    from datasets import load_dataset

    from clinx_hub.hub_datasets import convert
    from clinx_hub.synthetic import SYNTHETIC_LABELS, write_synthetic_corpus

    data = write_synthetic_corpus(tmp_path / "notes", n_train=8, n_dev=2, n_test=2, seed=1)
    out = convert("brat", data, tmp_path / "hub")
    names = load_dataset(str(out), "sentences", split="train").features["ner_tags"].feature.names
    found = {name.split("-", 1)[1] for name in names if name != "O"}
    assert found and found <= set(SYNTHETIC_LABELS)


def test_a_cards_licence_is_the_tasks_or_the_users_never_another_tasks(tmp_path, capsys) -> None:
    from clinx_hub.synthetic import write_synthetic_corpus

    notes = write_synthetic_corpus(tmp_path / "notes", n_train=2, n_dev=0, n_test=0, seed=2) / "train"
    out = convert("brat", notes, tmp_path / "own")
    metadata, body = card_metadata(out)
    assert metadata["license"] == "other" and "license_name" not in metadata and "license_link" not in metadata
    assert "n2c2" not in body and "- Licence: other, not named by the task" in body
    given = ["--license", "cc-by-4.0"]
    assert main(["data", "convert", "brat", "--data-dir", str(notes), "--out", str(tmp_path / "cc"), *given]) == 0
    metadata, body = card_metadata(tmp_path / "cc")
    assert metadata["license"] == "cc-by-4.0" and "license_name" not in metadata
    assert "- Licence: cc-by-4.0 (given at conversion; the task's own: other)" in body


# An invented BRAT note: a discontinuous span, an AnnotatorNotes code and an N reference.
NOTE_TEXT = "Dolor en rodilla y tobillo derechos. Fiebre alta.\n"
NOTE_ANN = (
    "T1\tSINTOMA 0 5\tDolor\n"
    "T2\tLUGAR 9 16;27 35\trodilla derechos\n"
    "T3\tSINTOMA 37 48\tFiebre alta\n"
    "#1\tAnnotatorNotes T1\tR52\n"
    "N1\tReference T3 SNOMED:386661006\tFiebre\n"
)


def test_the_documents_config_carries_bigbio_kb_entities_and_the_card_its_metadata(tmp_path, offline) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n1.txt").write_text(NOTE_TEXT, encoding="utf-8")
    (notes / "n1.ann").write_text(NOTE_ANN, encoding="utf-8")
    out = convert("brat", notes, tmp_path / "hub")
    documents = datasets.load_dataset(str(out), "documents", cache_dir=str(offline))["train"]
    features = documents.features
    assert list(features) == ["id", "document_id", "text", "spans", "entities", "sentences"]
    Value, List = datasets.Value, datasets.List
    assert features["entities"] == List({
        "id": Value("string"), "type": Value("string"), "text": List(Value("string")),
        "offsets": List(List(Value("int32"))),
        "normalized": List({"db_name": Value("string"), "db_id": Value("string")}),
    })
    [row] = documents
    assert row["document_id"] == row["id"] == "n1"
    entities = {entity["id"]: entity for entity in row["entities"]}
    assert entities["n1-T2"] == {
        "id": "n1-T2", "type": "LUGAR", "text": ["rodilla", "derechos"], "offsets": [[9, 16], [27, 35]], "normalized": [],
    }
    assert entities["n1-T1"]["normalized"] == [{"db_name": "", "db_id": "R52"}]  # no code system named for "brat"
    assert entities["n1-T3"]["normalized"] == [{"db_name": "SNOMED", "db_id": "386661006"}]
    for entity in row["entities"]:
        assert entity["text"] == [row["text"][s:e] for s, e in entity["offsets"]]
    # The spans of the existing layout stay as they were.
    assert [(s["id"], s["start"], s["end"]) for s in row["spans"]] == [("n1-T1", 0, 5), ("n1-T2", 9, 35), ("n1-T3", 37, 48)]

    metadata, body = card_metadata(out)
    assert metadata["size_categories"] == ["n<1K"] and metadata["source_datasets"] == ["original"]
    assert (metadata["task_categories"], metadata["task_ids"]) == (["token-classification"], ["named-entity-recognition"])
    assert "### As BigBio KB" in body and "| `entities[].offsets` |" in body
    assert "Dolor" not in body and "rodilla" not in body  # statistics only
