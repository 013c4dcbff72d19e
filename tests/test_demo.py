"""The demo as its users meet it: the Gradio app on 127.0.0.1, called with gradio_client and plain HTTP.

The model is a tiny untrained CLIN-X model with a fixed seed (its spans are noise, but the app
must show exactly what ``load_extractor(...).predict`` returns), saved with a training record
whose labels are the synthetic notes' de-identification labels, as the quickstart's are.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import zipfile
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio", reason="the demo needs gradio: pip install -e '.[demo]'")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from clinx_hub.demo import (  # noqa: E402
    build_demo,
    is_deidentification,
    launch_settings,
    parse_models,
    warm_up,
)
from clinx_hub.ensemble import ENSEMBLE_FILE, MEMBERS_DIR, load_extractor  # noqa: E402
from clinx_hub.formats.brat import format_ann  # noqa: E402
from clinx_hub.outputs import deidentify, highlighted, jsonl_lines  # noqa: E402
from clinx_hub.synthetic import SYNTHETIC_LABELS, example_notes  # noqa: E402

MAX_CHARS = 5_000
WAIT = 120  # seconds: the longest any request may take on a busy 2-core machine


def save_demo_model(folder: Path, backbone: Path, *, seed: int = 0) -> Path:
    """An untrained CLIN-X model on ``backbone`` with the synthetic notes' labels, as quickstart saves one."""
    import torch
    from transformers import AutoTokenizer

    from clinx_hub.modeling_clinx import ClinXForTokenClassification
    from clinx_hub.tagging import scheme_labels

    torch.manual_seed(seed)
    model = ClinXForTokenClassification.from_backbone(
        str(backbone), scheme_labels(SYNTHETIC_LABELS), window_length=128, context_size=16
    )
    with torch.no_grad():  # fewer, longer spans than a raw random head: easier to look at
        model.classifier.bias[0] += 0.3
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(folder)
    (folder / "training_record.json").write_text(json.dumps({"task": "brat"}))
    return folder


