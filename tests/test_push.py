"""Model cards, and pushing to / loading from a Hub through the real clients (tests/hub_server.py)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import yaml
from conftest import note
from hub_server import LocalHub

from clinx_hub.card_figures import IMAGES
from clinx_hub.cli import main
from clinx_hub.ensemble import ClinXEnsemble, Extractor, load_extractor
from clinx_hub.formats.brat import write_brat
from clinx_hub.hub_datasets import convert
from clinx_hub.model_card import render_model_card
from clinx_hub.modeling_clinx import ClinXForTokenClassification
from clinx_hub.push import PushError, push_dataset, push_model
from clinx_hub.recipe import train_task
from clinx_hub.synthetic import write_synthetic_corpus
from clinx_hub.tagging import scheme_labels
from clinx_hub.training_args import default_arguments

TYPES = ["NOMBRE", "LUGAR"]
SECTIONS = (
    "## Intended use", "## How to use it", "## Labels", "## Training set-up", "## Evaluation",
    "## Limitations", "## Citation",
)


SENTINEL = "Zorvathquil"
"""An invented word in one training note, inside a span: it must reach no card, picture or pushed file."""


def sentinel_note(doc_id: str):
    from clinx_hub import Document, Span

    name = f"{SENTINEL} Brenes"
    text = f"Paciente {name} ingresa en Madrid con dolor. "
    return Document(doc_id, text, [Span(9, 9 + len(name), "NOMBRE", name), Span(30, 36, "LUGAR", "Madrid")])


@pytest.fixture(scope="module")
def notes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clinx_hub.sentences import split_sentences

    root = tmp_path_factory.mktemp("notes")
    for split, start, count in (("train", 0, 8), ("dev", 8, 2), ("test", 10, 3)):
        write_brat([note(f"{split}{i:02d}", 2 + i % 2, offset=i) for i in range(start, start + count)], root / split)
    marked = sentinel_note("train-sentinel")
    marked.sentences = split_sentences(marked.text)
    write_brat([marked], root / "train")
    return root


def tiny_arguments(out: Path, **overrides):
    """The tiny training runs of these tests: two epochs (a curve of two points), small windows."""
    return default_arguments(
        out / "checkpoints", **{**dict(
            num_train_epochs=2, learning_rate=5e-3, per_device_train_batch_size=8, per_device_eval_batch_size=8,
            window_length=64, context_size=8, disable_tqdm=True, seed=0, logging_strategy="no",
        ), **overrides},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, notes_dir: Path, tiny_backbone_dir: Path) -> Path:
    """A tiny model trained on the notes for two epochs, its test split scored into the record."""
    out = tmp_path_factory.mktemp("trained")
    train_task("brat", notes_dir, str(tiny_backbone_dir), out, tiny_arguments(out))
    return out


@pytest.fixture(scope="module")
def transferred(tmp_path_factory: pytest.TempPathFactory, notes_dir: Path, tiny_backbone_dir: Path, trained: Path) -> Path:
    """A transfer model: ``--init-from`` the trained model (by its absolute local path) and ``--first-n 6``."""
    out = tmp_path_factory.mktemp("transferred")
    train_task("brat", notes_dir, str(tiny_backbone_dir), out, tiny_arguments(out, init_from=str(trained), first_n=6))
    return out


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path, tiny_tokenizer) -> Path:
    """Two untrained tiny members with different seeds: enough to tell a vote from one model."""
    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = ClinXForTokenClassification.from_backbone(
            str(tiny_backbone_dir), scheme_labels(TYPES), context_size=8, window_length=64
        )
        members.append(Extractor(model.eval(), tiny_tokenizer))
    out = tmp_path_factory.mktemp("ensemble")
    ClinXEnsemble(members, names=["a", "b"]).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Synthetic notes carry MEDDOCAN labels; a plain folder converts as one "train" split. (The
    # "brat" task, which has no fixed label set, does not convert: its sentence tags have no ids.)
    notes = write_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), n_train=3, n_dev=0, n_test=0, seed=5)
    return convert("meddocan", notes / "train", tmp_path_factory.mktemp("dataset") / "notes-hub")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash: equal snapshots mean a byte-identical folder."""
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def front_matter(card: str) -> tuple[dict, str]:
    _, header, body = card.split("---\n", 2)
    return yaml.safe_load(header), body


def python_blocks(card: str) -> list[str]:
    """The card's Python examples, in order."""
    return re.findall(r"```python\n(.*?)```", card, flags=re.S)


def is_png(data: bytes) -> bool:
    """A whole PNG that Pillow decodes (not only its signature)."""
    from PIL import Image

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format == "PNG" and min(image.size) > 100


