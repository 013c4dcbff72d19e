"""`clinx space build OUT`: a demo Space folder that installs as a Hugging Face Space installs it.

A Space runs ``pip install -r requirements.txt`` with that file alone (its Dockerfile mounts it
before the repository is copied in), so the tests do the same: requirements.txt copied into an
empty folder, pip run from there, the wheel's URL answered by a loopback server that serves the
built folder under ``/spaces/OWNER/NAME/resolve/main/`` as the Hub does.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from huggingface_hub import metadata_load
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from clinx_hub.cli import main
from clinx_hub.space_build import (
    DEMO_SPACE,
    REQUIRED_IN_WHEEL,
    TORCH_INDEX,
    build_space,
    constraint_pins,
    project_root,
)

ROOT = project_root()
SPACE_ID = "clinx-test/clinx-demo"
# The CPU torch index cannot be reached from these machines: one quick failed try, not five retries.
PIP_ENV = {"PIP_RETRIES": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


class HubFiles(http.server.SimpleHTTPRequestHandler):
    """``/spaces/<SPACE_ID>/resolve/main/PATH`` -> ``PATH`` of the built folder; nothing else is served."""

    def translate_path(self, path: str) -> str:
        prefix = f"/spaces/{SPACE_ID}/resolve/main/"
        return super().translate_path(path.removeprefix(prefix) if path.startswith(prefix) else "/missing/")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    """A loopback 'Hub' serving the Space folder the test builds into ``hub.folder``."""
    folder = tmp_path_factory.mktemp("space") / "out"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(HubFiles, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.folder, server.endpoint = folder, f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def space(hub) -> Path:
    """``clinx space build`` into the served folder, with the loopback server as the Hub."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_ENDPOINT", hub.endpoint)
        assert main(["space", "build", str(hub.folder), "--space-id", SPACE_ID]) == 0
    return hub.folder


def requirement_lines(folder: Path) -> list[str]:
    text = (folder / "requirements.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def bare_venv(folder: Path) -> Path:
    """A fresh venv (no system site-packages, not even pip: ``pip --python`` installs into it): its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True)
    return folder / "bin" / "python"


def pip(python: Path, *args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """This environment's pip acting on the venv of ``python``."""
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **PIP_ENV}, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def space_like_install_folder(space: Path, tmp_path: Path) -> Path:
    """An empty folder holding only a copy of requirements.txt: what a Space's pip step sees."""
    alone = tmp_path / "requirements-only"
    alone.mkdir()
    shutil.copy(space / "requirements.txt", alone / "requirements.txt")
    return alone


def test_the_folder_holds_the_space_files_the_wheel_and_requirements_that_install_it(space: Path, hub) -> None:
    assert sorted(p.name for p in space.iterdir()) == [".gitattributes", "README.md", "app.py", "requirements.txt", "wheels"]
    for name in ("README.md", "app.py"):
        assert (space / name).read_text(encoding="utf-8") == (ROOT / DEMO_SPACE / name).read_text(encoding="utf-8")
    card = metadata_load(space / "README.md")
    assert (card["sdk"], card["app_file"], card["python_version"]) == ("gradio", "app.py", "3.11")

    (wheel,) = (space / "wheels").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert set(REQUIRED_IN_WHEEL) <= set(names)
    corpus_modules = sorted(p.name for p in (ROOT / "dataset_scripts").glob("*.py"))
    assert sorted(Path(n).name for n in names if n.startswith("clinx_hub/dataset_scripts/")) == corpus_modules
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    lines = requirement_lines(space)
    pins = constraint_pins(ROOT / "constraints" / "cpu.txt")
    assert lines[0] == f"--extra-index-url {TORCH_INDEX}" and f"torch{pins['torch']}" in lines
    assert f"transformers{pins['transformers']}" in lines and f"gradio{pins['gradio']}" in lines
    # The Space installs gradio==sdk_version in the same pip command: the pin must admit it.
    assert Version(card["sdk_version"]) in SpecifierSet(pins["gradio"])
    assert lines[-1] == f"clinx_hub[demo] @ {hub.endpoint}/spaces/{SPACE_ID}/resolve/main/wheels/{wheel.name}"


def test_the_app_defaults_to_a_model_this_project_releases() -> None:
    app = (ROOT / DEMO_SPACE / "app.py").read_text(encoding="utf-8")
    (default,) = re.findall(r'^SPACE_MODELS = "([^"]+)"', app, re.M)
    owner, name = default.split("/")
    assert (ROOT / "model_cards" / f"{name}.md").is_file(), f"{default} has no card in model_cards/"


def test_the_checked_in_requirements_are_what_the_build_writes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    built = build_space(tmp_path / "out", space_id="clinx-hub/clinx-demo")  # the released Space, the real Hub
    assert built.requirements.read_text(encoding="utf-8") == (ROOT / DEMO_SPACE / "requirements.txt").read_text(
        encoding="utf-8"
    ), "spaces/clinx-demo/requirements.txt is stale: copy the one `clinx space build` writes"
    assert built.wheel_url.startswith("https://huggingface.co/spaces/clinx-hub/clinx-demo/resolve/main/wheels/")


