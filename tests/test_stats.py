"""``clinx data stats`` names spans by ids and offsets; document text only with ``--show-text``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinx_hub.cli import main

# Invented note: T2's stored text differs from the text at its offsets; T3 duplicates T1.
NOTE = "Cefalea pulsátil desde ayer."
ANNOTATIONS = "T1\tNORMALIZABLES 0 7\tCefalea\nT2\tPROTEINAS 8 16\tmigraña\nT3\tPROTEINAS 0 7\tCefalea\n"
WORDS = ["Cefalea", "pulsátil", "desde", "ayer", "migraña"]


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "note.txt").write_text(NOTE, encoding="utf-8")
    (tmp_path / "note.ann").write_text(ANNOTATIONS, encoding="utf-8")
    return tmp_path


def _stats(data_dir: Path, capsys, *options: str) -> str:
    assert main(["data", "stats", "pharmaconer", "--data-dir", str(data_dir), *options]) == 0
    return capsys.readouterr().out


def test_by_default_a_mismatched_span_is_named_by_ids_and_offsets_only(data_dir, capsys):
    text = _stats(data_dir, capsys)
    records = json.loads(_stats(data_dir, capsys, "--json"))["splits"]["train"]["not_flat"]
    for output in (text, json.dumps(records, ensure_ascii=False)):
        assert not [word for word in WORDS if word in output]
    mismatch = next(r for r in records if r["reason"] == "text_mismatch")
    assert {k: v for k, v in mismatch.items() if k != "location"} == {
        "doc_id": "note", "reason": "text_mismatch", "id": "T2", "label": "PROTEINAS", "start": 8, "end": 16,
    }
    assert "train: text_mismatch: note.ann:2 T2 PROTEINAS 8-16\n" in text
    # A detail that quotes no text is still shown.
    assert "note.ann T3 PROTEINAS 0-7 duplicate with T1 NORMALIZABLES 0-7" in text


def test_show_text_adds_the_annotated_and_the_actual_text(data_dir, capsys):
    text = _stats(data_dir, capsys, "--show-text")
    records = json.loads(_stats(data_dir, capsys, "--json", "--show-text"))["splits"]["train"]["not_flat"]
    mismatch = next(r for r in records if r["reason"] == "text_mismatch")
    assert "'migraña'" in mismatch["detail"] and "'pulsátil'" in mismatch["detail"]
    assert f"note.ann:2 T2 PROTEINAS 8-16 {mismatch['detail']}" in text
