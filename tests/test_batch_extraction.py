"""Batch extraction: txt/jsonl/parquet inputs, parquet shards, errors, resume, and Ray Data equal to the local engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from clinx_hub import ClinXForTokenClassification
from clinx_hub.batch_extraction import (
    ERRORS_FILE,
    MANIFEST_FILE,
    extract_batch,
    plan_shards,
    read_batch_output,
    run_shard,
    shard_path,
)
from clinx_hub.cli import main
from clinx_hub.ensemble import load_extractor
from clinx_hub.synthetic import synthetic_documents
from clinx_hub.tagging import scheme_labels

NOTES = synthetic_documents(14, seed=7)
SECRET = "Paciente Secreto"  # text of bad notes: it must never reach the errors file or the output
LIMIT = max(len(d.text) for d in NOTES) + 1


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path) -> Path:
    """A tiny model whose random head tags spans of both labels."""
    torch.manual_seed(0)
    labels = scheme_labels(["NOMBRE", "FECHAS"], "bioes")
    model = ClinXForTokenClassification.from_backbone(str(tiny_backbone_dir), labels, context_size=16, window_length=64)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    torch.nn.init.normal_(model.crf.transitions, std=0.5)
    folder = tmp_path_factory.mktemp("batch-model")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_backbone_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the session (2 CPUs), as a laptop runs it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_bytes(b"".join(line if isinstance(line, bytes) else (json.dumps(line) + "\n").encode() for line in lines))
    return path


def good_lines() -> list[dict]:
    return [{"id": d.id, "text": d.text} for d in NOTES]


def by_id(out: Path) -> dict[str, list[dict]]:
    records = list(read_batch_output(out))
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "a note was written twice"
    return {r["id"]: r["spans"] for r in records}


def assert_same_output(a: Path | dict, b: Path | dict) -> None:
    """The same notes with the same spans; scores equal up to float noise (other processes, threads or batches)."""
    left, right = (by_id(x) if isinstance(x, Path) else x for x in (a, b))
    assert left.keys() == right.keys()
    for note_id in left:
        assert [{k: v for k, v in s.items() if k != "score"} for s in left[note_id]] == [
            {k: v for k, v in s.items() if k != "score"} for s in right[note_id]
        ]
        assert [s["score"] for s in left[note_id]] == pytest.approx([s["score"] for s in right[note_id]], abs=1e-4)


def test_bad_notes_are_recorded_with_id_and_reason_and_never_stop_the_job(model_dir: Path, tmp_path: Path) -> None:
    lines = good_lines()
    lines[3:3] = [
        {"id": "empty-1", "text": "  \n"},
        {"text": SECRET},  # no id
        {"id": NOTES[0].id, "text": SECRET},  # duplicate of the first note
        {"id": "long-1", "text": SECRET * (LIMIT // len(SECRET) + 1)},
        {"id": "null-1", "text": None},
        b'{"id": "bad-utf8", "text": "\xff\xfe Paciente"}\n',
        b"{not json\n",
    ]
    source = write_jsonl(tmp_path / "notes.jsonl", lines)
    out = tmp_path / "out"
    summary = extract_batch(model_dir, source, out, shard_size=4, max_chars=LIMIT)
    assert (summary.notes, summary.errors, summary.shards_failed) == (len(NOTES), 7, [])
    errors = [json.loads(line) for line in (out / ERRORS_FILE).read_text().splitlines()]
    reasons = {(e["id"], e["reason"].split(" (")[0]) for e in errors}
    assert reasons == {
        ("empty-1", "empty"), (None, "missing id"), (NOTES[0].id, "duplicate id"), ("long-1", "over the size limit"),
        ("null-1", "no text"), (None, "not UTF-8"), (None, "not a JSON line"),
    }
    assert {e["source"] for e in errors if e["id"] is None} == {"notes.jsonl:5", "notes.jsonl:9", "notes.jsonl:10"}
    assert SECRET not in (out / ERRORS_FILE).read_text() and SECRET not in (out / MANIFEST_FILE).read_text()
    # Every good note once, with the model's spans; the first of the duplicated ids is the one kept.
    output = by_id(out)
    assert sorted(output) == sorted(d.id for d in NOTES)
    expected = load_extractor(model_dir).predict(NOTES)
    assert [[(s["label"], s["start"], s["end"], s["text"]) for s in output[d.id]] for d in NOTES] == [
        [(s.label, s.start, s.end, s.text) for s in spans] for spans in expected
    ]
    assert any(output.values())
    assert all(d.text[s["start"]:s["end"]] == s["text"] for d in NOTES for s in output[d.id])
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["complete"] and manifest["notes"] == len(NOTES) and manifest["errors"] == 7
    record = next(read_batch_output(out))
    assert record["model"] == str(model_dir) and record["model_version"].startswith("sha256:")


def test_txt_folders_and_parquet_give_the_jsonl_output(model_dir: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    notes = tmp_path / "notes"
    for i, d in enumerate(NOTES):
        path = notes / ("ward" if i % 2 else "") / f"{d.id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(d.text, encoding="utf-8")
    (notes / "latin1.txt").write_bytes(SECRET.encode() + "ñ".encode("latin-1"))
    table = pa.table({"note_id": [d.id for d in NOTES], "body": [d.text for d in NOTES]})
    pq.write_table(table, tmp_path / "notes.parquet", row_group_size=5)
    source = write_jsonl(tmp_path / "notes.jsonl", good_lines())
    extract_batch(model_dir, source, tmp_path / "from-jsonl", shard_size=4)
    txt = extract_batch(model_dir, notes, tmp_path / "from-txt", shard_size=4)
    assert txt.errors == 1 and "not UTF-8" in (tmp_path / "from-txt" / ERRORS_FILE).read_text()
    parquet = extract_batch(
        model_dir, tmp_path / "notes.parquet", tmp_path / "from-parquet", shard_size=4, id_column="note_id",
        text_column="body",
    )
    assert parquet.errors == 0 and parquet.shards == 4
    assert_same_output(tmp_path / "from-jsonl", tmp_path / "from-parquet")
    from_txt = {Path(k).name: v for k, v in by_id(tmp_path / "from-txt").items()}
    assert_same_output(from_txt, tmp_path / "from-jsonl")
    assert main(["predict", str(model_dir), str(tmp_path / "notes.parquet"), "--out", str(tmp_path / "x"),
                 "--engine", "local"]) == 2  # no "id"/"text" columns: a clear error naming them


def test_a_rerun_skips_finished_shards_and_redoes_an_interrupted_one(model_dir: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "notes.jsonl", good_lines())
    out = tmp_path / "out"
    first = extract_batch(model_dir, source, out, shard_size=3)
    assert (first.shards, first.shards_done) == (5, 5)
    before = by_id(out)
    stamps = {i: shard_path(out, i).stat().st_mtime_ns for i in range(5)}
    # As a run killed while writing shard 2 leaves it: no shard file, a stray temporary one.
    shard_path(out, 2).unlink()
    shard_path(out, 2).with_name(".part-00002.parquet.dead.tmp").write_bytes(b"half a shard")
    again = extract_batch(model_dir, source, out, shard_size=3)
    assert (again.shards_skipped, again.shards_done, again.notes) == (4, 1, len(NOTES))
    assert {i: shard_path(out, i).stat().st_mtime_ns for i in (0, 1, 3, 4)} == {i: stamps[i] for i in (0, 1, 3, 4)}
    assert by_id(out) == before
    # Another plan (here: shard size) into the same folder is refused, naming what differs.
    with pytest.raises(ValueError, match="another plan \\(shard_size, shards\\)"):
        extract_batch(model_dir, source, out, shard_size=4)


def test_a_failed_shard_is_reported_and_redone_by_the_rerun(model_dir: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "notes.jsonl", good_lines())
    _, tasks, _, _, _ = plan_shards(source, shard_size=5)
    out = tmp_path / "out"
    settings = {"model": "m", "model_version": "v", "id_column": "id", "text_column": "text", "max_chars": 10**6}
    # The file changed under the run (shard 1's bytes are no longer JSON): that shard fails, no shard file.
    broken = dict(tasks[1], start=tasks[1]["start"] + 3)
    result = run_shard(broken, load_extractor(model_dir), out, settings)
    assert result["status"] == "failed" and result["reason"] == "JSONDecodeError" and not shard_path(out, 1).exists()
    summary = extract_batch(model_dir, source, out, shard_size=5)
    assert summary.shards_done == 3 and summary.notes == len(NOTES)


def test_the_ray_engine_writes_the_local_output_and_resumes(
    model_dir: Path, tmp_path: Path, ray_cluster, capsys
) -> None:
    source = write_jsonl(tmp_path / "notes.jsonl", [*good_lines(), {"id": "empty-1", "text": ""}])
    common = ["predict", str(model_dir), str(source), "--shard-size", "3"]
    assert main([*common, "--out", str(tmp_path / "local"), "--engine", "local"]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray", "--num-workers", "2"]) == 0
    assert "14 notes in 5 shards" in capsys.readouterr().out
    assert_same_output(tmp_path / "local", tmp_path / "ray")
    assert (tmp_path / "ray" / ERRORS_FILE).read_text() == (tmp_path / "local" / ERRORS_FILE).read_text()
    manifest = json.loads((tmp_path / "ray" / MANIFEST_FILE).read_text())
    assert manifest["engine"] == "ray" and manifest["complete"]
    shard_path(tmp_path / "ray", 4).unlink()  # one shard to redo: one actor is enough
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    assert "(1 now, 4 done before)" in capsys.readouterr().out
    assert_same_output(tmp_path / "local", tmp_path / "ray")