def test_a_folder_that_is_not_empty_is_refused_unless_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["space", "build", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err and sorted(os.listdir(out)) == ["notes.txt"]
    (out / "wheels").mkdir()
    (out / "wheels" / "clinx_hub-0.0.1-py3-none-any.whl").write_bytes(b"old")
    assert main(["space", "build", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # files the build does not write stay
    assert [p.name for p in (out / "wheels").iterdir()] == [next((out / "wheels").glob("*.whl")).name]
    assert "0.0.1" not in next((out / "wheels").glob("*.whl")).name  # the stale wheel is gone

    assert main(["space", "build", str(ROOT / DEMO_SPACE), "--overwrite"]) == 2  # never over its own source
    assert "source folder" in capsys.readouterr().err
    assert main(["space", "build", str(ROOT), "--overwrite"]) == 2  # nor over the project's README.md
    assert "checkout itself" in capsys.readouterr().err
    assert main(["space", "build", str(tmp_path / "x"), "--space-id", "not an id"]) == 2


def test_the_wheel_installs_alone_into_a_bare_venv_and_imports_torch_free(space: Path, tmp_path: Path) -> None:
    python = bare_venv(tmp_path / "venv")
    (wheel,) = (space / "wheels").glob("*.whl")
    pip(python, "install", "--no-deps", "--no-index", "--quiet", str(wheel), cwd=tmp_path, timeout=300)
    probe = (
        "import importlib.resources, importlib.util, clinx_hub, clinx_hub.dataset_scripts.meddocan;"
        "print(clinx_hub.__version__, importlib.util.find_spec('torch') is None,"
        " importlib.resources.files('clinx_hub').joinpath('model_card_template.md').is_file(), clinx_hub.__file__)"
    )
    done = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    version, no_torch, template, location = done.stdout.split()
    assert (version, no_torch, template) == ("0.1.0", "True", "True")
    assert Path(location).is_relative_to(tmp_path / "venv")  # the installed copy, not this checkout


def test_requirements_resolve_from_the_file_alone_as_a_space_installs_them(space: Path, tmp_path: Path) -> None:
    python = bare_venv(tmp_path / "venv")
    alone = space_like_install_folder(space, tmp_path)
    done = pip(python, "install", "--dry-run", "--no-deps", "-r", "requirements.txt", cwd=alone, timeout=300)
    (wheel,) = (space / "wheels").glob("*.whl")
    assert "Would install" in done.stdout and "clinx_hub-0.1.0" in done.stdout, done.stdout[-2000:]
    assert wheel.name.split("-")[0] in done.stdout


@pytest.mark.slow
def test_a_fresh_venv_given_only_the_folder_installs_and_serves_the_app(
    space: Path, tmp_path: Path, tiny_backbone_dir: Path
) -> None:
    """The whole Space path: pip from requirements.txt alone (+ gradio as the Space adds it), then app.py."""
    from gradio_client import Client
    from test_demo import WAIT, call, free_port, save_demo_model, wait_until_up

    from clinx_hub.ensemble import load_extractor
    from clinx_hub.synthetic import example_notes

    python = bare_venv(tmp_path / "venv")
    alone = space_like_install_folder(space, tmp_path)
    card = metadata_load(space / "README.md")
    started = time.time()
    pip(python, "install", "--quiet", "-r", "requirements.txt", f"gradio=={card['sdk_version']}", cwd=alone, timeout=900)
    install_seconds = time.time() - started

    app = tmp_path / "app"  # the repository as the Space copies it in after the install
    shutil.copytree(space, app)
    model = save_demo_model(tmp_path / "model", tiny_backbone_dir)
    port, log = free_port(), tmp_path / "app.log"
    env = {**os.environ, "CLINX_DEMO_MODELS": str(model), "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1",
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    env.pop("PYTHONPATH", None)
    with log.open("wb") as output:
        process = subprocess.Popen([str(python), "app.py"], cwd=app, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, process, WAIT, log=log)
        text = example_notes("es")[1]
        _, _, table, *_ = call(Client(url, verbose=False), str(model), text, [], "label", api_name="/extract")
        expected = load_extractor(model).predict([text])[0]
        start, end = table["headers"].index("start"), table["headers"].index("end")
        assert expected and sorted((row[start], row[end]) for row in table["data"]) == sorted((s.start, s.end) for s in expected)
    finally:
        process.terminate()
        process.wait(60)
    installed = subprocess.run([str(python), "-c", "import clinx_hub; print(clinx_hub.__file__)"], cwd=tmp_path,
                               capture_output=True, text=True).stdout
    assert Path(installed.strip()).is_relative_to(tmp_path / "venv")
    print(f"full install from requirements.txt: {install_seconds:.0f} s")
