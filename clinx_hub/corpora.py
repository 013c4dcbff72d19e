"""The task registry and loading a task's splits from a corpus folder as it is distributed.

Each of the ten CLIN-X tasks is described by a :class:`clinx_hub.task.Task` in one module of
``dataset_scripts`` (constants first: citation, licence, homepage, label set, split layout),
installed as ``clinx_hub.dataset_scripts``. ``--data-dir`` may be the corpus folder as
distributed, the folder holding it, or a plain folder of files (one split).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from clinx_hub.documents import Document
from clinx_hub.formats.base import CorpusFormatError
from clinx_hub.task import Task

TASK_MODULES = {
    "meddocan": "clinx_hub.dataset_scripts.meddocan",
    "pharmaconer": "clinx_hub.dataset_scripts.pharmaconer",
    "cantemist": "clinx_hub.dataset_scripts.cantemist",
    "meddoprof-ner": "clinx_hub.dataset_scripts.meddoprof",
    "meddoprof-class": "clinx_hub.dataset_scripts.meddoprof",
    "i2b2-2006": "clinx_hub.dataset_scripts.i2b2_2006",
    "i2b2-2010": "clinx_hub.dataset_scripts.i2b2_2010",
    "i2b2-2012-c": "clinx_hub.dataset_scripts.i2b2_2012",
    "i2b2-2012-t": "clinx_hub.dataset_scripts.i2b2_2012",
    "i2b2-2014": "clinx_hub.dataset_scripts.i2b2_2014",
    "brat": "clinx_hub.dataset_scripts.brat_folder",
}

PLAIN_SPLIT = "train"
"""The split name a plain folder of files gets (the name ``datasets`` gives a single data folder)."""


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

    Never "succeeds" with nothing: a split in ``splits`` that is absent (the message names those
    present), a split without documents, or a folder with no documents at all (the message names
    the layout the task expects and what the folder holds) raises ``CorpusFormatError``.

    >>> docs = load_task("meddocan", Path("../shared/corpora/meddocan"))  # doctest: +SKIP
    >>> {split: len(d) for split, d in docs.items()}  # doctest: +SKIP
    {'train': 500, 'validation': 250, 'test': 250}
    """
    task = get_task(name)
    root, layout = locate_splits(task, Path(data_dir))
    present = list(layout) or [PLAIN_SPLIT]
    for wanted in splits or ():
        if wanted not in present:
            raise CorpusFormatError(f"no split {wanted!r} of {name} here (present: {', '.join(present)})", root)
    if not layout:
        documents = task.read([root], root)
        if not documents:
            # A folder one level off (meddocan/corpus for meddocan/) reads as a plain folder of no
            # files; "0 documents" would let stats, training and scores go on with nothing.
            raise CorpusFormatError(_no_documents(task, root), root)
        return {PLAIN_SPLIT: documents}
    cache: dict[tuple[Path, ...], list[Document]] = {}
    result = {}
    for split, paths in layout.items():
        if splits is not None and split not in splits:
            continue
        key = tuple(paths)
        if key not in cache:
            cache[key] = task.read(paths, root)
            if not cache[key]:
                found = ", ".join(str(path.relative_to(root)) for path in paths)
                raise CorpusFormatError(f"split {split!r} of {name} has no documents (in {found})", root)
        documents = cache[key]
        if task.select is not None:
            documents = [d for d in documents if task.select(root, split, d.id)]
        result[split] = documents
    return result


def _no_documents(task: Task, folder: Path) -> str:
    """Why ``folder`` gave no documents: the layout ``task`` expects, what is there, and a likely fix."""
    layout = "; ".join(f"{split}: {', '.join(patterns)}" for split, patterns in task.splits.items())
    message = (
        f"no {task.name} documents here: expected the corpus layout ({layout}) in this folder or in"
        f" {task.corpus}/ inside it, or a plain folder of document files (one split); found {_contents(folder)}"
    )
    # "**" patterns would search whole file systems from an ancestor; fixed ones cost a few globs.
    if task.splits and not any("**" in p for patterns in task.splits.values() for p in patterns):
        for ancestor in list(folder.resolve().parents)[:3]:
            try:
                if locate_splits(task, ancestor)[1]:
                    return f"{message}; did you mean --data-dir {ancestor}?"
            except CorpusFormatError:
                continue
    return message


def _contents(folder: Path) -> str:
    """What ``folder`` holds, by sub-folder names and file suffixes only (file names may be document ids)."""
    if not folder.is_dir():
        return "a single file"
    entries = list(folder.iterdir())
    folders = sorted(e.name for e in entries if e.is_dir())
    suffixes = sorted({e.suffix or "(no suffix)" for e in entries if not e.is_dir()})
    files = len(entries) - len(folders)
    if not entries:
        return "an empty folder"
    shown = ", ".join(folders[:8]) + (", ..." if len(folders) > 8 else "")
    if not files:
        return f"only sub-folders: {shown}"
    held = f"{files} file(s) ({', '.join(suffixes)})"
    return f"{held} and sub-folders: {shown}" if folders else held

