"""The loopback Hub server against the real huggingface_hub, transformers and datasets clients."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hub_server import LocalHub, git_blob_sha, redirect_clients

REPO = "clinx/hub-server-test"


def _folder(root: Path) -> dict[str, bytes]:
    files = {
        "config.json": b'{"a": 1}\n',
        "weights.bin": bytes(range(256)) * 9 + b"\x00\xff",
        "nested/deeper/notes.txt": "Nota clínica inventada: ñ, é, ü.\n".encode(),
        "empty.txt": b"",
    }
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    return files


def test_upload_download_and_listings(local_hub: LocalHub, tmp_path: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    api = HfApi()
    url = api.create_repo(REPO)
    assert url.repo_id == REPO and url.startswith(local_hub.endpoint)
    api.create_repo(REPO, exist_ok=True)
    with pytest.raises(Exception, match="409"):
        api.create_repo(REPO)

    files = _folder(tmp_path / "upload")
    info = api.upload_folder(folder_path=tmp_path / "upload", repo_id=REPO, commit_message="add files")
    assert local_hub.files(REPO) == files

    assert sorted(api.list_repo_files(REPO)) == sorted(files)
    repo = api.model_info(REPO)
    assert repo.sha == info.oid and sorted(s.rfilename for s in repo.siblings) == sorted(files)
    lfs = {s.rfilename for s in repo.siblings if s.lfs is not None}
    assert lfs == {"weights.bin"}  # went through the LFS batch API; the others inline in the commit
    tree = {entry.path for entry in api.list_repo_tree(REPO)}
    assert tree == {"config.json", "weights.bin", "empty.txt", "nested"}
    [notes] = api.get_paths_info(REPO, ["nested/deeper/notes.txt", "missing.txt"])
    assert notes.blob_id == git_blob_sha(files["nested/deeper/notes.txt"])

    downloaded = Path(hf_hub_download(REPO, "nested/deeper/notes.txt"))
    assert downloaded.read_bytes() == files["nested/deeper/notes.txt"]
    snapshot = Path(snapshot_download(REPO))
    assert {p.relative_to(snapshot).as_posix(): p.read_bytes() for p in snapshot.rglob("*") if p.is_file()} == files
    assert api.list_repo_refs(REPO).branches[0].target_commit == info.oid

    api.delete_file("weights.bin", REPO)
    assert "weights.bin" not in api.list_repo_files(REPO)
    assert local_hub.unknown_requests == []


def test_unknown_route_is_a_clear_404(local_hub: LocalHub) -> None:
    from huggingface_hub.utils import get_session

    response = get_session().get(f"{local_hub.endpoint}/api/spaces-hardware-nonsense")
    assert response.status_code == 404
    assert "not implemented by tests/hub_server.py" in response.json()["error"]
    assert local_hub.unknown_requests == ["GET /api/spaces-hardware-nonsense"]


def test_patches_are_undone_and_the_server_stops(tmp_path: Path) -> None:
    import os

    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    before = (constants.ENDPOINT, constants.HF_HUB_CACHE, os.environ.get("HF_ENDPOINT"))
    with pytest.MonkeyPatch.context() as monkeypatch, LocalHub(cache_dir=tmp_path) as hub:
        redirect_clients(monkeypatch, hub)
        endpoint = hub.endpoint
        assert constants.ENDPOINT == endpoint and hub.env({})["HF_ENDPOINT"] == endpoint
        assert "HF_HUB_OFFLINE" not in hub.env({"HF_HUB_OFFLINE": "1"})
        assert get_session().get(f"{endpoint}/api/whoami-v2").json()["name"]
    assert (constants.ENDPOINT, constants.HF_HUB_CACHE, os.environ.get("HF_ENDPOINT")) == before
    # Nothing listens on the port any more: refused, or offline mode's error where HF_HUB_OFFLINE is set.
    with pytest.raises(Exception):  # noqa: B017
        get_session().get(f"{endpoint}/api/whoami-v2", timeout=2)


def test_transformers_push_and_load_in_a_subprocess(local_hub: LocalHub, tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=99, num_labels=3
    )
    model = BertForTokenClassification(config).eval()
    model.push_to_hub("clinx/tiny-bert")
    ids = [[2, 15, 40, 7, 3]]
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits.tolist()

    script = textwrap.dedent(
        f"""
        import json, torch
        from transformers import AutoModelForTokenClassification
        model = AutoModelForTokenClassification.from_pretrained("clinx/tiny-bert").eval()
        with torch.no_grad():
            print(json.dumps(model(torch.tensor({ids})).logits.tolist()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=local_hub.env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert torch.allclose(torch.tensor(loaded), torch.tensor(expected), atol=1e-6)
    assert local_hub.unknown_requests == []


def test_dataset_push_and_load_with_config(local_hub: LocalHub) -> None:
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "label": datasets.ClassLabel(names=["O", "B-FECHAS", "I-FECHAS"]),
        }
    )
    rows = {
        "id": ["n1", "n2", "n3"],
        "tokens": [["Alta", "el", "3"], ["Sin", "cambios"], []],
        "label": [0, 1, 2],
    }
    dataset = datasets.Dataset.from_dict(rows, features=features)
    dataset.push_to_hub("clinx/tiny-notes", config_name="documents")

    loaded = datasets.load_dataset("clinx/tiny-notes", "documents", split="train")
    assert loaded.features["label"] == features["label"]
    assert loaded.to_dict() == dataset.to_dict()
    assert local_hub.unknown_requests == []
