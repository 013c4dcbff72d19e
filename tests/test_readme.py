"""README.md's Python examples run as written, in a folder where ``runs/quickstart/model`` exists.

Each ```` ```python ```` block runs in a fresh interpreter (as a reader pastes it), in a folder
holding the suite's small quickstart run at ``runs/quickstart/model``. A block that cannot run here
says why in an HTML comment on the line before it: ``<!-- not run: reason -->``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->\s*$")


def readme_examples() -> list[tuple[int, str, str | None]]:
    """Each Python block of README.md: its first line number, its code, and why it is not run (or None)."""
    text = README.read_text(encoding="utf-8")
    examples = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skipped = NOT_RUN.search(before)
        examples.append((text.count("\n", 0, match.start()) + 1, match.group(1), skipped and skipped.group(1)))
    return examples


EXAMPLES = readme_examples()


def test_readme_has_python_examples_and_every_skip_says_why() -> None:
    assert len(EXAMPLES) >= 3
    assert all(reason for _, _, reason in EXAMPLES if reason is not None)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, small_quickstart: tuple[Path, str]) -> Path:
    """A folder with ``runs/quickstart/model`` in it, as after ``clinx quickstart``."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(small_quickstart[0] / "model", folder / "runs" / "quickstart" / "model")
    (folder / "spaces").symlink_to(README.parent / "spaces")  # the evaluate module's folder, as in a checkout
    return folder


@pytest.mark.parametrize(("line", "code", "reason"), EXAMPLES, ids=[f"README.md:{line}" for line, _, _ in EXAMPLES])
def test_readme_example_runs(line: int, code: str, reason: str | None, work: Path) -> None:
    if reason is not None:
        pytest.skip(f"README.md:{line} is marked not run: {reason}")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        # Remote code of a saved folder is copied into the modules cache: keep it inside the test.
        "HF_MODULES_CACHE": str(work / "hf-modules"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"README.md:{line} failed:\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"
