"""What a task is: the ``Task`` record that each corpus module of ``dataset_scripts`` fills in.

The corpus modules (``clinx_hub.dataset_scripts.*``) import this module and
:mod:`clinx_hub.corpora` lists them; neither imports the other's importer, so the registry has no
cycle. ``read_brat_split`` is here because most corpora are BRAT folders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clinx_hub.documents import Document
from clinx_hub.formats.brat import read_brat_folder

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


def read_brat_split(paths: list[Path], root: Path) -> list[Document]:
    """The ``SplitReader`` of BRAT corpora: every ``.txt``/``.ann`` pair of each folder, in order."""
    return [document for path in paths for document in read_brat_folder(path, root=root)]


__all__ = ["SplitReader", "Task", "read_brat_split"]
