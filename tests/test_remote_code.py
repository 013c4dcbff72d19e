"""Saved folders where clinx_hub is not installed: a bare venv, the loopback Hub, plain transformers.

The bare venv sees the test environment's site-packages through a ``.pth`` path line, which puts
torch and transformers on ``sys.path`` but runs none of that folder's own ``.pth`` files, so
clinx_hub's editable install is not importable there (each test asserts it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from transformers import AutoTokenizer

import clinx_hub  # noqa: F401  (registers the task in this process)
from clinx_hub.extraction import extract_documents
from clinx_hub.outputs import span_records

TEXTS = ["Paciente Juan García ingresa en Madrid con dolor. Alta el 20 de marzo.", "Sin hallazgos."]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv without clinx_hub whose interpreter finds this environment's packages."""
    venv = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    Path(site, "test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_bare(python: Path, code: str, env: dict, cwd: Path) -> dict:
    prelude = "import importlib.util, json\nassert importlib.util.find_spec('clinx_hub') is None, 'clinx_hub importable'\n"
    done = subprocess.run(
        [str(python), "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
        env=env, cwd=cwd, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Do you wish to run the custom code" not in done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path) -> Path:
    from test_pipeline import saved_tiny_model

    return saved_tiny_model(tmp_path_factory.mktemp("remote-model"), tiny_backbone_dir)


def test_the_pipeline_runs_from_the_hub_where_clinx_hub_is_not_installed(
    local_hub, bare_python: Path, saved_model: Path, tmp_path: Path
) -> None:
    from huggingface_hub import HfApi
    from transformers import AutoModelForTokenClassification

    HfApi().create_repo("clinx/tiny-remote")
    HfApi().upload_folder(repo_id="clinx/tiny-remote", folder_path=str(saved_model))
    model = AutoModelForTokenClassification.from_pretrained(saved_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(saved_model)
    expected = [span_records(spans) for spans in extract_documents(model, tokenizer, TEXTS)]
    assert sum(map(len, expected)) > 0

    got = run_bare(bare_python, f"""
        from transformers import pipeline
        extract = pipeline("clinx-extraction", model="clinx/tiny-remote", trust_remote_code=True, device="cpu")
        print(json.dumps({{"spans": extract({TEXTS!r}), "class": type(extract).__name__}}))
    """, env=local_hub.env(), cwd=tmp_path)
    assert got["class"] == "ClinXExtractionPipeline"
    assert [[{k: v for k, v in r.items() if k != "score"} for r in doc] for doc in got["spans"]] == [
        [{k: v for k, v in r.items() if k != "score"} for r in doc] for doc in expected
    ]
    for doc_got, doc_expected in zip(got["spans"], expected):
        assert [r["score"] for r in doc_got] == pytest.approx([r["score"] for r in doc_expected], rel=1e-5)


def test_a_saved_tokenizer_loads_without_remote_code_once_clinx_hub_is_imported(saved_model: Path, tmp_path: Path) -> None:
    """transformers reads a folder's config before its tokenizer: without the registration it asks y/N."""
    code = f"""
        import clinx_hub, json
        from transformers import AutoConfig, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained({str(saved_model)!r})
        config = AutoConfig.from_pretrained({str(saved_model)!r})
        print(json.dumps([type(tokenizer).__name__, type(config).__module__]))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL, cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Do you wish to run the custom code" not in done.stdout + done.stderr
    tokenizer_class, config_module = json.loads(done.stdout.strip().splitlines()[-1])
    assert tokenizer_class == "XLMRobertaTokenizer" and config_module == "clinx_hub.configuration_clinx"
