"""PharmaCoNER: chemical, drug and protein mentions in Spanish clinical cases (subtrack 1, BRAT)."""

from __future__ import annotations

from clinx_hub.task import Task, read_brat_split

CITATION = """@inproceedings{gonzalez-agirre-etal-2019-pharmaconer,
  title     = {{P}harma{C}o{NER}: Pharmacological Substances, Compounds and proteins Named Entity Recognition track},
  author    = {Gonzalez-Agirre, Aitor and Marimon, Montserrat and Intxaurrondo, Ander and Rabal, Obdulia and Villegas, Marta and Krallinger, Martin},
  booktitle = {Proceedings of the 5th Workshop on BioNLP Open Shared Tasks},
  year      = {2019},
  pages     = {1--10},
  publisher = {Association for Computational Linguistics},
  doi       = {10.18653/v1/D19-5701}
}"""
LICENSE = "cc-by-4.0"
HOMEPAGE = "https://github.com/PlanTL-GOB-ES/SPACCC_PharmaCoNER"
CORPUS_FOLDER = "pharmaconer"
LABELS = ("NORMALIZABLES", "NO_NORMALIZABLES", "PROTEINAS", "UNCLEAR")
# The official test gold is not public: PROTOCOL.md reports on the official dev set.
SPLITS = {
    "train": ("train/subtrack1",),
    "validation": ("dev/subtrack1",),
}

TASKS = {
    "pharmaconer": Task(
        name="pharmaconer",
        corpus=CORPUS_FOLDER,
        description="Chemical compounds, drugs and proteins in Spanish clinical case reports (subtrack 1).",
        labels=LABELS,
        splits=SPLITS,
        read=read_brat_split,
        homepage=HOMEPAGE,
        license=LICENSE,
        citation=CITATION,
        language="es",
        train_splits=("train",),
        report_split="validation",
        notes=(
            "The official test gold standard is not public; figures are reported on the official dev set.",
            "One training file (S0211-69952015000200015-1) has 5 spans shifted by 1-2 characters; they are kept as annotated.",
        ),
    )
}
