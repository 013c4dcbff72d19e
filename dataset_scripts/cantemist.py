"""CANTEMIST: tumour morphology mentions in Spanish oncology case reports, with ICD-O-3 codes (BRAT)."""

from __future__ import annotations

from clinx_hub.task import Task, read_brat_split

CITATION = """@inproceedings{miranda2020named,
  title     = {Named Entity Recognition, Concept Normalization and Clinical Coding: Overview of the Cantemist Track for Cancer Text Mining in Spanish, Corpus, Guidelines, Methods and Results},
  author    = {Miranda-Escalada, Antonio and Farr{\\'e}, Eul{\\`a}lia and Krallinger, Martin},
  booktitle = {Proceedings of the Iberian Languages Evaluation Forum (IberLEF 2020)},
  series    = {CEUR Workshop Proceedings},
  volume    = {2664},
  pages     = {303--323},
  year      = {2020}
}"""
LICENSE = "cc-by-4.0"
HOMEPAGE = "https://temu.bsc.es/cantemist/"
CORPUS_FOLDER = "cantemist"
LABELS = ("MORFOLOGIA_NEOPLASIA",)
# The norm folders hold the same T lines as the ner folders plus '#' notes with ICD-O-3 codes,
# so they are read to keep the codes. dev-set2 is withheld from this project on purpose.
SPLITS = {
    "train": ("train-set/cantemist-norm",),
    "validation": ("dev-set1/cantemist-norm",),
    "test": ("test-set/cantemist-norm",),
}

TASKS = {
    "cantemist": Task(
        name="cantemist",
        corpus=CORPUS_FOLDER,
        description="Tumour morphology mentions (with ICD-O-3 codes) in Spanish oncology clinical cases.",
        labels=LABELS,
        splits=SPLITS,
        read=read_brat_split,
        homepage=HOMEPAGE,
        license=LICENSE,
        citation=CITATION,
        language="es",
        train_splits=("train", "validation"),
        report_split="test",
        notes=(
            "Spans carry their ICD-O-3 codes from the cantemist-norm AnnotatorNotes.",
            "Nested and crossing spans stay in the gold set; the sentence-level tags keep the outer span.",
        ),
    )
}
