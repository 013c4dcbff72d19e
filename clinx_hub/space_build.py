"""A demo Space folder that installs on the Hub as it is: ``clinx space build OUT``.

clinx_hub is not on PyPI, so the Space carries the package itself: the folder holds the Space's
files (``README.md`` with its YAML, ``app.py``) from ``spaces/clinx-demo/``, the wheel of this
checkout in ``wheels/``, and a ``requirements.txt`` that installs that wheel with pins from
``constraints/cpu.txt``.

Why the wheel is named by URL and not by a relative path: a Gradio Space installs its
requirements before the repository is copied in (its Dockerfile mounts ``requirements.txt``
alone: ``RUN --mount=target=/tmp/requirements.txt,source=requirements.txt pip install -r
/tmp/requirements.txt ...``, and ``COPY ./ /home/user/app`` comes after), so ``./wheels/...``
does not exist at install time. The wheel's ``resolve/main`` URL on the Space itself does: the
build runs on the commit that holds it. The Space must therefore be public.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .formats.base import write_text_atomic
from .hub import DEFAULT_ORGANISATION
from .outputs import OutputFolderError

DEMO_SPACE = "spaces/clinx-demo"
"""The Space's source folder inside a clinx_hub checkout."""
SPACE_FILES = ("README.md", "app.py")
"""Copied from ``DEMO_SPACE`` as they are; ``requirements.txt`` is written for the wheel."""
WHEELS_DIR = "wheels"
DEFAULT_SPACE_ID = f"{DEFAULT_ORGANISATION}/clinx-demo"
DEFAULT_ENDPOINT = "https://huggingface.co"
EXTRAS = ("demo",)
"""The wheel's extras the Space installs (gradio)."""
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
"""Free Spaces run on CPU; without this index pip would take PyPI's multi-GB CUDA build of torch."""
REQUIRED_IN_WHEEL = ("clinx_hub/dataset_scripts/__init__.py", "clinx_hub/model_card_template.md", "clinx_hub/demo.py")
"""What a wheel built without the ``dataset_scripts`` link or the package data would lack."""
HEADER = "# Written by `clinx space build`"
# Gitattributes of the Space: a .whl is binary, and the Hub takes binary files only through LFS/Xet.
GITATTRIBUTES = "*.whl filter=lfs diff=lfs merge=lfs -text\n"


class SpaceBuildError(RuntimeError):
    """The Space folder cannot be built here (no source checkout, a wheel that fails to build)."""


@dataclass(frozen=True)
class SpaceBuild:
    """What ``build_space`` wrote: the folder, its wheel and the requirement line that installs the wheel."""

    folder: Path
    wheel: Path
    wheel_url: str

    @property
    def requirements(self) -> Path:
        return self.folder / "requirements.txt"


def project_root() -> Path:
    """The clinx_hub checkout this package runs from (``pip install -e .``), or ``SpaceBuildError``.

    >>> (project_root() / DEMO_SPACE / "app.py").is_file()
    True
    """
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or 'name = "clinx_hub"' not in pyproject.read_text(encoding="utf-8"):
        raise SpaceBuildError(
            f"clinx space build needs a clinx_hub source checkout (installed with `pip install -e .`); "
            f"{root} holds no clinx_hub pyproject.toml"
        )
    if not (root / DEMO_SPACE / "app.py").is_file():
        raise SpaceBuildError(f"{root / DEMO_SPACE}: the Space's source folder (app.py) is missing")
    return root