# --- pushing and loading through the real clients --------------------------------------------------

CHECK_WITHOUT_CLINX_HUB = """
import json, sys
sys.modules["clinx_hub"] = None  # as if clinx_hub were not installed
import torch
from datasets import load_dataset
from transformers import AutoModelForTokenClassification, AutoTokenizer

expected = torch.load(sys.argv[1])
model = AutoModelForTokenClassification.from_pretrained("clinx/tiny-notes", trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
tokenizer = AutoTokenizer.from_pretrained("clinx/tiny-notes")
inputs = tokenizer(expected["texts"], return_tensors="pt", padding=True)
assert torch.equal(inputs["input_ids"], expected["input_ids"])
assert torch.equal(model.decode(inputs["input_ids"], inputs["attention_mask"]), expected["paths"])
member = AutoModelForTokenClassification.from_pretrained(
    "clinx/tiny-ensemble", subfolder="members/b", trust_remote_code=True
).eval()
assert torch.equal(member.decode(inputs["input_ids"], inputs["attention_mask"]), expected["member_paths"])
# The plain-transformers example of each card, exactly as the card prints it.
for code in json.loads(open(sys.argv[3]).read()):
    exec(code, {})
rows = json.loads(open(sys.argv[2]).read())
for config, splits in rows.items():
    loaded = load_dataset("clinx/notes", config)
    assert sorted(loaded) == sorted(splits), (config, sorted(loaded))
    for split, expected_rows in splits.items():
        assert json.loads(json.dumps(loaded[split].to_list())) == expected_rows, (config, split)
print("OK")
"""


def test_push_model_ensemble_and_dataset_then_load_them_back(
    local_hub: LocalHub, trained: Path, ensemble_dir: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    before = {folder: snapshot(folder) for folder in (trained, ensemble_dir, dataset_dir)}
    url = push_model(trained, "clinx/tiny-notes", language="es")
    assert url.endswith("clinx/tiny-notes")
    assert main(["push", str(ensemble_dir), "clinx/tiny-ensemble"]) == 0
    assert main(["data", "push", str(dataset_dir), "clinx/notes"]) == 0
    assert {folder: snapshot(folder) for folder in before} == before  # the cards were rendered in memory

    single = local_hub.files("clinx/tiny-notes")
    # The card rendered for the push goes up with its pictures (drawn in memory, as the card).
    assert set(single) == set(before[trained]) | {"README.md", *IMAGES.values()}
    assert all(is_png(single[path]) for path in IMAGES.values())
    assert "checkpoints" not in "".join(single)
    assert front_matter(single["README.md"].decode())[0]["model-index"][0]["name"] == "tiny-notes"
    ensemble = local_hub.files("clinx/tiny-ensemble")  # untrained members: no record, no pictures
    assert set(ensemble) == set(before[ensemble_dir]) | {"README.md", "configuration_clinx.py", "modeling_clinx.py"}
    assert ensemble["modeling_clinx.py"] == (ensemble_dir / "members" / "a" / "modeling_clinx.py").read_bytes()
    assert set(local_hub.files("clinx/notes", repo_type="dataset")) == set(before[dataset_dir])

    # Fixed inputs, decoded here from the local folders, must decode the same from the Hub.
    texts = ["Paciente Juan García ingresa en Madrid con dolor.", "Luis en La Paz."]
    local = Extractor.from_pretrained(trained)
    inputs = local.tokenizer(texts, return_tensors="pt", padding=True)
    member_b = Extractor.from_pretrained(ensemble_dir / "members" / "b").model
    torch.save({
        "texts": texts,
        "input_ids": inputs["input_ids"],
        "paths": local.model.eval().decode(inputs["input_ids"], inputs["attention_mask"]),
        "member_paths": member_b.eval().decode(inputs["input_ids"], inputs["attention_mask"]),
    }, tmp_path / "expected.pt")
    rows = {
        config: {p.name.split("-")[0]: pq.read_table(p).to_pylist() for p in sorted((dataset_dir / config).glob("*.parquet"))}
        for config in ("documents", "sentences")
    }
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    cards = {repo: local_hub.files(repo)["README.md"].decode() for repo in ("clinx/tiny-notes", "clinx/tiny-ensemble")}
    plain = [python_blocks(card)[1] for card in cards.values()]
    assert all("import clinx_hub" not in code and "from clinx_hub" not in code for code in plain)
    (tmp_path / "examples.json").write_text(json.dumps(plain))
    script = textwrap.dedent(CHECK_WITHOUT_CLINX_HUB)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "expected.pt"), str(tmp_path / "rows.json"),
         str(tmp_path / "examples.json")],
        capture_output=True, text=True, env=local_hub.env(), timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")

    # In process, with clinx_hub: a Hub id opens like the local folder, ensemble vote included.
    notes = [note("x1", 3, offset=1).text, note("x2", 2, offset=2).text]
    from_hub = load_extractor("clinx/tiny-ensemble")
    assert isinstance(from_hub, ClinXEnsemble) and from_hub.names == ["a", "b"]
    assert from_hub.predict(notes) == load_extractor(ensemble_dir).predict(notes)
    # Each card's clinx_hub example runs as printed (the vote for the ensemble).
    for card in cards.values():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(python_blocks(card)[0], {})
        assert printed.getvalue().rstrip().endswith("]")  # the pipeline's list of entity lists
    assert local_hub.unknown_requests == []


