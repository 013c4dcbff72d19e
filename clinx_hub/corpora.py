"""The task registry and loading a task's splits from a corpus folder as it is distributed.

Each of the ten CLIN-X tasks is described by a ``Task`` in one module of ``dataset_scripts``
(constants first: citation, licence, homepage, label set, split layout). ``--data-dir`` may be
the corpus folder as distributed, the folder holding it, or a plain folder of files (one split).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clinx_hub.documents import Document
from clinx_hub.formats.base import CorpusFormatError
from clinx_hub.formats.brat import read_brat_folder

TASK_MODULES = {
    "meddocan": "dataset_scripts.meddocan",
    "pharmaconer": "dataset_scripts.pharmaconer",
    "cantemist": "dataset_scripts.cantemist",
    "meddoprof-ner": "dataset_scripts.meddoprof",
    "meddoprof-class": "dataset_scripts.meddoprof",
    "i2b2-2006": "dataset_scripts.i2b2_2006",
    "i2b2-2010": "dataset_scripts.i2b2_2010",
    "i2b2-2012-c": "dataset_scripts.i2b2_2012",
    "i2b2-2012-t": "dataset_scripts.i2b2_2012",
    "i2b2-2014": "dataset_scripts.i2b2_2014",
    "brat": "dataset_scripts.brat_folder",
}

PLAIN_SPLIT = "train"
"""The split name a plain folder of files gets (the name ``datasets`` gives a single data folder)."""

SplitReader = Callable[[list[Path], Path], list[Document]]
"""Reads the documents of one split from its resolved paths; the second argument roots the locations."""


@dataclass(frozen=True)
class Task:
    """One extraction task: where its splits lie in the distributed corpus and how to read them."""

    name: str
    corpus: str
    """The corpus folder's name as distributed (``meddocan``); also looked for inside ``--data-dir``."""
    description: str
    labels: tuple[str, ...]
    splits: Mapping[str, tuple[str, ...]]
    """Split name -> glob patterns, relative to the corpus folder, of the folders/files that make it."""
    read: SplitReader
    homepage: str
    license: str
    """A Hub licence identifier (``cc-by-4.0``, ``other``)."""
    citation: str
    language: str
    train_splits: tuple[str, ...]
    report_split: str
    license_note: str = ""
    select: Callable[[Path, str, str], bool] | None = None
    """``(corpus folder, split, document id) -> keep``, for corpora whose splits are lists of documents."""
    notes: tuple[str, ...] = field(default=())


def task_names() -> list[str]:
    """The names of all registered tasks.

    >>> task_names()[:3]
    ['meddocan', 'pharmaconer', 'cantemist']
    """
    return list(TASK_MODULES)


def get_task(name: str) -> Task:
    """The task registered under ``name``.

    >>> get_task("cantemist").labels
    ('MORFOLOGIA_NEOPLASIA',)
    """
    if name not in TASK_MODULES:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASK_MODULES)}")
    return importlib.import_module(TASK_MODULES[name]).TASKS[name]


def locate_splits(task: Task, data_dir: Path) -> tuple[Path, dict[str, list[Path]]]:
    """The corpus folder found at or inside ``data_dir`` and each present split's paths.

    Returns ``(data_dir, {})`` when ``data_dir`` holds none of the task's split layout (a plain folder).
    """
    if not data_dir.exists():
        raise CorpusFormatError("no such file or folder", data_dir)
    for root in (data_dir, data_dir / task.corpus):
        found: dict[str, list[Path]] = {}
        for split, patterns in task.splits.items():
            matches = [sorted(root.glob(pattern)) for pattern in patterns]
            if all(matches):
                found[split] = [path for paths in matches for path in paths]
            elif any(matches):
                missing = [p for p, m in zip(patterns, matches) if not m]
                raise CorpusFormatError(f"split {split!r} of {task.name} is incomplete: nothing matches {missing}", root)
        if found:
            return root, found
    return data_dir, {}


def load_task(name: str, data_dir: Path, splits: list[str] | None = None) -> dict[str, list[Document]]:
    """Read the documents of every present split of task ``name`` from ``data_dir``.

    >>> docs = load_task("meddocan", Path("../shared/corpora/meddocan"))  # doctest: +SKIP
    >>> {split: len(d) for split, d in docs.items()}  # doctest: +SKIP
    {'train': 500, 'validation': 250, 'test': 250}
    """
    task = get_task(name)
    root, layout = locate_splits(task, Path(data_dir))
    if not layout:
        return {PLAIN_SPLIT: task.read([root], root)}
    cache: dict[tuple[Path, ...], list[Document]] = {}
    result = {}
    for split, paths in layout.items():
        if splits is not None and split not in splits:
            continue
        key = tuple(paths)
        if key not in cache:
            cache[key] = task.read(paths, root)
        documents = cache[key]
        if task.select is not None:
            documents = [d for d in documents if task.select(root, split, d.id)]
        result[split] = documents
    return result


def read_brat_split(paths: list[Path], root: Path) -> list[Document]:
    """The ``SplitReader`` of BRAT corpora: every ``.txt``/``.ann`` pair of each folder, in order."""
    return [document for path in paths for document in read_brat_folder(path, root=root)]