def serve_demo(demo) -> str:
    """Launch ``demo`` on a free 127.0.0.1 port in this process; returns its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    warm_up(demo)
    demo.launch(**launch_settings(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True))
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path) -> Path:
    return save_demo_model(tmp_path_factory.mktemp("demo-model"), tiny_backbone_dir)


@pytest.fixture(scope="module")
def demo_ensemble(tmp_path_factory: pytest.TempPathFactory, demo_model: Path, tiny_backbone_dir: Path) -> Path:
    """Two different members (seeds 0 and 1) and a third equal to the first: a 3-member ensemble folder."""
    folder = tmp_path_factory.mktemp("demo-ensemble")
    shutil.copytree(demo_model, folder / MEMBERS_DIR / "0")
    save_demo_model(folder / MEMBERS_DIR / "1", tiny_backbone_dir, seed=1)
    shutil.copytree(demo_model, folder / MEMBERS_DIR / "2")
    (folder / ENSEMBLE_FILE).write_text(json.dumps({"members": ["0", "1", "2"], "min_votes": None}))
    shutil.copy(demo_model / "training_record.json", folder)
    return folder


@pytest.fixture(scope="module")
def app(demo_model: Path, demo_ensemble: Path):
    demo = build_demo({"tiny": str(demo_model), "tiny-ensemble": str(demo_ensemble)}, max_chars=MAX_CHARS)
    url = serve_demo(demo)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app[1], verbose=False)


def call(client: Client, *args, api_name: str):
    return client.submit(*args, api_name=api_name).result(timeout=WAIT)


def test_extraction_returns_what_the_model_predicts(client: Client, demo_model: Path) -> None:
    text = example_notes("es")[1]
    status, spans_view, table, deid, _, _ = call(client, "tiny", text, [], "label", api_name="/extract")
    expected = load_extractor(demo_model).predict([text])[0]
    assert expected, "the test model should find spans in the example note"
    pieces = [(p["token"], p["class_or_confidence"]) for p in spans_view["value"]]
    assert pieces == highlighted(text, expected)
    assert set(spans_view["color_map"]) == set(SYNTHETIC_LABELS)  # the legend: every label of the task
    assert table["headers"] == ["document", "label", "text", "start", "end", "confidence"]
    assert [row[:5] for row in table["data"]] == [["note", s.label, s.text, s.start, s.end] for s in expected]
    assert [row[5] for row in table["data"]] == pytest.approx([s.score for s in expected], abs=1e-3)
    assert status.startswith(f"{len(expected)} span")
    assert deid["value"] == deidentify(text, expected, mode="label") and deid["visible"]


def test_an_ensemble_folder_is_opened_and_votes(client: Client, demo_ensemble: Path) -> None:
    text = example_notes("en")[0]
    _, _, table, *_ = call(client, "tiny-ensemble", text, [], "label", api_name="/extract")
    expected = load_extractor(demo_ensemble).predict([text])[0]
    assert [tuple(row[1:5]) for row in table["data"]] == [(s.label, s.text, s.start, s.end) for s in expected]
    info, _ = call(client, "tiny-ensemble", api_name="/describe")
    assert "ensemble of 3" in info and "de-identification" in info


def test_uploaded_files_are_documents_and_downloads_hold_them(client: Client, app, demo_model: Path, tmp_path: Path) -> None:
    notes = example_notes("en")[:2]
    paths = []
    for name, note in zip(["first note.txt", "second.txt"], notes):
        (tmp_path / name).write_text(note, encoding="utf-8")
        paths.append(handle_file(str(tmp_path / name)))
    _, spans_view, table, *_ = call(client, "tiny", "", paths, "surrogate", api_name="/extract")
    expected = load_extractor(demo_model).predict(notes)
    assert {row[0] for row in table["data"]} <= {"first_note", "second"}
    assert len(table["data"]) == sum(map(len, expected))
    tokens = [p["token"] for p in spans_view["value"]]
    assert tokens[0] == "── first_note ──\n" and "\n\n── second ──\n" in tokens

    jsonl, brat = call(client, api_name="/downloads")
    assert Path(jsonl).read_text(encoding="utf-8").splitlines() == jsonl_lines(["first_note", "second"], expected)
    with zipfile.ZipFile(brat) as archive:
        assert sorted(archive.namelist()) == ["first_note.ann", "first_note.txt", "second.ann", "second.txt"]
        assert archive.read("second.txt").decode() == notes[1]
        from clinx_hub.documents import Document

        assert archive.read("second.ann").decode() == format_ann(Document("second", notes[1], expected[1]))
    demo = app[0]
    served = list((Path(demo.GRADIO_CACHE) / "clinx-demo").rglob("predictions.jsonl"))
    assert served, "downloads are written inside Gradio's own cache folder"


def test_surrogate_mode_replaces_spans_with_invented_values(client: Client, demo_model: Path) -> None:
    text = example_notes("es")[2]
    _, _, _, deid, *_ = call(client, "tiny", text, [], "surrogate", api_name="/extract")
    expected = load_extractor(demo_model).predict([text])[0]
    assert deid["value"] == deidentify(text, expected, mode="surrogate")


def test_too_long_input_gets_a_clear_message_at_once(client: Client) -> None:
    started = time.time()
    with pytest.raises(AppError, match="too long: over 5,000 characters"):
        call(client, "tiny", "x" * (MAX_CHARS + 1), [], "label", api_name="/extract")
    assert time.time() - started < 30


def test_empty_input_and_unknown_model_are_refused(client: Client) -> None:
    with pytest.raises(AppError, match="Paste a note"):
        call(client, "tiny", "   ", [], "label", api_name="/extract")
    with pytest.raises(AppError, match="not in the list of choices"):
        call(client, "/etc", "Texto.", [], "label", api_name="/extract")


def test_no_model_found_says_how_to_get_one(tmp_path: Path) -> None:
    demo = build_demo([str(tmp_path / "runs" / "quickstart" / "model")])
    [dropdown] = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown)]
    [info] = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "model-info"]
    assert dropdown.choices == []
    assert "No model found" in info.value and "clinx quickstart" in info.value and "--model" in info.value


def test_file_route_serves_nothing_outside_the_app_cache(app, demo_model: Path) -> None:
    import httpx

    url = app[1].rstrip("/")
    outside = ["/etc/passwd", str(demo_model / "config.json"), str(Path("pyproject.toml").resolve()),
               "/tmp/gradio/../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd"]
    for path in outside:
        response = httpx.get(f"{url}/gradio_api/file={path}", timeout=WAIT)
        assert response.status_code in (403, 404), path
        assert "root:" not in response.text


def test_a_client_cannot_make_the_app_read_a_path_it_did_not_upload(app) -> None:
    import httpx

    url = app[1].rstrip("/")
    forged = [{"path": "/etc/passwd", "orig_name": "passwd.txt", "meta": {"_type": "gradio.FileData"}}]
    started = httpx.post(f"{url}/gradio_api/call/extract", json={"data": ["tiny", "", forged, "label"]}, timeout=WAIT)
    event_id = started.json()["event_id"]
    with httpx.stream("GET", f"{url}/gradio_api/call/extract/{event_id}", timeout=WAIT) as events:
        body = "".join(events.iter_text())
    assert "event: error" in body and "root:" not in body


def test_pasted_text_is_neither_logged_nor_written(client: Client, app, capfd, caplog) -> None:
    marker = "Zacarías Quintanilla Ybarra"
    before = {p for p in Path(app[0].GRADIO_CACHE).rglob("*") if p.is_file()}
    call(client, "tiny", f"Paciente {marker}, 61 años, ingresa el 3 de marzo.", [], "label", api_name="/extract")
    out, err = capfd.readouterr()
    assert marker not in out + err + caplog.text
    for path in {p for p in Path(app[0].GRADIO_CACHE).rglob("*") if p.is_file()} - before:
        assert marker.encode() not in path.read_bytes(), path


def test_launch_settings_keep_the_app_closed_and_the_queue_bounded(app, demo_model: Path) -> None:
    demo = app[0]
    settings = launch_settings(demo)
    assert settings["allowed_paths"] == [] and settings["run_history"] is False
    assert str(demo_model.resolve()) in settings["blocked_paths"]
    assert demo._queue.max_size == 64 and demo._queue.default_concurrency_limit == 2
    assert demo.delete_cache is not None


def test_deidentification_is_recognised_by_task_or_labels() -> None:
    assert is_deidentification("meddocan", ["X"]) and is_deidentification("i2b2-2014", [])
    assert is_deidentification("brat", list(SYNTHETIC_LABELS))
    assert not is_deidentification("pharmaconer", ["NORMALIZABLES", "PROTEINAS"])
    assert not is_deidentification("brat", ["PROFESION", "SITUACION_LABORAL", "ACTIVIDAD"])
    assert not is_deidentification(None, ["MORFOLOGIA_NEOPLASIA"])


def test_models_come_from_the_environment_or_the_quickstart_default(monkeypatch) -> None:
    monkeypatch.delenv("CLINX_DEMO_MODELS", raising=False)
    assert parse_models(None) == {"runs/quickstart/model": "runs/quickstart/model"}
    monkeypatch.setenv("CLINX_DEMO_MODELS", "clinx-hub/clin-x-es-meddocan, runs/mine")
    assert list(parse_models(None)) == ["clinx-hub/clin-x-es-meddocan", "runs/mine"]