def test_missing_remote_code_fails_before_anything_is_sent(
    local_hub: LocalHub, ensemble_dir: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    folder = shutil.copytree(ensemble_dir, tmp_path / "broken")
    (folder / "members" / "b" / "modeling_clinx.py").unlink()
    before = snapshot(folder)
    with pytest.raises(PushError, match=r"modeling_clinx\.py in members/b .*trust_remote_code"):
        push_model(folder, "clinx/broken")
    assert main(["push", str(folder), "clinx/broken"]) == 2
    assert "clinx: error:" in capsys.readouterr().err
    assert snapshot(folder) == before
    assert ("model", "clinx/broken") not in local_hub.store.repos


def test_push_to_a_stopped_hub_is_a_network_error_and_changes_nothing(local_hub: LocalHub, ensemble_dir: Path) -> None:
    before = snapshot(ensemble_dir)
    local_hub.stop()
    with pytest.raises(PushError, match="network error"):
        push_model(ensemble_dir, "clinx/unreachable")
    assert snapshot(ensemble_dir) == before


class _Unauthorised(BaseHTTPRequestHandler):
    """Answers every request as the Hub answers a bad token."""

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"error": "Invalid credentials in Authorization header"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def test_a_bad_token_is_an_authentication_error_and_changes_nothing(
    local_hub: LocalHub, trained: Path, dataset_dir: Path, monkeypatch, capsys
) -> None:
    from huggingface_hub import constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorised)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        before = snapshot(trained), snapshot(dataset_dir)
        with pytest.raises(PushError, match=r"authentication refused \(HTTP 401\)"):
            push_model(trained, "clinx/tiny-notes", token="hf_bad")
        assert main(["data", "push", str(dataset_dir), "clinx/notes", "--token", "hf_bad"]) == 2
        assert "authentication refused (HTTP 401)" in capsys.readouterr().err
        assert (snapshot(trained), snapshot(dataset_dir)) == before
        with pytest.raises(PushError, match="no README.md"):
            push_dataset(trained, "clinx/x")
    finally:
        server.shutdown()
        server.server_close()


# --- what a push must not leak or drop ------------------------------------------------------------


def test_saved_configs_hold_no_local_path_and_push_refuses_one(
    local_hub: LocalHub, ensemble_dir: Path, tiny_backbone_dir: Path, tmp_path: Path
) -> None:
    import shutil

    from clinx_hub.push import config_path_problems

    for member in ("a", "b"):
        config = ensemble_dir / "members" / member / "config.json"
        assert str(tiny_backbone_dir) not in config.read_text() and config_path_problems(config) == []
    folder = Path(shutil.copytree(ensemble_dir, tmp_path / "leaky"))
    config = folder / "members" / "a" / "config.json"
    data = json.loads(config.read_text())
    data["encoder"]["_name_or_path"] = "/home/someone/encoders/xlmr"  # as clinx_hub 0.1 saved it
    config.write_text(json.dumps(data))
    before = snapshot(folder)
    held = r"members/a: config.json holds a path of this machine \(encoder._name_or_path: '/home/someone"
    with pytest.raises(PushError, match=held):
        push_model(folder, "clinx/leaky")
    assert snapshot(folder) == before and ("model", "clinx/leaky") not in local_hub.store.repos