def build_wheel(root: Path, wheels: Path) -> Path:
    """Build the wheel of the checkout at ``root`` into ``wheels`` (offline: no build isolation, no index).

    The sources are copied to a temporary folder first: setuptools would otherwise reuse the
    checkout's ``build/lib``, where a module deleted since the last build still lies. The copy
    follows the ``clinx_hub/dataset_scripts`` link, so the corpus modules are inside the wheel.

    >>> build_wheel(project_root(), Path("/tmp/wheels")).name  # doctest: +SKIP
    'clinx_hub-0.1.0-py3-none-any.whl'
    """
    with tempfile.TemporaryDirectory(prefix="clinx-wheel-") as scratch:
        source, built = Path(scratch) / "source", Path(scratch) / "built"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, source / name)
        shutil.copytree(root / "clinx_hub", source / "clinx_hub", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                   "--quiet", "-w", str(built), str(source)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SpaceBuildError(f"pip wheel failed (status {done.returncode}): {done.stderr.strip()[-2000:]}")
        (wheel,) = built.glob("clinx_hub-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            missing = [name for name in REQUIRED_IN_WHEEL if name not in archive.namelist()]
        if missing:
            raise SpaceBuildError(f"{wheel.name} lacks {', '.join(missing)}; see pyproject.toml's packages.find note")
        wheels.mkdir(parents=True, exist_ok=True)
        target = wheels / wheel.name
        temporary = wheels / f".{wheel.name}.tmp"
        shutil.copy2(wheel, temporary)
        os.replace(temporary, target)  # never half a wheel under its real name
    return target


def wheel_requirements(wheel: Path, extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """The wheel's dependencies (with ``extras``) as ``{name: specifier}``, from its METADATA.

    >>> wheel_requirements(Path("wheels/clinx_hub-0.1.0-py3-none-any.whl"))["gradio"]  # doctest: +SKIP
    '>=6'
    """
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode("utf-8").splitlines()
    found = {}
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.removeprefix("Requires-Dist:").strip())
        wanted = requirement.marker is None or any(requirement.marker.evaluate({"extra": e}) for e in extras)
        if wanted:
            found[requirement.name] = str(requirement.specifier)
    return found


def constraint_pins(constraints: Path) -> dict[str, str]:
    """``name==version`` lines of a constraints file as ``{normalised name: "==version"}``.

    >>> constraint_pins(project_root() / "constraints" / "cpu.txt")["torch"]
    '==2.13.0'
    """
    pins = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#]+)\s*(#.*)?", line)
        if match:
            pins[_normalised(match.group(1))] = f"=={match.group(2)}"
    return pins


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_text(wheel: Path, wheel_url: str, pins: dict[str, str]) -> str:
    """``requirements.txt`` of the Space: CPU torch, the wheel's dependencies pinned as tested, then the wheel."""
    lines = [
        f"{HEADER} (clinx_hub {wheel.name.split('-')[1]}): the wheel in {WHEELS_DIR}/, installed from the",
        "# Space's own copy (a Space installs requirements.txt before it copies the repository in).",
        "# The pins are constraints/cpu.txt's, the versions the project tests together; torch is the CPU build.",
        f"--extra-index-url {TORCH_INDEX}",
    ]
    for name, specifier in sorted(wheel_requirements(wheel).items(), key=lambda item: _normalised(item[0])):
        lines.append(f"{name}{pins.get(_normalised(name), specifier)}")
    lines.append(f"clinx_hub[{','.join(EXTRAS)}] @ {wheel_url}")
    return "\n".join(lines) + "\n"


def build_space(
    out: str | Path,
    *,
    space_id: str = DEFAULT_SPACE_ID,
    endpoint: str | None = None,
    overwrite: bool = False,
) -> SpaceBuild:
    """Write a pushable demo Space folder at ``out``: Space files, the wheel, and requirements that install it.

    ``endpoint`` is the Hub's address (default ``$HF_ENDPOINT``, else huggingface.co) and
    ``space_id`` the Space the folder will be pushed to: the wheel is installed from there. A
    folder that is not empty is refused unless ``overwrite`` (then the files written here replace
    theirs, older wheels are removed, other files stay).

    >>> build_space("space-out", space_id="me/clinx-demo").requirements  # doctest: +SKIP
    PosixPath('space-out/requirements.txt')
    """
    root = project_root()
    out = Path(out)
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", space_id):
        raise SpaceBuildError(f"--space-id {space_id!r} is not a Hub id (owner/name)")
    if out.exists() and not out.is_dir():
        raise OutputFolderError("exists and is not a folder", out)
    source = (root / DEMO_SPACE).resolve()
    if out.resolve() == source or out.resolve().is_relative_to(source):
        raise OutputFolderError(f"is the Space's source folder {DEMO_SPACE} or inside it; choose another", out)
    if out.resolve() == root.resolve():  # its README.md would replace the project's
        raise OutputFolderError("is the clinx_hub checkout itself; choose another folder", out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputFolderError("is not empty; choose an empty folder or pass --overwrite", out)
    out.mkdir(parents=True, exist_ok=True)

    old_wheels = list((out / WHEELS_DIR).glob("*.whl"))
    wheel = build_wheel(root, out / WHEELS_DIR)
    for stale in old_wheels:  # another version's wheel would be pushed along and never used
        if stale != wheel:
            stale.unlink()
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    wheel_url = f"{endpoint}/spaces/{space_id}/resolve/main/{WHEELS_DIR}/{wheel.name}"
    for name in SPACE_FILES:
        write_text_atomic(out / name, (source / name).read_text(encoding="utf-8"))
    write_text_atomic(out / ".gitattributes", GITATTRIBUTES)
    pins = constraint_pins(root / "constraints" / "cpu.txt")
    write_text_atomic(out / "requirements.txt", requirements_text(wheel, wheel_url, pins))
    return SpaceBuild(folder=out, wheel=wheel, wheel_url=wheel_url)
