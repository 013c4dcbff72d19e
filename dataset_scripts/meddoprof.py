"""MEDDOPROF: occupation mentions in Spanish clinical cases; NER (task1) and CLASS (task2) tracks (BRAT)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from clinx_hub.formats.base import CorpusFormatError
from clinx_hub.task import Task, read_brat_split

CITATION = """@article{lima2021overview,
  title   = {Overview of MEDDOPROF Shared Task on Recognition of Occupations and Professions in Medical Documents at IberLEF 2021},
  author  = {Lima-L{\\'o}pez, Salvador and Farr{\\'e}-Maduell, Eul{\\`a}lia and Miranda-Escalada, Antonio and Br{\\'i}varo-Ball{\\'o}, Vicent and Krallinger, Martin},
  journal = {Procesamiento del Lenguaje Natural},
  volume  = {67},
  pages   = {243--256},
  year    = {2021}
}"""
# Not verified from the Zenodo page (see shared/corpora/README.md): confirm before redistributing.
LICENSE = "cc-by-4.0"
HOMEPAGE = "https://temu.bsc.es/meddoprof/"
CORPUS_FOLDER = "meddoprof"
NER_LABELS = ("PROFESION", "SITUACION_LABORAL", "ACTIVIDAD")
CLASS_LABELS = ("PACIENTE", "SANITARIO", "FAMILIAR", "OTROS")
# The official test gold is not public: the project holds out the 300 documents listed here.
HELDOUT_LIST = "heldout-test.txt"


@lru_cache(maxsize=8)
def heldout_ids(corpus_dir: Path) -> frozenset[str]:
    """The ids of the held-out test documents, read from ``heldout-test.txt`` in the corpus folder."""
    path = corpus_dir / HELDOUT_LIST
    if not path.is_file():
        raise CorpusFormatError(f"MEDDOPROF splits need the held-out list {HELDOUT_LIST} in the corpus folder", path)
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _in_split(corpus_dir: Path, split: str, doc_id: str) -> bool:
    return (doc_id in heldout_ids(corpus_dir)) == (split == "test")


def _task(name: str, folder: str, labels: tuple[str, ...], what: str) -> Task:
    return Task(
        name=name,
        corpus=CORPUS_FOLDER,
        description=f"Occupation mentions in Spanish clinical cases, labelled by {what}.",
        labels=labels,
        splits={"train": (f"meddoprof-training-set/{folder}",), "test": (f"meddoprof-training-set/{folder}",)},
        read=read_brat_split,
        homepage=HOMEPAGE,
        license=LICENSE,
        citation=CITATION,
        language="es",
        train_splits=("train",),
        report_split="test",
        license_note="Licence assumed CC BY 4.0 (BSC/TeMU practice); not verified from the Zenodo record.",
        select=_in_split,
        notes=(
            "Only the official training set is public: the test split is the 300 documents of heldout-test.txt.",
        ),
    )


TASKS = {
    "meddoprof-ner": _task("meddoprof-ner", "task1", NER_LABELS, "occupation type (task1)"),
    "meddoprof-class": _task("meddoprof-class", "task2", CLASS_LABELS, "whom the occupation refers to (task2)"),
}