def test_push_refuses_pickle_weights(local_hub: LocalHub, ensemble_dir: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    folder = Path(shutil.copytree(ensemble_dir, tmp_path / "pickled"))
    member = folder / "members" / "b"
    torch.save(load_file(member / "model.safetensors"), member / "pytorch_model.bin")
    (member / "model.safetensors").unlink()
    with pytest.raises(PushError, match=r"members/b: weights only as pickle \(pytorch_model.bin\)"):
        push_model(folder, "clinx/pickled")
    assert ("model", "clinx/pickled") not in local_hub.store.repos


def test_clinx_push_puts_licence_language_and_datasets_into_the_card(
    local_hub: LocalHub, ensemble_dir: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    assert main(["push", str(ensemble_dir), "clinx/tiny-card", "--license", "cc-by-sa-4.0", "--language", "es",
                 "--dataset", "clinx/notes"]) == 0
    metadata, body = front_matter(local_hub.files("clinx/tiny-card")["README.md"].decode())
    assert (metadata["license"], metadata["language"], metadata["datasets"]) == ("cc-by-sa-4.0", ["es"], ["clinx/notes"])
    assert "license_name" not in metadata and "**Licence:** cc-by-sa-4.0" in body
    # A folder with a card of its own goes up with it: card fields for it are refused, not dropped.
    folder = Path(shutil.copytree(ensemble_dir, tmp_path / "carded"))
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# mine\n", encoding="utf-8")
    assert main(["push", str(folder), "clinx/carded", "--license", "cc-by-4.0"]) == 2
    assert "has its own README.md, which is pushed as it is: license would not reach the card" in capsys.readouterr().err
    assert ("model", "clinx/carded") not in local_hub.store.repos


@pytest.mark.parametrize(("task", "licence"), [
    ("i2b2-2014", {"license": "other", "license_name": "n2c2-data-use-agreement"}),
    ("brat", {"license": "other"}),
    ("meddocan", {"license": "cc-by-4.0"}),
])
def test_a_model_cards_licence_is_its_own_tasks(task: str, licence: dict, ensemble_dir: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(ensemble_dir, tmp_path / "model"))
    (folder / "training_record.json").write_text(json.dumps({"task": task}))
    metadata, _ = front_matter(render_model_card(folder, model_id="clinx/x"))
    assert {k: metadata[k] for k in ("license", "license_name") if k in metadata} == licence
    metadata, _ = front_matter(render_model_card(folder, model_id="clinx/x", license="cc-by-sa-4.0"))
    assert metadata["license"] == "cc-by-sa-4.0" and "license_name" not in metadata


def test_clinx_push_of_a_transfer_model_names_its_source_and_both_f1s(
    local_hub: LocalHub, transferred: Path, trained: Path, capsys
) -> None:
    record = json.loads((transferred / "training_record.json").read_text())
    assert record["init_from"] == str(trained) and record["first_n"] == 6  # recorded as given: a local absolute path
    command = ["push", str(transferred), "clinx/tiny-transfer", "--license", "cc-by-4.0", "--language", "es",
               "--dataset", "clinx/notes", "--dataset", "clinx/more-notes"]
    assert main([*command, "--baseline-f1", "50"]) == 2  # a percentage, not an F1 as the record keeps it
    assert "baseline_f1 is an F1 between 0 and 1" in capsys.readouterr().err
    assert ("model", "clinx/tiny-transfer") not in local_hub.store.repos
    assert main([*command, "--baseline-f1", "0.25"]) == 0

    files = local_hub.files("clinx/tiny-transfer")
    assert {*IMAGES.values()} <= set(files) and all(is_png(files[path]) for path in IMAGES.values())
    card = files["README.md"].decode()
    metadata, body = front_matter(card)
    assert (metadata["license"], metadata["language"]) == ("cc-by-4.0", ["es"])
    assert metadata["datasets"] == ["clinx/notes", "clinx/more-notes"] and "transfer" in metadata["tags"]
    transfer, baseline = metadata["model-index"][0]["results"]
    for result in (transfer, baseline):
        assert result["dataset"]["type"] == "clinx/notes" and result["dataset"]["args"] == {"first_n": 6}
    assert transfer["task"]["name"] == f"Clinical concept extraction (transfer from {trained.name}, a brat model)"
    f1 = {m["type"]: m["value"] for m in transfer["metrics"]}["f1"]
    assert f1 == round(record["evaluation"]["micro"]["f1"], 4)
    assert baseline["dataset"]["config"] == "no-transfer-baseline" and "without transfer" in baseline["task"]["name"]
    assert baseline["metrics"] == [{"type": "f1", "value": 0.25, "name": "Strict micro F1 without transfer"}]
    assert f"| Strict micro F1 with transfer (this model) | {f1:.4f} |" in body
    assert "| Strict micro F1 without transfer (same recipe, no --init-from) | 0.2500 |" in body
    assert f"| Source model | a local model (`{trained.name}`) |" in body and "| Source task | brat |" in body
    assert "| Training data (n) | first 6 sentences |" in body
    # The source's local path (and the machine's folders above it) never reach the card.
    assert str(trained) not in card and str(trained.parent) not in card and str(Path.home()) not in card
